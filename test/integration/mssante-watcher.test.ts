/**
 * MailboxWatcher against the real Dovecot of the test mail system (test/helpers/mail.ts, started by the vitest
 * global setup). Each test watches folders of its own in pfi@hopital.test, so that it never takes a mail that
 * another test file expects in that mailbox's INBOX.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { parseReport, type Report } from '../../src/mail/reports.js';
import { MailboxWatcher, type MailHandler, type WatcherOptions } from '../../src/mail/watcher.js';
import { PASSWORD, TcpGate, waitForMail } from '../helpers/mail.js';

const ACCOUNT = 'pfi@hopital.test';
const env = () => inject('mail');

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

/** Waits for a state; the limit only turns a hang into a failure, it is no speed requirement. */
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(50);
  }
}

/** A test's own client, to put mails in and look at the folders. */
let admin: ImapFlow;

async function connectAdmin(account = ACCOUNT): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: env().imap.host,
    port: env().imap.port,
    secure: false,
    doSTARTTLS: false,
    auth: { user: account, pass: PASSWORD },
    logger: false,
  });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

const path = (folder: string) => folder.split('/');

function mail(tag: string, padTo = 0): Buffer {
  const head =
    `From: Dr Martin <dr.martin@pro.test>\r\nTo: ${ACCOUNT}\r\nSubject: ${tag}\r\n` +
    `Message-ID: <${tag}@pro.test>\r\nDate: Tue, 14 May 2024 10:00:00 +0200\r\n\r\n`;
  let body = `secret content of ${tag}\r\n`;
  if (padTo > head.length + body.length) body += 'x'.repeat(padTo - head.length - body.length - 2) + '\r\n';
  return Buffer.from(head + body);
}

async function put(folder: string, ...tags: string[]): Promise<void> {
  for (const t of tags) await admin.append(path(folder), mail(t));
}

/** The subjects of the mails of a folder, in UID order ([] when the folder does not exist). */
async function subjects(folder: string): Promise<string[]> {
  const lock = await admin.getMailboxLock(path(folder)).catch(() => undefined);
  if (!lock) return [];
  try {
    const list = await admin.search({ all: true }, { uid: true });
    if (!list || list.length === 0) return [];
    const msgs = await admin.fetchAll(list, { uid: true, envelope: true }, { uid: true });
    return msgs.sort((a, b) => a.uid - b.uid).map((m) => m.envelope?.subject ?? '?');
  } finally {
    lock.release();
  }
}

interface LogEntry {
  level: string;
  o: object;
  m: string;
}

let folders: { inbox: string; done: string; aside: string };
const watchers: MailboxWatcher[] = [];
let logs: LogEntry[];

function watcher(handler: MailHandler, extra: Partial<WatcherOptions> = {}): MailboxWatcher {
  const log = (level: string) => (o: object, m: string) => void logs.push({ level, o, m });
  const w = new MailboxWatcher(
    {
      host: env().imap.host,
      port: env().imap.port,
      secure: false,
      auth: { user: ACCOUNT, pass: PASSWORD },
      mailbox: folders.inbox,
      doneFolder: folders.done,
      asideFolder: folders.aside,
      maxMessageBytes: 64 * 1024,
      pollSeconds: 3600, // wake-ups in these tests come from IDLE unless a test says otherwise
      log: { info: log('info'), warn: log('warn'), error: log('error') },
      ...extra,
    },
    handler,
  );
  watchers.push(w);
  return w;
}

/** A handler that records the subjects it saw, answering `outcome(subject)`. */
function recorder(outcome: (subject: string) => 'done' | 'aside' = () => 'done') {
  const seen: string[] = [];
  const handler: MailHandler = async (m) => {
    const subject = m.source
      ? /^Subject: (.*)$/m.exec(m.source.toString('latin1'))![1]!.trim()
      : `(too large: ${m.size})`;
    seen.push(subject);
    return outcome(subject);
  };
  return { seen, handler };
}

