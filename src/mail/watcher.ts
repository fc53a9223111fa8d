/**
 * Watches an IMAP mailbox (the MSSanté application mailbox of the PFI) and hands each mail to a handler,
 * then files it away: the mail system's delivery reports and the recipients' read receipts arrive there.
 */
import { ImapFlow, type ImapFlowOptions } from 'imapflow';

export interface WatcherOptions {
  host: string;
  port: number;
  /** TLS from the first byte (IMAPS); false: STARTTLS when the server offers it. */
  secure: boolean;
  auth: { user: string; pass: string };
  /** `servername`: the name the server's certificate must match (and SNI), when `host` is an address. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean; servername?: string };
  /** Default 'INBOX'; '/' separates levels. */
  mailbox?: string;
  /** Processed mails are moved here (created if missing), e.g. 'PFI/Traites'; '/' separates levels. */
  doneFolder: string;
  /** Mails the handler could not use, and mails too large to download, e.g. 'PFI/Rejetes'. */
  asideFolder: string;
  /** Larger mails are not downloaded: the handler gets { tooLarge: true } and they go aside. */
  maxMessageBytes: number;
  /** Periodic re-check of the mailbox, for when IDLE is not available or silently stalls (default 30). */
  pollSeconds?: number;
  /** Waits between connection attempts: initialDelayMs (default 1000), doubling up to maxDelayMs (default 30 000). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  log?: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
}

export type MailOutcome = 'done' | 'aside';
export type MailHandler = (mail: {
  uid: number;
  source?: Buffer;
  size: number;
  tooLarge?: boolean;
}) => Promise<MailOutcome>;

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const LOGOUT_TIMEOUT_MS = 5000;
/** Bounds of the time a re-check command may take (pollSeconds, within these). */
const MIN_CHECK_MS = 5000;
const MAX_CHECK_MS = 30_000;
const NO_LOG: NonNullable<WatcherOptions['log']> = { info() {}, warn() {}, error() {} };

/** What may be logged of an error: its kind and message, cut short (never a mail's content on purpose). */
function describe(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown; code?: unknown } | undefined;
  const text =
    e && typeof e.message === 'string' ? `${typeof e.name === 'string' ? e.name : 'Error'}: ${e.message}` : String(err);
  const code = e && typeof e.code === 'string' ? ` [${e.code}]` : '';
  return (text.length > 300 ? `${text.slice(0, 300)}…` : text) + code;
}

/** A folder name of the options ('PFI/Traites') as a path for imapflow, which joins it with the server's delimiter. */
const folderPath = (name: string): string[] => name.split('/').filter((s) => s !== '');

/**
 * Hands the mails of one IMAP mailbox to a handler, one at a time, oldest (lowest UID) first, then moves
 * each to `doneFolder` or `asideFolder` (IMAP MOVE, or COPY + delete where MOVE is missing) according to
 * what the handler resolved with. Mails larger than `maxMessageBytes` are not downloaded: the handler is
 * told (`tooLarge: true`, no source) and they go aside whatever it answers.
 *
 * A mail is moved only after the handler resolved. If the handler throws (or resolves with something
 * else than 'done' / 'aside'), the mail stays in the mailbox and is tried again at the next pass (next
 * poll or next IDLE wake-up, never twice in the same pass); that counts in `stats.errors` and is logged
 * with the UID and the error, never the mail's content.
 *
 * **The handler must be idempotent**: a crash, a stop or a lost connection between the end of the
 * handler and the end of the move leaves the mail in the mailbox, so it is handled again after the
 * restart or the reconnection. Delivery is "at least once", never "exactly once".
 *
 * Connection: `start()` connects and creates the folders, then processes what is already in the
 * mailbox and waits with IDLE (imapflow polls with NOOP where the server has no IDLE), re-checking the
 * mailbox every `pollSeconds` anyway, since an IDLE can stall without a word: a re-check that gets no
 * answer within pollSeconds (at least 5 s, at most 30 s) ends the connection. A lost, stalled or refused
 * connection is retried forever with an exponential backoff from 1 s to 30 s (`reconnect`), reset once
 * connected.
 *
 * `stats`: `handled` = mails handled and moved (to either folder), `aside` = those moved aside,
 * `errors` = handler failures and failed moves, `reconnects` = successful connections after the first.
 */
