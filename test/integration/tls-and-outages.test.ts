import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Hl7Message } from '../../src/hl7v2/message.js';
import { readAck } from '../../src/hl7v2/ack.js';
import { Journal } from '../../src/journal/journal.js';
import { MllpClient, MllpClientError } from '../../src/mllp/client.js';
import { startEmbeddedRedis } from '../../src/redis/embedded.js';
import { ackOf, channelYaml, frame, hl7, RawMllp, startTestEngine, tempDir, waitFor } from '../helpers/engine.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

describe('a channel over mutual TLS', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  }, 60_000);
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

  test('a client with a certificate from the CA gets AA; one without is refused at the handshake', async () => {
    const t = await startTestEngine({
      secure: channelYaml('secure', {
        source: [
          'tls:',
          `  cert: ${pki.files['server.crt']}`,
          `  key: ${pki.files['server.key']}`,
          `  ca: ${pki.files['ca.crt']}`,
          '  requestClientCert: true',
        ].join('\n'),
      }),
    });
    try {
      const good = new MllpClient({
        host: '127.0.0.1',
        port: t.port(),
        tls: { ca: pki.pem['ca.crt'], cert: pki.pem['client.crt'], key: pki.pem['client.key'] },
      });
      const ack = readAck(Hl7Message.parse(await good.send(Buffer.from(hl7({ controlId: 'TLS-1' })))));
      expect(ack).toMatchObject({ code: 'AA', controlId: 'TLS-1' });
      await good.close();
      // Refused by the server (handshake or connection closed), not given up on by the client: no ACK timeout in
      // reach of a slow machine, and a timeout would not count as the refusal.
      const anonymous = new MllpClient({
        host: '127.0.0.1',
        port: t.port(),
        tls: { ca: pki.pem['ca.crt'] },
        reconnect: { maxAttempts: 1 },
        ackTimeoutMs: 20_000,
      });
      const err = await anonymous.send(Buffer.from(hl7({ controlId: 'TLS-2' }))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MllpClientError);
      expect(['connect', 'closed']).toContain((err as MllpClientError).kind);
      await anonymous.close();
      const list = (await (await t.api('/channels')).json()) as { tls: boolean }[];
      expect(list[0]!.tls).toBe(true);
    } finally {
      await t.stop();
    }
  });
});

describe('a Redis that stops answering (disk stall, SIGSTOP)', () => {
  // "Within 3 s" is the ingest connection's command timeout (src/engine.ts): here the answer is awaited,
  // however long a busy machine takes to give it; a hang fails at the 30 s limit.
  test('the sender gets AR 207, never AA, never a hang; the message sent again later is accepted once', async () => {
    const t = await startTestEngine({ main: channelYaml('main') });
    const pid = Number(readFileSync(join(t.dir, 'redis', 'redis.pid'), 'utf8'));
    try {
      process.kill(pid, 'SIGSTOP');
      const c = await RawMllp.open(t.port());
      await c.write(frame(hl7({ controlId: 'FROZEN-1' })));
      const [ack] = await c.waitAcks(1, 30_000);
      c.close();
      expect(ackOf(ack!)).toMatchObject({ code: 'AR', controlId: 'FROZEN-1', error: '207' });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    try {
      // The frozen write may still have landed when Redis woke up: the retransmission is then a
      // duplicate, acknowledged AA and processed once.
      const again = await waitFor(async () => {
        const c = await RawMllp.open(t.port());
        await c.write(frame(hl7({ controlId: 'FROZEN-1' }).replace(/20261121101500/, '20261121101501')));
        const [a] = await c.waitAcks(1);
        c.close();
        const r = ackOf(a!);
        return r.code === 'AA' ? r : undefined;
      }, 30_000);
      expect(again.controlId).toBe('FROZEN-1');
      const entry = await waitFor(async () => {
        const r = (await (await t.api('/messages?controlId=FROZEN-1')).json()) as {
          messages: { id: string; status: string }[];
        };
        return r.messages.find((m) => m.status === 'processed');
      }, 30_000);
      const r = (await (await t.api('/messages?controlId=FROZEN-1')).json()) as { messages: unknown[] };
      expect(r.messages).toHaveLength(1);
      const one = (await (await t.api(`/messages/${entry.id}`)).json()) as { events: { status: string }[] };
      expect(one.events.filter((e) => e.status === 'processed')).toHaveLength(1);
    } finally {
      await t.stop();
    }
  }, 120_000);
});

describe('journal retention', () => {
  test('entries older than the retention go, with their raw bytes, events and index entries', async () => {
    const dir = tempDir('sweep');
    const redis = await startEmbeddedRedis({ dir });
    const r = new Redis(redis.url);
    try {
      const j = new Journal(r, { retentionMs: 60_000 });
      // Sweeps at given times, not at "now": how long this test takes changes nothing.
      const t0 = Date.now(); // no entry below is stamped earlier
      const old = await j.ingest(
        Buffer.from('MSH|old'),
        { channel: 'c', size: 7, controlId: 'OLD', patientIds: ['P1'] },
        { status: 'received' },
      );
      const recent = await j.ingest(
        Buffer.from('MSH|new'),
        { channel: 'c', size: 7, controlId: 'NEW', patientIds: ['P1'] },
        { status: 'received' },
      );
      const justBeforeExpiry = t0 + 60_000 - 1; // both entries are younger than the retention then
      expect(await j.sweep(justBeforeExpiry)).toBe(0);
      // Pretend an hour went by for the first one only.
      await r.zadd('pfi:x:time', t0 - 3600_000, old.id);
      expect(await j.sweep(justBeforeExpiry)).toBe(1);
      expect(await j.get(old.id)).toBeUndefined();
      expect(await j.raw(old.id)).toBeNull();
      expect(await r.exists(`pfi:ev:${old.id}`)).toBe(0);
      expect((await j.search({ patientId: 'P1' })).map((e) => e.id)).toEqual([recent.id]);
      expect(await j.search({ controlId: 'OLD' })).toEqual([]);
    } finally {
      r.disconnect();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
