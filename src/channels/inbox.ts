/**
 * Flow B's source connector: the channel's application mailbox, watched over IMAP. Each mail is
 * stored in the journal (its bytes, the Message-ID as control id) and queued for the channel's flow
 * before it leaves the INBOX: a crash in between leaves it in the INBOX, and the Message-ID dedup
 * makes the second reading find the first one's entry instead of creating another.
 */
import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { LpsChannel } from '../config/channels.js';
import type { JobData } from './commit.js';
import type { Journal } from '../journal/journal.js';
import { MailboxWatcher, type MailOutcome } from '../mail/watcher.js';
import { readHeaders } from '../mail/reports.js';
import { newId } from '../util/id.js';
import type { Logger } from '../util/log.js';
import { messagesIn } from '../util/metrics.js';
import { mailPassword, mailTls } from '../mail/smtp.js';
import { address } from '../flows/lps/mail.js';

export class Inbox {
  /** One watcher per application mailbox of the channel. */
  private readonly watchers: MailboxWatcher[];

  constructor(
    private readonly channel: LpsChannel,
    private readonly journal: Journal,
    private readonly queue: Queue<JobData>,
    private readonly log: Logger,
  ) {
    const m = channel.source;
    this.watchers = m.accounts.map(
      (auth) =>
        new MailboxWatcher(
          {
            host: m.host,
            port: m.port,
            secure: m.secure,
            auth: { user: auth.user, pass: mailPassword(auth) },
            ...(m.tls ? { tls: mailTls(m.tls) } : {}),
            doneFolder: m.doneFolder,
            asideFolder: m.asideFolder,
            maxMessageBytes: m.maxMessageBytes,
            pollSeconds: m.pollSeconds,
            log,
          },
          (mail) => this.onMail(mail),
        ),
    );
  }

  get connected(): boolean {
    return this.watchers.every((w) => w.connected);
  }

  async start(): Promise<void> {
    await Promise.all(this.watchers.map((w) => w.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.watchers.map((w) => w.stop()));
  }

  private async onMail(mail: { uid: number; source?: Buffer; size: number; tooLarge?: boolean }): Promise<MailOutcome> {
    const channel = this.channel.id;
    if (!mail.source) {
      // Not downloaded: journaled by its size only, for an operator to look at in the aside folder.
      await this.journal.ingest(
        Buffer.alloc(0),
        { channel, size: mail.size, messageType: 'MAIL' },
        {
          status: 'rejected',
          detail:
            `mail of ${mail.size} bytes, over the channel's maxMessageSize: ` +
            `set aside in ${this.channel.source.asideFolder}, unread`,
        },
      );
      return 'aside';
    }
    const headers = readHeaders(mail.source);
    const messageId = headers.get('message-id');
    const dedup = `${channel}:mail:${messageId ?? createHash('sha256').update(mail.source).digest('hex')}`;
    const batch = newId();
    const [r] = await this.journal.ingestMany(
      [
        {
          raw: mail.source,
          summary: {
            channel,
            size: mail.source.length,
            messageType: 'MAIL',
            ...(messageId ? { controlId: messageId } : {}),
            ...(address(headers.get('from')) ? { sendingApplication: address(headers.get('from')) } : {}),
          },
          first: { status: 'received', detail: `mail uid ${mail.uid}` },
          dedup,
        },
      ],
      [],
      batch,
    );
    if (r!.duplicate) {
      // Seen before (a crash before the move): make sure it is queued unless it was processed.
      if (!(await this.journal.finished(r!.id)))
        await this.queue.add('message', { channel, journalIds: [r!.id] }, { jobId: `mail-${r!.id}` });
      return 'done';
    }
    await this.queue.add('message', { channel, batch }, { jobId: batch });
    await this.journal.record(r!.id, { status: 'queued', detail: `job ${batch}` });
    messagesIn.inc({ channel, type: 'MAIL' });
    return 'done';
  }
}
