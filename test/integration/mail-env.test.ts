/**
 * The test mail system (test/helpers/mail.ts, started once by test/global-setup.ts) is what the MSSanté tests stand
 * on: a real Postfix that accepts known mailboxes, refuses unknown ones at RCPT and writes real DSN, and a Dovecot
 * that serves the mailboxes over IMAP.
 */
import { randomUUID } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
import { afterAll, expect, inject, test } from 'vitest';
import { DOMAINS, MAILBOXES, TcpGate, readMailbox, sendRaw, waitForMail } from '../helpers/mail.js';

const env = inject('mail');
const transports: Transporter[] = [];
function smtp(port: number = env.smtp.port): Transporter {
  const t = nodemailer.createTransport({
    host: env.smtp.host,
    port,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: 30_000,
  });
  transports.push(t);
  return t;
}
afterAll(() => transports.forEach((t) => t.close()));

/** Unfolds header continuation lines and normalises line ends. */
const unfold = (s: string) => s.replace(/\r\n/g, '\n').replace(/\n[ \t]+/g, ' ');

test('MAILBOXES and DOMAINS are sorted, unique, and consistent', () => {
  expect([...new Set(MAILBOXES)].sort()).toEqual(MAILBOXES);
  expect([...new Set(MAILBOXES.map((a) => a.split('@')[1]!))].sort()).toEqual(DOMAINS);
  expect(MAILBOXES).toContain('pfi@hopital.test');
  expect(MAILBOXES).toContain('280017512345610@patient.mssante.fr');
  expect(MAILBOXES).toContain('adam.hoda@test-ci-sis.mssante.fr');
});

test('(a) a mail sent through Postfix on 127.0.0.1:25 arrives and is read back over IMAP', async () => {
  const tag = randomUUID();
  const info = await smtp().sendMail({
    from: 'pfi@hopital.test',
    to: 'dr.martin@pro.test',
    subject: `hello ${tag}`,
    text: `body ${tag}`,
  });
  expect(info.accepted).toEqual(['dr.martin@pro.test']);
  const [got] = await waitForMail('dr.martin@pro.test', (s) => s.includes(tag));
  const text = unfold(got!.toString('utf8'));
  expect(text).toMatch(new RegExp(`^Subject: hello ${tag}$`, 'm'));
  expect(text).toMatch(/^Delivered-To: dr\.martin@pro\.test$/m);
  const msgs = await readMailbox('dr.martin@pro.test');
  const mine = msgs.filter((m) => m.source.includes(tag));
  expect(mine).toHaveLength(1);
  expect(mine[0]!.uid).toBeGreaterThan(0);
  expect(Array.isArray(mine[0]!.flags)).toBe(true);
  // Case does not matter, as for real addresses (the ANS examples write dpi@hopitalA.mssante.fr).
  await sendRaw(
    'pfi@hopital.test',
    ['DPI@hopitalA.mssante.fr'],
    `From: pfi@hopital.test\r\nTo: dpi@hopitalA.mssante.fr\r\nSubject: case ${tag}\r\n\r\nx\r\n`,
  );
  await waitForMail('dpi@hopitala.mssante.fr', (s) => s.includes(`case ${tag}`));
});

test('(b) an unknown recipient of a test domain is refused at RCPT with 550 5.1.1', async () => {
  const send = smtp().sendMail({ from: 'pfi@hopital.test', to: 'nobody@pro.test', subject: 'x', text: 'x' });
  await expect(send).rejects.toThrow(/550/);
  await expect(send).rejects.toThrow(/5\.1\.1/);
  await expect(send).rejects.toMatchObject({ responseCode: 550 });
});

test("(c) NOTIFY=SUCCESS,FAILURE: Postfix puts a delivery-status DSN in the sender's mailbox", async () => {
  const tag = randomUUID();
  await smtp().sendMail({
    from: 'pfi@hopital.test',
    to: 'dr.durand@pro.test',
    subject: `dsn ${tag}`,
    text: 'x',
    dsn: { id: 'ENV-1', return: 'headers', notify: ['success', 'failure'], recipient: 'dr.durand@pro.test' },
  });
  await waitForMail('dr.durand@pro.test', (s) => s.includes(`dsn ${tag}`));
  const [dsn] = await waitForMail(
    'pfi@hopital.test',
    (s) => s.includes(tag) && /report-type=("?)delivery-status\1/i.test(unfold(s)),
  );
  const text = unfold(dsn!.toString('utf8'));
  expect(text).toMatch(/^Content-Type: multipart\/report; report-type=("?)delivery-status\1;/im);
  const part = /Content-Type: message\/delivery-status\n([\s\S]*?)\n--/i.exec(text);
  expect(part, 'a message/delivery-status part').not.toBeNull();
  expect(part![1]).toMatch(/^Original-Envelope-Id: ENV-1$/m);
  expect(part![1]).toMatch(/^Action: delivered$/m);
  expect(part![1]).toMatch(/^Final-Recipient: rfc822; ?dr\.durand@pro\.test$/m);
  expect(part![1]).toMatch(/^Original-Recipient: rfc822; ?dr\.durand@pro\.test$/m);
  expect(part![1]).toMatch(/^Status: 2\.\d\.\d$/m);
});

test('(d) TcpGate: mail through the gate works, fails while closed, works again after open()', async () => {
  const gate = await TcpGate.start(env.smtp);
  try {
    const tag = randomUUID();
    const mail = (n: number) => ({
      from: 'pfi@hopital.test',
      to: 'manual@hopital.test',
      subject: `gate ${n} ${tag}`,
      text: 'x',
    });
    await smtp(gate.port).sendMail(mail(1));
    gate.close();
    await expect(smtp(gate.port).sendMail(mail(2))).rejects.toThrow(/ECONNREFUSED|ECONNRESET|closed|Connection/i);
    await gate.open();
    await smtp(gate.port).sendMail(mail(3));
    const got = await waitForMail('manual@hopital.test', (s) => s.includes(tag), { n: 2 });
    expect(got.map((b) => /Subject: (gate \d)/.exec(b.toString())![1]).sort()).toEqual(['gate 1', 'gate 3']);
  } finally {
    await gate.stop();
  }
});

test('(d) TcpGate: closing cuts a session in progress', async () => {
  const gate = await TcpGate.start(env.smtp);
  try {
    const t = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gate.port,
      secure: false,
      ignoreTLS: true,
      pool: true,
      maxConnections: 1,
    });
    transports.push(t);
    await t.sendMail({ from: 'pfi@hopital.test', to: 'manual@hopital.test', subject: 'pooled', text: 'x' });
    gate.close();
    await expect(
      t.sendMail({ from: 'pfi@hopital.test', to: 'manual@hopital.test', subject: 'pooled 2', text: 'x' }),
    ).rejects.toThrow();
  } finally {
    await gate.stop();
  }
});
