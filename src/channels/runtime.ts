import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BusinessAcks } from '../acks/business-acks.js';
import type { DmpDelivery } from '../dmp/delivery.js';
import { isPermanent } from '../errors.js';
import { flowOf } from '../flows/index.js';
import type { IdentityStore } from '../identity/store.js';
import type { MssDelivery } from '../mssante/delivery.js';
import type { RedisKeys } from '../redis/keys.js';
import type { EventRecord, Journal, NewEvent } from '../journal/journal.js';
import type { MllpClient } from '../mllp/client.js';
import { destinationClient } from './clients.js';
import { MllpServer } from '../mllp/server.js';
import type { Logger } from '../util/log.js';
import { connections, messagesOut } from '../util/metrics.js';
import { redact } from '../util/redact.js';
import { readPem, type ChannelConfig, type MllpDestination } from '../config/channels.js';
import type { JobData } from './commit.js';
import { Ingest } from './ingest.js';
import { Inbox } from './inbox.js';

export interface ChannelDeps {
  /** Commands that must fail fast when Redis is away (the ingest path): BullMQ queues. */
  queueRedis: Redis;
  /** A connection BullMQ workers may block on. */
  workerRedis: Redis;
  journal: Journal;
  /** The same journal on the workers' connection: their writes then go with BullMQ's, in order. */
  workerJournal: Journal;
  identity: IdentityStore;
  keys: RedisKeys;
  log: Logger;
  /** The channel's deliveries and CREATEUR listener, built by the engine from its sections. */
  dmp?: DmpDelivery;
  mssante?: MssDelivery;
  acks?: BusinessAcks;
  /** Where a destination really is (a simulator the engine started stands in for it). */
  addressOf?: (destination: MllpDestination) => { host: string; port: number };
}

/**
 * One channel at run time, in Mirth's words: a source connector (MLLP listener), a queue, and a
 * worker that runs the channel's flow towards its destinations.
 */
export class ChannelRuntime {
  readonly queue: Queue<JobData>;
  private server?: MllpServer;
  private ingest?: Ingest;
  private worker?: Worker<JobData>;
  private readonly clients = new Map<string, MllpClient>();
  private port?: number;
  private inbox?: Inbox;

  constructor(
    readonly config: ChannelConfig,
    private readonly deps: ChannelDeps,
  ) {
    this.queue = new Queue<JobData>(config.id, {
      connection: deps.queueRedis,
      prefix: deps.keys.queues,
      defaultJobOptions: {
        attempts: config.processing.attempts,
        backoff: { type: 'exponential', delay: config.processing.backoffSeconds * 1000 },
        // The journal is the message browser; the queue only keeps what is still to do.
        removeOnComplete: true,
        removeOnFail: { age: 30 * 24 * 3600 },
      },
    });
    // Errors are reported where they happen (ingest answers AR); this only keeps them out of stderr.
    this.queue.on('error', () => {});
  }

  /** Flow A's DMP delivery, for channels with `dmp`. */
  get dmp(): DmpDelivery | undefined {
    return this.deps.dmp;
  }

  /** Flow A's MSSanté delivery, for channels with `mssante`. */
  get mssante(): MssDelivery | undefined {
    return this.deps.mssante;
  }

  /** The port the listener really got (differs from the file when it says 0). */
  get listeningPort(): number | undefined {
    return this.port;
  }

  get listening(): boolean {
    return this.server?.listening ?? this.inbox?.connected ?? false;
  }

  get connectionCount(): number {
    return this.server?.connectionCount ?? 0;
  }

  async startListener(): Promise<void> {
    const c = this.config;
    if (c.flow === 'lps') {
      // Flow B: the source is the application mailbox.
      this.inbox = new Inbox(c, this.deps.journal, this.queue, this.deps.log);
      await this.inbox.start();
      this.deps.log.info({ channel: c.id, mailboxes: c.source.accounts.map((a) => a.user) }, 'mailbox watchers up');
      return;
    }
    const s = c.source;
    const ingest = (this.ingest = new Ingest(c, this.deps.journal, this.queue, this.deps.log));
    const handler = {
      onMessage: ingest.onMessage.bind(ingest),
      onOversize: ingest.onOversize.bind(ingest),
      onTruncated: ingest.onTruncated.bind(ingest),
      onJunk: ingest.onJunk.bind(ingest),
      onError: ingest.onError.bind(ingest),
      onConnection: (_c: unknown, event: string) => {
        if (event === 'open') connections.inc({ channel: this.config.id });
        if (event === 'close') connections.dec({ channel: this.config.id });
      },
    };
    this.server = new MllpServer(
      {
        host: s.host,
        port: s.port,
        tls: s.tls && {
          cert: readPem(s.tls.cert)!,
          key: readPem(s.tls.key)!,
          ca: readPem(s.tls.ca),
          requestClientCert: s.tls.requestClientCert,
        },
        maxMessageBytes: s.maxMessageBytes,
        idleTimeoutMs: s.idleTimeoutSeconds * 1000,
        maxConnections: s.maxConnections,
      },
      handler,
    );
    const addr = await this.server.listen();
    this.port = addr.port;
    this.deps.log.info({ channel: this.config.id, host: addr.host, port: addr.port, tls: !!s.tls }, 'MLLP listener up');
  }

