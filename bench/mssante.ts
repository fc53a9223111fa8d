/**
 * "MSSanté delivery": mails per second from MLLP in to the recipient's mailbox (group commit,
 * interpretation, the IHE XDM archive, the mail, SMTP to a real Postfix, LMTP to a real Dovecot),
 * for 100 KiB documents; and the latency of one mail at a time on an idle engine.
 */
import { percentile } from './stats.js';
import { ImapFlow } from 'imapflow';
import { Hl7Message } from '../src/hl7v2/message.js';
import { MllpClient } from '../src/mllp/client.js';
import { extractAck } from '../src/mllp/correlate.js';
import { emptyMailboxes, PASSWORD, type MailEnv } from '../test/helpers/mail.js';
import { request } from './interpret.js';

const RECIPIENT = 'dr.martin@pro.test';
const DOC_BYTES = 100 * 1024;

export function mssChannelYaml(port: number, mail: MailEnv): string {
  const source =
    `{ type: mllp, host: 127.0.0.1, port: ${port}, profile: cisis-transmission, ` +
    'accept: [{ type: MDM, events: [T02], versions: ["2.6"] }] }';
  return `id: bench-mss
flow: transmission
mapping: mappings/transmission.yaml
source: ${source}
processing: { concurrency: 8 }
mssante:
  from: pfi@hopital.test
  smtp: { host: ${mail.smtp.host}, port: ${mail.smtp.port}, secure: false }
  nil: PFI-BENCH
  concurrency: 4
`;
}

/** The demo request (100 KiB CDA) for MSSanté only, to a professional. */
function mssRequest(n: number): Buffer {
  const msg = Hl7Message.parse(request(DOC_BYTES, n));
  msg.segmentsNamed('OBX').forEach((_, i) => {
    const name = msg.get(`OBX[${i + 1}]-3.1`);
    if (name === 'DESTDMP') msg.set(`OBX[${i + 1}]-5.1`, 'N');
    if (name === 'DESTMSSANTEPS') msg.set(`OBX[${i + 1}]-5.1`, 'Y');
  });
  const lines = msg.toString().split('\r');
  const sb = lines.findIndex((l) => l.startsWith('PRT|'));
  lines.splice(
    sb + 1,
    0,
    'PRT||UC||RCT^^participation|899999999998^MARTIN^JEANNE^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS' +
      `||||||||||^NET^X.400^${RECIPIENT}`,
  );
  return Buffer.from(lines.join('\r'), 'utf8');
}

export async function benchMssante(opts: {
  port: number;
  mail: MailEnv;
  mails: number;
  connections: number;
}): Promise<Record<string, unknown>> {
  await emptyMailboxes();
  const imap = new ImapFlow({
    host: opts.mail.imap.host,
    port: opts.mail.imap.port,
    secure: false,
    auth: { user: RECIPIENT, pass: PASSWORD },
    logger: false,
  });
  await imap.connect();
  const count = async () => {
    const s = await imap.status('INBOX', { messages: true });
    return s ? (s.messages ?? 0) : 0;
  };
  const waitCount = async (n: number) => {
    const until = Date.now() + 300_000;
    while ((await count()) < n && Date.now() < until) await new Promise((ok) => setTimeout(ok, 2));
  };
  try {
    // One at a time on an idle engine.
    const client = new MllpClient({ host: '127.0.0.1', port: opts.port, ackTimeoutMs: 30_000 });
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await client.send(mssRequest(2_000_000 + i));
      await waitCount(i + 1);
      idle.push(performance.now() - t0);
    }
    await client.close();
    idle.sort((a, b) => a - b);

    // A burst.
    const base = await count();
    const messages = Array.from({ length: opts.mails }, (_, i) => mssRequest(3_000_000 + i));
    const clients = Array.from(
      { length: opts.connections },
      () => new MllpClient({ host: '127.0.0.1', port: opts.port, ackTimeoutMs: 30_000 }),
    );
    let next = 0;
    let notAA = 0;
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        for (let i = next++; i < messages.length; i = next++)
          if (extractAck(await c.send(messages[i]!))?.code !== 'AA') notAA++;
      }),
    );
    await Promise.all(clients.map((c) => c.close()));
    await waitCount(base + messages.length);
    const seconds = (performance.now() - t0) / 1000;
    const delivered = (await count()) - base;
    return {
      bench: 'mssante_delivery',
      documentBytes: DOC_BYTES,
      messageBytes: messages[0]!.length,
      mails: messages.length,
      delivered,
      notAA,
      connections: opts.connections,
      seconds: Math.round(seconds * 100) / 100,
      mailsPerSec: Math.round((delivered / seconds) * 10) / 10,
      idleLatencyMs: {
        p50: Math.round(percentile(idle, 50)),
        p99: Math.round(percentile(idle, 99)),
        max: Math.round(idle.at(-1)!),
      },
    };
  } finally {
    await imap.logout().catch(() => imap.close());
  }
}
