import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from '../helpers/tls.js';
import {
  MllpClient,
  MllpClientError,
  MllpServer,
  extractMessageControlId,
  type ConnectionInfo,
} from '../../src/mllp/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const msg = (id: string): Buffer => b(`MSH|^~\\&|APP|FAC|PFI|PFI|20260101120000||ADT^A01|${id}|P|2.5\rPID|1||123\r`);
const ackFor = (p: Buffer): Buffer => {
  const id = extractMessageControlId(p) ?? '';
  return b(`MSH|^~\\&|PFI|PFI|APP|FAC|20260101120000||ACK|ACK-${id}|P|2.5\rMSA|AA|${id}\r`);
};

let pki: TestPki;
let pem: TestPki['pem'];

beforeAll(() => {
  pki = makeTestPki();
  pem = pki.pem;
}, 60_000);

afterAll(() => {
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

describe('MLLP over mutual TLS', () => {
  it('accepts a client with a certificate signed by the CA, refuses one without', async () => {
    const conns: ConnectionInfo[] = [];
    const errors: Error[] = [];
    const server = new MllpServer(
      {
        host: '127.0.0.1',
        port: 0,
        tls: { key: pem['server.key']!, cert: pem['server.crt']!, ca: pem['ca.crt']!, requestClientCert: true },
      },
      {
        onMessage: async (p, c) => {
          conns.push(c);
          return ackFor(p);
        },
        onOversize: async () => undefined,
        onError: (e) => errors.push(e),
      },
    );
    const { port } = await server.listen();
    try {
      const good = new MllpClient({
        host: '127.0.0.1',
        port,
        tls: { ca: pem['ca.crt']!, cert: pem['client.crt']!, key: pem['client.key']! },
      });
      const ack = await good.send(msg('TLS1'));
      expect(ack.toString('latin1')).toContain('MSA|AA|TLS1');
      expect(conns[0]!.tls).toBe(true);
      expect(conns[0]!.peerCertificateSubject).toContain('CN=emetteur-test');
      await good.close();

      const anonymous = new MllpClient({
        host: '127.0.0.1',
        port,
        tls: { ca: pem['ca.crt']! },
        ackTimeoutMs: 20_000, // the refusal comes from the server; this only turns a hang into a failure
        reconnect: { maxAttempts: 1 },
      });
      const err = await anonymous.send(msg('TLS2')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MllpClientError);
      expect(['connect', 'closed']).toContain((err as MllpClientError).kind);
      await anonymous.close();
      expect(conns).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('the client rejects a server whose certificate is not signed by its CA', async () => {
    const server = new MllpServer(
      { host: '127.0.0.1', port: 0, tls: { key: pem['server.key']!, cert: pem['server.crt']! } },
      { onMessage: async (p) => ackFor(p), onOversize: async () => undefined },
    );
    const { port } = await server.listen();
    try {
      const client = new MllpClient({ host: '127.0.0.1', port, tls: {}, reconnect: { maxAttempts: 1 } });
      const err = await client.send(msg('X')).catch((e: unknown) => e);
      expect((err as MllpClientError).kind).toBe('connect');
      await client.close();
      const trusting = new MllpClient({ host: '127.0.0.1', port, tls: { ca: pem['ca.crt']! } });
      expect((await trusting.send(msg('Y'))).toString('latin1')).toContain('MSA|AA|Y');
      await trusting.close();
    } finally {
      await server.close();
    }
  });
});