export class MailboxWatcher {
  private readonly opts: WatcherOptions;
  private readonly log: NonNullable<WatcherOptions['log']>;
  private readonly mailbox: string;
  private readonly pollMs: number;
  private readonly counters = { handled: 0, aside: 0, errors: 0, reconnects: 0 };
  private running = false;
  private starting?: Promise<void>;
  private loop?: Promise<void>;
  private client?: ImapFlow;
  private isConnected = false;
  private connectedBefore = false;
  /** Something happened in the mailbox (EXISTS) since the last pass began. */
  private dirty = false;
  /** Ends the current wait (IDLE wait or backoff sleep) early. */
  private wake?: () => void;

  constructor(
    opts: WatcherOptions,
    private readonly handler: MailHandler,
  ) {
    if (!opts.doneFolder || !opts.asideFolder)
      throw new TypeError('MailboxWatcher: doneFolder and asideFolder are required');
    if (!(opts.maxMessageBytes > 0)) throw new TypeError('MailboxWatcher: maxMessageBytes must be a positive number');
    if (opts.pollSeconds !== undefined && !(opts.pollSeconds > 0))
      throw new TypeError('MailboxWatcher: pollSeconds must be positive');
    this.opts = opts;
    this.log = opts.log ?? NO_LOG;
    this.mailbox = opts.mailbox ?? 'INBOX';
    this.pollMs = (opts.pollSeconds ?? 30) * 1000;
  }

  /** True while a connection is up and the mailbox usable. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** A snapshot of the counters. */
  get stats(): { handled: number; aside: number; errors: number; reconnects: number } {
    return { ...this.counters };
  }

  /**
   * Starts watching. Resolves once the first connection attempt is over: connected (the mails already
   * there are then being processed in the background), or failed (logged; retried in the background
   * with backoff). Never rejects; a second call returns the first call's promise (a watcher, once
   * stopped, is not started again: make a new one).
   */
  start(): Promise<void> {
    if (this.starting) return this.starting;
    this.running = true;
    let firstAttemptOver!: () => void;
    this.starting = new Promise<void>((ok) => (firstAttemptOver = ok));
    this.loop = this.run(firstAttemptOver);
    return this.starting;
  }