  startWorker(): void {
    for (const d of this.config.destinations) this.clients.set(d.id, destinationClient(d, this.deps.addressOf?.(d)));
    const { log } = this.deps;
    const channel = this.config;
    this.worker = new Worker<JobData>(
      channel.id,
      (job: Job<JobData>) => this.process(job),
      // A worker killed mid-job: its job is taken up again within ~20 s of a restart (lock 15 s, checked every 5 s).
      {
        connection: this.deps.workerRedis,
        prefix: this.deps.keys.queues,
        concurrency: channel.processing.concurrency,
        autorun: true,
        lockDuration: 15_000,
        stalledInterval: 5_000,
        maxStalledCount: 5,
      },
    );
    this.worker.on('error', (err) => log.error({ channel: channel.id, err: err.message }, 'worker error'));
    this.dmp?.start();
    this.mssante?.start();
  }

  /**
   * One job: the messages of a group commit (or those named), one after the other, each with its
   * own outcome. The attempt's outcomes are written in one call. If some failed and may be
   * retried, the job throws: BullMQ retries it with backoff, and the messages already finished are
   * left out of the next attempt (begin.lua). On the last attempt a failure is a dead letter.
   */
  private async process(job: Job<JobData>): Promise<void> {
    const { workerJournal: journal, log } = this.deps;
    const channel = this.config;
    const flow = flowOf(channel);
    const attempt = job.attemptsMade + 1;
    const last = attempt >= (job.opts.attempts ?? 1);
    const messages = await journal.begin(job.data);
    if (messages === 'missing') {
      // The job of a group commit whose journal write failed (the senders got AR and will send
      // again), or a write not applied yet: give it a chance before letting go.
      if (attempt < 3) throw new Error(`batch ${job.data.batch} not in the journal yet`);
      log.warn({ channel: channel.id, job: job.id }, 'job without stored messages skipped');
      return;
    }
    const records: EventRecord[] = [];
    const retry: string[] = [];
    for (const { id: journalId, raw } of messages) {
      const processing: NewEvent = { at: new Date().toISOString(), status: 'processing', detail: `attempt ${attempt}` };
      try {
        const { identity, dmp, mssante, acks } = this.deps;
        await flow({ journalId, raw, journal, log, clients: this.clients, attempt, identity, dmp, mssante, acks });
        records.push({
          id: journalId,
          events: [processing, { status: 'processed' }],
          field: ['processedAt', new Date().toISOString()],
        });
        messagesOut.inc({ channel: channel.id, outcome: 'processed' });
      } catch (e) {
        const err = e as Error;
        const dead = isPermanent(e) || last;
        records.push({
          id: journalId,
          events: [
            processing,
            {
              status: dead ? 'dead-lettered' : 'failed',
              detail: dead ? `gave up after attempt ${attempt}` : `attempt ${attempt} failed, will retry`,
              error: { message: err.message },
            },
          ],
          field: dead ? ['deadAt', new Date().toISOString()] : undefined,
        });
        if (!dead) retry.push(`${journalId}: ${err.message}`);
        messagesOut.inc({ channel: channel.id, outcome: dead ? 'dead-lettered' : 'failed' });
        log.warn(
          { channel: channel.id, journalId, attempt, final: dead, err: redact(err.message) },
          'processing failed',
        );
      }
    }
    if (retry.length) {
      await journal.recordMany(records);
      throw new Error(`${retry.length} message(s) to retry: ${retry.join('; ')}`);
    }
    // Not awaited: sent on the worker's connection just before BullMQ completes the job, so both
    // land in one Redis write (one fsync). Should Redis fail, the completion fails with it and the
    // job runs again.
    if (records.length)
      journal
        .recordMany(records)
        .catch((e: Error) =>
          log.warn({ channel: channel.id, job: job.id, err: e.message }, 'could not journal the outcome'),
        );
  }

  /** Puts an accepted message back in the queue, to be processed again even if it was. */
  async replay(journalId: string): Promise<void> {
    await this.deps.journal.resetDeliveries(journalId);
    // The request's own refusal may be told again; the deliveries' ZAMs follow their own outcomes.
    await this.deps.acks?.forget(journalId, 'Z01');
    await this.queue.add(
      'message',
      { channel: this.config.id, journalIds: [journalId], force: true },
      { jobId: `replay-${journalId}-${Date.now()}` },
    );
    await this.deps.journal.record(journalId, { status: 'replayed', detail: 'queued again on operator request' });
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts(
      'waiting',
      'active',
      'delayed',
      'failed',
      'completed',
      'prioritized',
      'waiting-children',
    );
  }

  /** Listener first (no new messages, in-flight ones get their ACK), then the worker finishes its jobs. */
  async stop(): Promise<void> {
    await this.server?.close();
    await this.inbox?.stop();
    await this.ingest?.drain();
    await this.worker?.close();
    await this.dmp?.close();
    await this.mssante?.close();
    await this.deps.acks?.close();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    await this.queue.close();
  }
}
