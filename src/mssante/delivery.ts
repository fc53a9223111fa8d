/**
 * Flow A, part 3: each submission routed to MSSanté (DESTMSSANTEPS / DESTMSSANTEPAT) is sent as IHE
 * XDM e-mails by a job of its own (queue `<channel>-mss`), and the mail system's reports come back
 * to the channel's application mailbox: DSN (delivered / failed) into ZAM^Z02, MDN (read) into
 * ZAM^Z03, one per recipient, when the CREATEUR asked for them.
 *
 * State per message in Redis (`pfi:mss:<channel>:s:<message id>`): per recipient, whether the SMTP
 * server took the mail (`rcpt:<address>`); the ZAMs sent are kept by the business acks (src/acks). A retry
 * sends only to the recipients still pending; a report seen twice (watcher restarted before it moved
 * the mail) finds its ZAM already sent. Message-ID and ENVID carry the message id, so a report names
 * the request it is about without any other lookup.
 */
import { createHash } from 'node:crypto';
import { UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import { deliveryQueue } from '../redis/queues.js';
import type { RedisKeys } from '../redis/keys.js';
import type { Redis } from 'ioredis';
import type { Transporter } from 'nodemailer';
import { extractDocuments } from '../cda/extract.js';
import type { MssanteConfig, TransmissionChannel } from '../config/channels.js';
import type { BusinessAcks } from '../acks/business-acks.js';
import type { Submission } from '../request/submission.js';
import { Hl7Message } from '../hl7v2/message.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../util/log.js';
import { deliveries } from '../util/metrics.js';
import { redact } from '../util/redact.js';
import { recipientAt } from '../request/participants.js';
import { MailError, buildMails, mailOptions, patientOf, type MssMail, type XdmDocument } from './mail.js';
import { ReportError, parseReport } from '../mail/reports.js';
import { smtpErrorCode, smtpErrorLabel } from '../mail/smtp-codes.js';
import { mailPassword, mailTls, smtpTransport } from '../mail/smtp.js';
import { MailboxWatcher, type MailOutcome } from '../mail/watcher.js';

interface MssJob {
  journalId: string;
}

export interface MssDeps {
  queueRedis: Redis;
  workerRedis: Redis;
  journal: Journal;
  /** The channel's CREATEUR listener for ZAM^Z02 / Z03, when it has one. */
  acks?: BusinessAcks;
  keys: RedisKeys;
  log: Logger;
  retentionMs: number;
}

/** What a recipient's SMTP exchange ended with. */
type RcptState = 'accepted' | `refused:${number}` | `failed:${number}`;

export class MssDelivery {
  readonly queue: Queue<MssJob>;
  private worker?: Worker<MssJob>;
  private watcher?: MailboxWatcher;
  private readonly transport: Transporter;
  private readonly name: string;

  constructor(
    private readonly channel: TransmissionChannel,
    private readonly cfg: MssanteConfig,
    private readonly deps: MssDeps,
  ) {
    this.name = `${channel.id}-mss`;
    this.queue = deliveryQueue<MssJob>(this.name, deps.queueRedis, deps.keys.queues, this.cfg);
    this.transport = smtpTransport(this.cfg.smtp, {
      maxConnections: this.cfg.concurrency,
      timeoutMs: this.cfg.timeoutSeconds * 1000,
    });
  }

  private stateKey(journalId: string): string {
    return this.deps.keys.mssSending(this.channel.id, journalId);
  }

  /** Called by the transmission flow once the submission is stored; once per message. */
  async schedule(journalId: string): Promise<void> {
    await this.queue.add('mss', { journalId }, { jobId: `mss-${journalId}` });
  }

  start(): void {
    this.worker = new Worker<MssJob>(this.name, (job) => this.process(job), {
      connection: this.deps.workerRedis,
      prefix: this.deps.keys.queues,
      concurrency: this.cfg.concurrency,
      lockDuration: 30_000,
      stalledInterval: 10_000,
      maxStalledCount: 5,
    });
    this.worker.on('error', (err) =>
      this.deps.log.error({ channel: this.channel.id, err: err.message }, 'MSSanté worker error'),
    );
    const i = this.cfg.imap;
    if (i) {
      this.watcher = new MailboxWatcher(
        {
          host: i.host,
          port: i.port,
          secure: i.secure,
          auth: { user: i.auth.user, pass: mailPassword(i.auth) },
          ...(i.tls ? { tls: mailTls(i.tls) } : {}),
          doneFolder: i.doneFolder,
          asideFolder: i.asideFolder,
          maxMessageBytes: 10 * 1024 * 1024,
          pollSeconds: i.pollSeconds,
          log: this.deps.log,
        },
        (mail) => this.onMail(mail),
      );
      void this.watcher.start();
    }
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
  }

  async close(): Promise<void> {
    await this.watcher?.stop();
    await this.worker?.close();
    await this.queue.close();
    this.transport.close();
  }

  /** Per recipient: what the SMTP server said and which ZAM went out (admin API). */
  async status(journalId: string): Promise<Record<string, string> | undefined> {
    const h = await this.deps.queueRedis.hgetall(this.stateKey(journalId));
    // The ZAMs sent, as `z2:<address>` / `z3:<address>` (`z2` alone: the engine refused the request).
    const acks = await this.deps.acks?.sent(journalId, this.deps.queueRedis);
    for (const [name, code] of Object.entries(acks ?? {}))
      if (/^Z0[23]/.test(name)) h[`z${name[2]}${name.slice(3)}`] = code;
    return Object.keys(h).length ? h : undefined;
  }

  private async process(job: Job<MssJob>): Promise<void> {
    const { journalId } = job.data;
    const { journal, workerRedis: redis } = this.deps;
    const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const submission = await journal.result<Submission>(journalId, 'submission');
    const raw = await journal.raw(journalId);
    if (!submission || !raw) throw new UnrecoverableError('the submission or the message is no longer in the journal');
    const msg = Hl7Message.parse(raw, { defaultCharset: this.channel.source.defaultCharset });
    const key = this.stateKey(journalId);
    const state = await redis.hgetall(key);

    let mails: MssMail[];
    try {
      mails = buildMails({
        submission,
        documents: this.documents(submission, msg),
        patient: patientOf(msg),
        from: this.cfg.from,
        nil: this.cfg.nil,
        defaultBody: this.cfg.bodies,
      });
    } catch (e) {
      if (!(e instanceof MailError)) throw e;
      // The request cannot be served by MSSanté as it stands: say it once, no retry.
      if (!state.refused) {
        await redis.multi().hset(key, 'refused', e.rule).pexpire(key, this.deps.retentionMs).exec();
        await this.deps.journal.note(journalId, {
          status: 'rejected',
          destination: 'mssante',
          detail: `MSSanté: not sent`,
          error: { code: e.rule, message: e.message },
        });
        deliveries.inc({ channel: this.channel.id, destination: 'mssante', outcome: 'refused' });
      }
      if (submission.routes.acks.reception) {
        const error = {
          code: e.rule,
          label: 'Envoi MSSanté refusé par la PFI',
          system: 'PFIERRORCODE',
          text: e.message,
        };
        await this.zam(journalId, msg, 'Z02', false, undefined, error);
      }
      return;
    }

    const retry: string[] = [];
    for (const [i, mail] of mails.entries()) {
      const pending = mail.to.filter((a) => !state[`rcpt:${a.toLowerCase()}`]);
      if (!pending.length) continue;
      let results: Map<string, RcptState>;
      try {
        results = await this.send(journalId, i, mail, pending, submission.routes.acks.reception);
      } catch (e) {
        // Nothing known to be sent: the whole mail is retried, or given up on at the last attempt.
        const err = e as Error & { code?: string; responseCode?: number };
        if (!last) {
          retry.push(`${mail.audience}: ${err.message}`);
          continue;
        }
        const code = smtpErrorCode({
          responseCode: err.responseCode,
          network: err.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(err.message) ? 'refused' : 'unreachable',
        });
        results = new Map(pending.map((a) => [a, `failed:${code}` as RcptState]));
      }
      for (const [address, outcome] of results) {
        const lower = address.toLowerCase();
        if (outcome.startsWith('refused:4') && !last) {
          retry.push(`${address}: ${outcome}`);
          continue;
        }
        await redis
          .multi()
          .hset(key, `rcpt:${lower}`, outcome, `mail:${i}`, this.messageId(journalId, i))
          .pexpire(key, this.deps.retentionMs)
          .exec();
        if (outcome === 'accepted') {
          await this.deps.journal.note(journalId, {
            status: 'delivered',
            destination: `mssante:${lower}`,
            detail: `MSSanté: accepted by the mail server (${mail.audience})`,
          });
          deliveries.inc({ channel: this.channel.id, destination: 'mssante', outcome: 'accepted' });
          continue;
        }
        const code = Number(outcome.split(':')[1]);
        const dead = outcome.startsWith('failed:');
        const event = {
          status: dead ? ('dead-lettered' as const) : ('rejected' as const),
          destination: `mssante:${lower}`,
          detail: dead
            ? `MSSanté: gave up after attempt ${job.attemptsMade + 1}`
            : 'MSSanté: refused by the mail server',
          error: { code, message: smtpErrorLabel(code) },
        };
        // A dead letter needs an operator: it moves the message's status; a refusal is one route's outcome.
        await (dead ? journal.record(journalId, event) : journal.note(journalId, event));
        deliveries.inc({
          channel: this.channel.id,
          destination: 'mssante',
          outcome: dead ? 'dead-lettered' : 'refused',
        });
        if (submission.routes.acks.reception) await this.recipientZam(journalId, msg, 'Z02', lower, false, code);
      }
    }
    if (retry.length) {
      await this.deps.journal.note(journalId, {
        status: 'failed',
        destination: 'mssante',
        detail: `MSSanté: attempt ${job.attemptsMade + 1} failed, will retry`,
        error: { message: retry.join('; ') },
      });
      this.deps.log.warn(
        { channel: this.channel.id, journalId, attempt: job.attemptsMade + 1, err: redact(retry.join('; ')) },
        'MSSanté sending failed, will retry',
      );
      throw new Error(retry.join('; '));
    }
  }

  /** One SMTP transaction; resolves with the outcome of each envelope recipient. */
  private async send(
    journalId: string,
    i: number,
    mail: MssMail,
    to: string[],
    dsn: boolean,
  ): Promise<Map<string, RcptState>> {
    const out = new Map<string, RcptState>();
    const rejected = (errors: { recipient?: string; responseCode?: number }[] | undefined) => {
      for (const r of errors ?? [])
        if (r.recipient) out.set(r.recipient, `refused:${smtpErrorCode({ responseCode: r.responseCode })}`);
    };
    try {
      const info = await this.transport.sendMail({
        envelope: { from: this.cfg.from, to },
        ...mailOptions(mail),
        messageId: this.messageId(journalId, i),
        ...(dsn
          ? {
              dsn: {
                id: this.envelopeId(journalId, i),
                return: 'headers',
                notify: ['success', 'failure', 'delay'],
                recipient: this.cfg.from,
              },
            }
          : {}),
      });
      for (const a of info.accepted as string[]) out.set(a, 'accepted');
      rejected((info as { rejectedErrors?: { recipient?: string; responseCode?: number }[] }).rejectedErrors);
    } catch (e) {
      const err = e as Error & { code?: string; rejectedErrors?: { recipient?: string; responseCode?: number }[] };
      // Every recipient refused at RCPT: a per-recipient answer, not a failure of the server.
      if (err.code === 'EENVELOPE' && err.rejectedErrors?.length) rejected(err.rejectedErrors);
      else throw e;
    }
    // A recipient the server neither accepted nor refused (should not happen): try again.
    for (const a of to)
      if (!out.has(a) && ![...out.keys()].some((k) => k.toLowerCase() === a.toLowerCase())) out.set(a, 'refused:451');
    return out;
  }

  private messageId(journalId: string, i: number): string {
    return `<${journalId}.${i}.${this.channel.id}@${this.cfg.from.split('@')[1] ?? 'pfi'}>`;
  }

  private envelopeId(journalId: string, i: number): string {
    return `${journalId}.${i}`;
  }

  /** The CDA bytes of each document, as stored (or as the engine built it around a PDF). */
  private documents(sub: Submission, msg: Hl7Message): XdmDocument[] {
    const raws = extractDocuments(msg);
    return sub.documents.map((d) => {
      const bytes = d.generatedCda ? Buffer.from(d.generatedCda, 'base64') : raws.find((r) => r.obx === d.obx)?.bytes;
      if (!bytes) throw new UnrecoverableError(`OBX ${d.obx}: the document is no longer in the message`);
      return { entry: d.entry, bytes };
    });
  }

  /** The recipient's identifier for OBX-4 of the ZAM: PRT-5.1 of the PRT RCT with that address. */
  private recipientId(msg: Hl7Message, address: string): string | undefined {
    return recipientAt(msg, address)?.field('5.1');
  }

  /** ZAM^Z02 / Z03 for one recipient, once; true when it went out now. */
  private async recipientZam(
    journalId: string,
    msg: Hl7Message,
    kind: 'Z02' | 'Z03',
    address: string,
    ok: boolean,
    smtpCode?: number,
  ): Promise<boolean> {
    const error =
      !ok && kind === 'Z02' && smtpCode
        ? { code: String(smtpCode), label: smtpErrorLabel(smtpCode), system: 'SMTPERRORCODE' }
        : undefined;
    return (
      (await this.zam(journalId, msg, kind, ok, { id: this.recipientId(msg, address), address }, error)) !== undefined
    );
  }

  /** A ZAM about the request, once by name: `Z02` (the engine refused it), `Z02:<address>`, `Z03:<address>`. */
  private zam(
    journalId: string,
    msg: Hl7Message,
    kind: 'Z02' | 'Z03',
    ok: boolean,
    party: { id?: string; address: string } | undefined,
    error?: { code: string; label: string; system: string; text?: string },
  ): Promise<string | undefined> {
    if (!this.deps.acks) {
      this.deps.log.warn(
        { channel: this.channel.id, journalId },
        `ZAM^${kind} asked, but the channel has no businessAcks address`,
      );
      return Promise.resolve(undefined);
    }
    const name = party ? `${kind}:${party.address}` : kind;
    const zam = { kind, ok, ...(party ? { party } : {}), ...(error ? { error } : {}) };
    const detail = `ZAM^${kind} ${ok ? 'Y' : 'N'}${party ? ` for ${party.address}` : ''} sent to the CREATEUR`;
    return this.deps.acks.send(journalId, name, msg, zam, detail);
  }

  /**
   * A mail of the application mailbox: a DSN or an MDN about a mail we sent becomes ZAMs; anything
   * else goes aside. Throwing leaves the mail in the mailbox for a later try (a CREATEUR that does not
   * answer): nothing is lost, and what was already sent is not sent twice.
   */
  private async onMail(mail: { uid: number; source?: Buffer; size: number; tooLarge?: boolean }): Promise<MailOutcome> {
    if (!mail.source) return this.aside(mail.uid, `too large for a report (${mail.size} bytes)`);
    let report;
    try {
      report = parseReport(mail.source);
    } catch (e) {
      if (e instanceof ReportError) return this.aside(mail.uid, `unreadable report: ${e.message}`, mail.source);
      throw e;
    }
    if (report.kind === 'other') return this.aside(mail.uid, 'not a delivery or read report', mail.source);
    const ref = report.kind === 'dsn' ? (report.envelopeId ?? report.originalMessageId) : report.originalMessageId;
    const journalId = ref && this.journalIdOf(ref);
    const state = journalId ? await this.deps.workerRedis.hgetall(this.stateKey(journalId)) : {};
    if (!journalId || !Object.keys(state).length)
      return this.aside(
        mail.uid,
        `report about a mail this channel did not send (${ref ?? 'no reference'})`,
        mail.source,
      );
    const submission = await this.deps.journal.result<Submission>(journalId, 'submission');
    const raw = await this.deps.journal.raw(journalId);
    if (!submission || !raw) return this.aside(mail.uid, 'report about a message no longer in the journal');
    const msg = Hl7Message.parse(raw, { defaultCharset: this.channel.source.defaultCharset });

    if (report.kind === 'dsn') {
      for (const r of report.recipients) {
        const address = r.finalRecipient.toLowerCase();
        if (r.action === 'delayed' || r.action === 'relayed' || r.action === 'expanded') {
          await this.deps.journal.note(journalId, {
            status: 'processed',
            destination: `mssante:${address}`,
            detail: `MSSanté: DSN ${r.action} (${r.status})`,
          });
          continue;
        }
        const ok = r.action === 'delivered';
        const code = ok ? undefined : smtpErrorCode({ responseCode: r.smtpCode, status: r.status });
        if (submission.routes.acks.reception && (await this.recipientZam(journalId, msg, 'Z02', address, ok, code))) {
          await this.deps.journal.note(journalId, {
            status: ok ? 'delivered' : 'rejected',
            destination: `mssante:${address}`,
            detail: `MSSanté: DSN ${r.action} (${r.status})`,
            ...(ok ? {} : { error: { code: code!, message: smtpErrorLabel(code!) } }),
          });
          deliveries.inc({ channel: this.channel.id, destination: 'mssante', outcome: ok ? 'delivered' : 'bounced' });
        }
      }
      return 'done';
    }
    // MDN: the recipient's software says the mail was displayed (or deleted unread, or refused).
    const address = (report.finalRecipient ?? report.from ?? '').toLowerCase().replace(/^.*</, '').replace(/>.*$/, '');
    const ok = report.disposition.type === 'displayed' || report.disposition.type === 'processed';
    if (submission.routes.acks.reading && address && (await this.recipientZam(journalId, msg, 'Z03', address, ok))) {
      await this.deps.journal.note(journalId, {
        status: 'processed',
        destination: `mssante:${address}`,
        detail: `MSSanté: MDN ${report.disposition.type}`,
      });
      deliveries.inc({ channel: this.channel.id, destination: 'mssante', outcome: ok ? 'read' : 'not-read' });
    }
    return 'done';
  }

  /** The message id in an ENVID (`<id>.<n>`) or a Message-ID (`<id>.<n>.<channel>@domain`). */
  private journalIdOf(ref: string): string | undefined {
    const m = /^<?([0-9a-z]+-[0-9a-z]+-[0-9a-z]+)\.\d+(?:\.([^@>]+))?/i.exec(ref.trim());
    if (!m || (m[2] && m[2] !== this.channel.id)) return undefined;
    return m[1];
  }

  /**
   * A mail the channel cannot use goes to the aside folder, and into the journal (kept once, even
   * when the watcher sees it again after a restart), so that an operator finds it.
   */
  private async aside(uid: number, why: string, source?: Buffer): Promise<MailOutcome> {
    this.deps.log.warn(
      { channel: this.channel.id, uid, why: redact(why) },
      'mail of the application mailbox set aside',
    );
    deliveries.inc({ channel: this.channel.id, destination: 'mssante', outcome: 'report-aside' });
    if (source) {
      const dedup = `${this.channel.id}:mail:${createHash('sha256').update(source).digest('hex')}`;
      await this.deps.journal.ingest(
        source,
        { channel: this.channel.id, size: source.length, messageType: 'MAIL' },
        { status: 'rejected', detail: `mail set aside in ${this.cfg.imap?.asideFolder}: ${why}` },
        dedup,
      );
    }
    return 'aside';
  }
}