  /** Waits for the mail being handled (and its move), then logs out. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) {
      await this.loop;
      return;
    }
    this.running = false;
    // A connection attempt in progress is abandoned rather than waited for (up to its own timeouts).
    if (this.client && !this.isConnected) this.client.close();
    this.wake?.();
    await this.loop;
  }

  private async run(firstAttemptOver: () => void): Promise<void> {
    let failures = 0;
    while (this.running) {
      let connected = false;
      try {
        connected = await this.session(firstAttemptOver);
      } catch (err) {
        if (this.running)
          this.log.warn({ host: this.opts.host, port: this.opts.port, err: describe(err) }, 'IMAP connection failed');
      }
      firstAttemptOver();
      if (!this.running) break;
      if (connected) failures = 0;
      const { initialDelayMs = MIN_BACKOFF_MS, maxDelayMs = MAX_BACKOFF_MS } = this.opts.reconnect ?? {};
      const delayMs = Math.min(maxDelayMs, initialDelayMs * 2 ** failures);
      failures++;
      this.log.warn(
        { host: this.opts.host, port: this.opts.port, delayMs },
        'IMAP connection lost or refused, reconnecting',
      );
      await this.pause(delayMs);
    }
  }

  private imapOptions(): ImapFlowOptions {
    const o = this.opts;
    const options: ImapFlowOptions = {
      host: o.host,
      port: o.port,
      secure: o.secure,
      auth: { user: o.auth.user, pass: o.auth.pass },
      logger: false,
      // IDLE is run by the watcher itself, between its passes.
      disableAutoIdle: true,
      connectionTimeout: 30_000,
      greetingTimeout: 16_000,
      // A silent connection is probed (NOOP) after this, and given up when the probe gets no answer.
      socketTimeout: Math.max(60_000, 2 * this.pollMs),
      clientInfo: { name: 'pfi-engine' },
    };
    if (o.tls) {
      const tls: NonNullable<ImapFlowOptions['tls']> = {};
      if (o.tls.ca) tls.ca = o.tls.ca;
      if (o.tls.cert) tls.cert = o.tls.cert;
      if (o.tls.key) tls.key = o.tls.key;
      if (o.tls.rejectUnauthorized !== undefined) tls.rejectUnauthorized = o.tls.rejectUnauthorized;
      options.tls = tls;
      if (o.tls.servername) {
        tls.servername = o.tls.servername;
        options.servername = o.tls.servername;
      }
    }
    return options;
  }

  /** One connection, from connect to its loss (or stop). Resolves true if it got connected. */
  private async session(firstAttemptOver: () => void): Promise<boolean> {
    const client = new ImapFlow(this.imapOptions());
    this.client = client;
    // Errors also reject the pending command, and end in 'close': logging is all there is to do here.
    client.on('error', (err: Error) => {
      if (this.running) this.log.warn({ err: describe(err) }, 'IMAP connection error');
    });
    const onExists = (): void => {
      this.dirty = true;
      this.wake?.();
    };
    const onClose = (): void => {
      this.isConnected = false;
      this.wake?.();
    };
    client.on('exists', onExists);
    client.on('close', onClose);
    let connected = false;
    try {
      await client.connect();
      if (!this.running) return false;
      await this.ensureFolder(client, this.opts.doneFolder);
      await this.ensureFolder(client, this.opts.asideFolder);
      connected = true;
      this.isConnected = true;
      if (this.connectedBefore) this.counters.reconnects++;
      this.connectedBefore = true;
      this.log.info({ host: this.opts.host, port: this.opts.port, mailbox: this.mailbox }, 'IMAP mailbox watched');
      firstAttemptOver();

      try {
        while (this.running && client.usable) {
          this.dirty = false;
          await this.pass(client);
          if (!this.running || !client.usable) break;
          if (this.dirty) continue; // new mail came while the pass ran
          // IDLE until a command breaks it (the next pass does); errors end in 'close'.
          client.idle().catch(() => undefined);
          await this.pause(this.pollMs, () => this.dirty || !client.usable);
        }
      } catch (err) {
        if (this.running)
          this.log.warn({ host: this.opts.host, port: this.opts.port, err: describe(err) }, 'IMAP connection broken');
      }
      return true;
    } finally {
      this.isConnected = false;
      client.off('exists', onExists);
      client.off('close', onClose);
      if (!this.running && connected && client.usable) {
        const timer = new Promise<void>((ok) => setTimeout(ok, LOGOUT_TIMEOUT_MS).unref());
        await Promise.race([client.logout().catch(() => undefined), timer]);
      }
      client.close();
      if (this.client === client) this.client = undefined;
    }
  }