/** Counts the IDLE commands the watchers start (imapflow's own method, still called). */
function idles(): () => number {
  const spy = vi.spyOn(ImapFlow.prototype, 'idle');
  return () => spy.mock.calls.length;
}

/** A few turns of the event loop: what is already under way runs, no clock involved. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((ok) => setImmediate(ok));
}

/** Warnings of failed connection attempts logged so far. */
const refusals = () => logs.filter((l) => l.level === 'warn' && l.m === 'IMAP connection failed').length;

beforeAll(async () => {
  admin = await connectAdmin();
});

afterAll(async () => {
  await admin?.logout().catch(() => admin.close());
});

let n = 0;
afterEach(async () => {
  await Promise.all(watchers.splice(0).map((w) => w.stop()));
  vi.restoreAllMocks();
  // Remove this test's folders (children first).
  for (const f of [folders.inbox, folders.done, folders.aside, folders.inbox.split('/')[0]!])
    await admin.mailboxDelete(path(f)).catch(() => undefined);
});

function newFolders(): void {
  const root = `W${++n}-${randomBytes(3).toString('hex')}`;
  folders = { inbox: `${root}/In`, done: `${root}/Done`, aside: `${root}/Aside` };
}

async function makeInbox(): Promise<void> {
  newFolders();
  logs = [];
  await admin.mailboxCreate(path(folders.inbox));
}