  /**
   * Waits `ms`, or less if woken (exists, close, stop). `skip` is checked once the wake-up handle is in
   * place, so an event that came just before is not missed.
   */
  private pause(ms: number, skip?: () => boolean): Promise<void> {
    return new Promise<void>((ok) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        ok();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
      if (!this.running || skip?.()) done();
    });
  }

  private async ensureFolder(client: ImapFlow, name: string): Promise<void> {
    const path = folderPath(name);
    if (path.length === 0) throw new Error(`invalid folder name "${name}"`);
    const delimiter = client.namespace?.delimiter ?? '/';
    const wanted = path.join(delimiter);
    const boxes = await client.list();
    if (boxes.some((b) => b.path === wanted || b.path === `${client.namespace?.prefix ?? ''}${wanted}`)) return;
    const created = await client.mailboxCreate(path);
    if (created.created) this.log.info({ folder: name }, 'IMAP folder created');
  }

  /**
   * The small commands of a pass (select, search, sizes) must answer within the check timeout, else the
   * connection is deemed stalled (an IDLE that went silent: a NAT or a firewall that dropped it) and is
   * closed, which ends the session and reconnects. Downloads and moves are left to imapflow's socket
   * timeout, since their time grows with the mail's size.
   */
  private async checked<T>(client: ImapFlow, what: string, op: Promise<T>): Promise<T> {
    const ms = Math.min(MAX_CHECK_MS, Math.max(MIN_CHECK_MS, this.pollMs));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, fail) => {
      timer = setTimeout(() => {
        fail(new Error(`IMAP server did not answer ${what} within ${ms} ms: connection deemed stalled`));
        client.close();
      }, ms);
    });
    try {
      return await Promise.race([op, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One pass over the mailbox: every mail present (and arriving meanwhile), each at most once. */
  private async pass(client: ImapFlow): Promise<void> {
    const lock = await this.checked(client, 'SELECT', client.getMailboxLock(folderPath(this.mailbox)));
    try {
      const tried = new Set<number>();
      for (;;) {
        if (!this.running || !client.usable) return;
        const uids = await this.checked(client, 'UID SEARCH', client.search({ all: true }, { uid: true }));
        if (!uids) throw new Error(`UID SEARCH failed in ${this.mailbox}`);
        const todo = uids.filter((u) => !tried.has(u));
        if (todo.length === 0) return;
        const sized = await this.checked(
          client,
          'FETCH RFC822.SIZE',
          client.fetchAll(todo, { uid: true, size: true }, { uid: true }),
        );
        const mails = sized.map((m) => ({ uid: m.uid, size: m.size ?? 0 })).sort((a, b) => a.uid - b.uid);
        if (mails.length === 0) return; // gone meanwhile
        for (const mail of mails) {
          if (!this.running || !client.usable) return;
          tried.add(mail.uid);
          await this.handleOne(client, mail);
        }
        for (const u of todo) tried.add(u);
      }
    } finally {
      lock.release();
    }
  }

  private async handleOne(client: ImapFlow, mail: { uid: number; size: number }): Promise<void> {
    const { uid, size } = mail;
    const tooLarge = size > this.opts.maxMessageBytes;
    let source: Buffer | undefined;
    if (!tooLarge) {
      const msg = await client.fetchOne(String(uid), { uid: true, source: true }, { uid: true });
      if (!msg || !msg.source) {
        this.log.warn({ uid }, 'mail gone before it could be read');
        return;
      }
      source = msg.source;
    }

    let outcome: MailOutcome;
    try {
      const result = await this.handler(tooLarge ? { uid, size, tooLarge: true } : { uid, source: source!, size });
      if (result !== 'done' && result !== 'aside')
        throw new TypeError(`handler resolved with ${JSON.stringify(result)}, not 'done' or 'aside'`);
      outcome = result;
    } catch (err) {
      this.counters.errors++;
      this.log.error(
        { uid, size, err: describe(err) },
        'mail handler failed, the mail stays in the mailbox for a later try',
      );
      return;
    }

    const aside = tooLarge || outcome === 'aside';
    const folder = aside ? this.opts.asideFolder : this.opts.doneFolder;
    let moved: unknown;
    try {
      moved = await client.messageMove(String(uid), folderPath(folder), { uid: true });
    } catch (err) {
      this.counters.errors++;
      this.log.error({ uid, folder, err: describe(err) }, 'mail handled but not moved (it will be handled again)');
      throw err; // the connection is likely gone: reconnect
    }
    if (!moved) {
      this.counters.errors++;
      this.log.error({ uid, folder }, 'mail handled but the server refused to move it (it will be handled again)');
      return;
    }
    this.counters.handled++;
    if (aside) this.counters.aside++;
    this.log.info({ uid, size, folder, ...(tooLarge ? { tooLarge } : {}) }, 'mail handled');
  }
}