describe('MailboxWatcher (real Dovecot)', () => {
  it('handles the mails already there, oldest first, and moves them to the done folder (created)', async () => {
    await makeInbox();
    await put(folders.inbox, 'm1', 'm2', 'm3');
    const { seen, handler } = recorder();
    const w = watcher(handler);
    await w.start();
    expect(w.connected).toBe(true);
    await until('3 mails handled', () => w.stats.handled === 3);
    expect(seen).toEqual(['m1', 'm2', 'm3']);
    expect(await subjects(folders.done)).toEqual(['m1', 'm2', 'm3']);
    expect(await subjects(folders.inbox)).toEqual([]);
    expect(w.stats).toEqual({ handled: 3, aside: 0, errors: 0, reconnects: 0 });
  });

  it('a mail arriving while it idles is handled at once (IDLE, not polling)', async () => {
    await makeInbox();
    const idled = idles();
    const { seen, handler } = recorder();
    const w = watcher(handler); // its next re-check of the mailbox is an hour away
    await w.start();
    await until('the first (empty) pass over, the watcher in IDLE', () => idled() > 0);
    await put(folders.inbox, 'late');
    await until('the new mail handled', () => w.stats.handled === 1);
    expect(seen).toEqual(['late']);
    expect(await subjects(folders.done)).toEqual(['late']);
  });

  it("a handler's 'aside' moves the mail to the aside folder", async () => {
    await makeInbox();
    await put(folders.inbox, 'keep', 'junk', 'keep2');
    const { seen, handler } = recorder((s) => (s === 'junk' ? 'aside' : 'done'));
    const w = watcher(handler);
    await w.start();
    await until('3 mails handled', () => w.stats.handled === 3);
    expect(seen).toEqual(['keep', 'junk', 'keep2']);
    expect(await subjects(folders.aside)).toEqual(['junk']);
    expect(await subjects(folders.done)).toEqual(['keep', 'keep2']);
    expect(w.stats).toMatchObject({ handled: 3, aside: 1, errors: 0 });
  });

  it(
    'a handler that throws leaves the mail in the mailbox; ' + 'it is retried and moved once the handler succeeds',
    async () => {
      await makeInbox();
      await put(folders.inbox, 'flaky', 'fine');
      let failuresLeft = 2;
      const calls: string[] = [];
      const handler: MailHandler = async (m) => {
        const subject = /^Subject: (.*)$/m.exec(m.source!.toString('latin1'))![1]!.trim();
        calls.push(subject);
        if (subject === 'flaky' && failuresLeft-- > 0) throw new Error(`CREATEUR unreachable (uid ${m.uid})`);
        return 'done';
      };
      const w = watcher(handler, { pollSeconds: 1 });
      await w.start();
      await until('first failure', () => w.stats.errors === 1);
      await until('the other mail handled', () => w.stats.handled === 1);
      expect(await subjects(folders.inbox)).toEqual(['flaky']); // still there, not moved
      await until('the flaky mail handled at last', () => w.stats.handled === 2);
      expect(calls.slice(0, 2)).toEqual(['flaky', 'fine']); // the failure does not hold up the next mail
      expect(calls.filter((c) => c === 'flaky')).toHaveLength(3);
      expect(w.stats.errors).toBe(2);
      expect(await subjects(folders.done)).toEqual(['fine', 'flaky']);
      expect(await subjects(folders.inbox)).toEqual([]);
      const errors = logs.filter((l) => l.level === 'error');
      expect(errors).toHaveLength(2);
      expect(errors[0]!.o).toMatchObject({
        uid: expect.any(Number),
        err: expect.stringContaining('CREATEUR unreachable'),
      });
      expect(JSON.stringify(logs)).not.toContain('secret content'); // no mail content in the logs
    },
  );

  it('a mail over maxMessageBytes goes aside without being downloaded', async () => {
    await makeInbox();
    await admin.append(path(folders.inbox), mail('big', 5000));
    await put(folders.inbox, 'small');
    const fetchOne = vi.spyOn(ImapFlow.prototype, 'fetchOne');
    const got: { uid: number; size: number; tooLarge?: boolean; source?: Buffer }[] = [];
    const w = watcher(
      async (m) => {
        got.push(m);
        return 'done'; // even 'done': a mail too large goes aside
      },
      { maxMessageBytes: 2000 },
    );
    await w.start();
    await until('2 mails handled', () => w.stats.handled === 2);
    expect(got[0]).toEqual({ uid: expect.any(Number), size: expect.any(Number), tooLarge: true });
    expect(got[0]!.size).toBeGreaterThan(2000);
    expect(got[1]!.source?.toString()).toContain('Subject: small');
    const bigUid = got[0]!.uid;
    // The source of the big mail was never asked for; the small one's was.
    const asked = fetchOne.mock.calls.map((c) => String(c[0]));
    expect(asked).not.toContain(String(bigUid));
    expect(asked).toContain(String(got[1]!.uid));
    expect(await subjects(folders.aside)).toEqual(['big']);
    expect(await subjects(folders.done)).toEqual(['small']);
    expect(w.stats).toMatchObject({ handled: 2, aside: 1 });
  });

  it('reconnects with backoff after the connection is cut, and goes on', async () => {
    await makeInbox();
    const gate = await TcpGate.start(env().imap);
    try {
      const { seen, handler } = recorder();
      const w = watcher(handler, { port: gate.port });
      await w.start();
      await put(folders.inbox, 'before');
      await until('first mail handled', () => w.stats.handled === 1);

      gate.close(); // the server "goes away": connection cut, new ones refused
      await until('disconnection noticed', () => !w.connected);
      await put(folders.inbox, 'during'); // delivered while the watcher is away
      await until('two refused attempts (after 1 s, then 2 s)', () => refusals() >= 2);
      expect(w.stats.handled).toBe(1);
      expect(logs.some((l) => l.level === 'warn' && /reconnecting/.test(l.m))).toBe(true);

      await gate.open();
      await until('reconnected and the mail handled', () => w.stats.handled === 2);
      expect(w.connected).toBe(true);
      expect(w.stats.reconnects).toBe(1);
      await put(folders.inbox, 'after'); // and IDLE works again on the new connection
      await until('a mail after the reconnection', () => w.stats.handled === 3);
      expect(seen).toEqual(['before', 'during', 'after']);
      expect(await subjects(folders.done)).toEqual(['before', 'during', 'after']);
    } finally {
      await Promise.all(watchers.splice(0).map((w) => w.stop()));
      await gate.stop();
    }
  });

  it(
    'a connection that goes silent ' + '(IDLE stalled, nothing closed) is detected by the re-check and replaced',
    async () => {
      await makeInbox();
      const proxy = await BlackHoleProxy.start(env().imap);
      try {
        const idled = idles();
        const { seen, handler } = recorder();
        const w = watcher(handler, { port: proxy.port, pollSeconds: 1 });
        await w.start();
        await put(folders.inbox, 'before');
        await until('first mail handled', () => w.stats.handled === 1);
        const before = idled();
        await until('idling', () => idled() > before);
        proxy.swallowOpenConnections(); // bytes vanish both ways, no FIN, no RST
        await put(folders.inbox, 'after');
        // Re-check after 1 s gets no answer within 5 s, connection dropped, reconnect after 1 s.
        await until('the mail handled over a new connection', () => w.stats.handled === 2, 40_000);
        expect(seen).toEqual(['before', 'after']);
        expect(w.stats.reconnects).toBe(1);
        expect(logs.some((l) => l.level === 'warn' && /deemed stalled/.test(JSON.stringify(l.o)))).toBe(true);
      } finally {
        await Promise.all(watchers.splice(0).map((w) => w.stop()));
        proxy.stop();
      }
    },
    60_000,
  );

  it('start() does not throw when the server is down: it keeps trying', async () => {
    newFolders();
    logs = [];
    const gate = await TcpGate.start(env().imap);
    gate.close();
    try {
      const { handler } = recorder();
      const w = watcher(handler, { port: gate.port });
      await expect(w.start()).resolves.toBeUndefined();
      expect(w.connected).toBe(false);
      await until('a second attempt, refused too', () => refusals() >= 2);
      await admin.mailboxCreate(path(folders.inbox));
      await put(folders.inbox, 'waited');
      await gate.open();
      await until('connected at last and the mail handled', () => w.stats.handled === 1);
      expect(w.stats.reconnects).toBe(0); // the first connection
      gate.close();
      await until('disconnected', () => !w.connected);
      await w.stop(); // during the backoff sleep
    } finally {
      await gate.stop();
    }
  });

  it('stop() during the wait between connection attempts ends the retries at once', async () => {
    newFolders();
    logs = [];
    const gate = await TcpGate.start(env().imap);
    gate.close();
    try {
      const { handler } = recorder();
      const w = watcher(handler, { port: gate.port, reconnect: { initialDelayMs: 3_600_000 } });
      await w.start(); // the first attempt is refused, the next one is an hour away
      await until('waiting to reconnect', () => logs.some((l) => /reconnecting/.test(l.m)));
      await w.stop(); // returns only if it cuts that hour short
      expect(w.connected).toBe(false);
      expect(refusals()).toBe(1);
    } finally {
      await gate.stop();
    }
  });

  it('stop() while idle returns promptly and logs out', async () => {
    await makeInbox();
    const idled = idles();
    const { handler } = recorder();
    const w = watcher(handler); // its next re-check is an hour away
    await w.start();
    await until('idling', () => idled() > 0);
    await w.stop(); // returns only if it does not wait for that re-check
    expect(w.connected).toBe(false);
    await w.stop(); // idempotent
  });

  it('stop() waits for the mail being handled, which is moved before it returns', async () => {
    await makeInbox();
    await put(folders.inbox, 'slow', 'next');
    let entered!: () => void;
    const inHandler = new Promise<void>((ok) => (entered = ok));
    let release!: () => void;
    const held = new Promise<void>((ok) => (release = ok));
    const seen: number[] = [];
    const w = watcher(async (m) => {
      seen.push(m.uid);
      entered();
      await held;
      return 'done';
    });
    await w.start();
    await inHandler;
    let stopped = false;
    const stopping = w.stop().then(() => void (stopped = true));
    await settle();
    expect(stopped).toBe(false); // waiting for the handler
    release();
    await stopping;
    expect(seen).toHaveLength(1); // 'next' is left for the next start
    expect(await subjects(folders.done)).toEqual(['slow']);
    expect(await subjects(folders.inbox)).toEqual(['next']);
  });

  it('end to end: a real Postfix success DSN, read by parseReport through the watcher', async () => {
    // (Postfix here refuses unknown and foreign recipients at RCPT, so it writes no failure DSN: those are
    // covered by the unit tests of parseReport.)
    await makeInbox();
    const sender = 'dpi@hopital.test';
    const tag = `wtest-${randomBytes(6).toString('hex')}`;
    const transport = nodemailer.createTransport({
      host: env().smtp.host,
      port: env().smtp.port,
      secure: false,
      ignoreTLS: true,
    });
    try {
      await transport.sendMail({
        envelope: { from: sender, to: ['dr.durand@pro.test'] },
        from: sender,
        to: 'dr.durand@pro.test',
        subject: 'test watcher',
        text: 'x',
        messageId: `<${tag}@hopital.test>`,
        dsn: { id: `${tag}.0`, return: 'headers', notify: ['success', 'failure'], recipient: sender },
      });
    } finally {
      transport.close();
    }
    const [dsn] = await waitForMail(sender, (s) => s.includes(tag) && /report-type=delivery-status/i.test(s), {
      timeoutMs: 20_000,
    });
    await admin.append(path(folders.inbox), dsn!);

    const reports: Report[] = [];
    const w = watcher(async (m) => {
      reports.push(parseReport(m.source!));
      return 'done';
    });
    await w.start();
    await until('the report handled', () => w.stats.handled === 1);
    expect(reports).toEqual([
      {
        kind: 'dsn',
        envelopeId: `${tag}.0`,
        originalMessageId: `<${tag}@hopital.test>`,
        reportingMta: 'mx.pfi.test',
        recipients: [
          {
            finalRecipient: 'dr.durand@pro.test',
            // nodemailer sends dsn.recipient as the ORCPT of every recipient: Postfix reports it as given.
            originalRecipient: sender,
            action: 'delivered',
            status: '2.0.0',
            diagnostic: expect.stringMatching(/^250 2\.0\.0 <dr\.durand@pro\.test> \S+ Saved$/),
            smtpCode: 250,
          },
        ],
      },
    ]);

    // Leave the shared mailboxes as they were.
    for (const account of [sender, 'dr.durand@pro.test']) {
      const c = await connectAdmin(account);
      try {
        await c.mailboxOpen('INBOX');
        const mine = await c.search({ text: tag }, { uid: true });
        if (mine && mine.length) await c.messageDelete(mine, { uid: true });
      } finally {
        await c.logout().catch(() => c.close());
      }
    }
  });
});

/** A TCP relay whose open connections can be made to swallow every byte, silently (a dead NAT entry). */
class BlackHoleProxy {
  private constructor(
    private readonly server: net.Server,
    private readonly pairs: Set<{ swallow: boolean; a: net.Socket; b: net.Socket }>,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<BlackHoleProxy> {
    const pairs = new Set<{ swallow: boolean; a: net.Socket; b: net.Socket }>();
    const server = net.createServer((a) => {
      const b = net.connect(target);
      const pair = { swallow: false, a, b };
      pairs.add(pair);
      a.on('data', (d) => void (pair.swallow || b.write(d)));
      b.on('data', (d) => void (pair.swallow || a.write(d)));
      const end = () => {
        a.destroy();
        b.destroy();
        pairs.delete(pair);
      };
      a.on('error', end).on('close', end);
      b.on('error', end).on('close', end);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    return new BlackHoleProxy(server, pairs, (server.address() as net.AddressInfo).port);
  }

  swallowOpenConnections(): void {
    for (const p of this.pairs) p.swallow = true;
  }

  stop(): void {
    this.server.close();
    for (const p of this.pairs) {
      p.a.destroy();
      p.b.destroy();
    }
  }
}
