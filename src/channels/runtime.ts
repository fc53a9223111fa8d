import { readFileSync } from 'node:fs';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { FLOWS, PermanentError } from '../flows/index.js';
import type { Journal } from '../journal/journal.js';
import { MllpClient } from '../mllp/client.js';
import { MllpServer } from '../mllp/server.js';
import type { Logger } from '../util/log.js';
import { connections, messagesOut } from '../util/metrics.js';
import { resolveFrom, type ChannelConfig } from './config.js';
import type { JobData } from './commit.js';
import { Ingest } from './ingest.js';

export const QUEUE_PREFIX = 'pfi-q';

export interface ChannelDeps {
  /** Commands that must fail fast when Redis is away (the ingest path): BullMQ queues. */
  queueRedis: Redis;
  /** A connection BullMQ workers may block on. */
  workerRedis: Redis;
  journal: Journal;
  log: Logger;
}

/**
 * One channel at run time, in Mirth's words: a source connector (MLLP listener), a queue, and a
 * worker that runs the channel's flow towards its destinations.
 */
export class ChannelRuntime {
  readonly queue: Queue<JobData>;
  private server?: MllpServer;
  private worker?: Worker<JobData>;
  private readonly clients = new Map<string, MllpClient>();
  private port?: number;

  constructor(
    readonly config: ChannelConfig,
    private readonly deps: ChannelDeps,
  ) {
    this.queue = new Queue<JobData>(config.id, {
      connection: deps.queueRedis,
      prefix: QUEUE_PREFIX,
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

  /** The port the listener really got (differs from the file when it says 0). */
  get listeningPort(): number | undefined {
    return this.port;
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  get connectionCount(): number {
    return this.server?.connectionCount ?? 0;
  }

  async startListener(): Promise<void> {
    const s = this.config.source;
    const ingest = new Ingest(this.config, this.deps.journal, this.queue, this.deps.log);
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
          cert: readFileSync(resolveFrom(s.tls.cert)),
          key: readFileSync(resolveFrom(s.tls.key)),
          ca: s.tls.ca ? readFileSync(resolveFrom(s.tls.ca)) : undefined,
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
    const flow = FLOWS[this.config.flow];
    for (const d of this.config.destinations) {
      this.clients.set(
        d.id,
        new MllpClient({
          host: d.host,
          port: d.port,
          ackTimeoutMs: d.ackTimeoutSeconds * 1000,
          tls: d.tls && {
            ca: d.tls.ca ? readFileSync(resolveFrom(d.tls.ca)) : undefined,
            cert: d.tls.cert ? readFileSync(resolveFrom(d.tls.cert)) : undefined,
            key: d.tls.key ? readFileSync(resolveFrom(d.tls.key)) : undefined,
            servername: d.tls.servername,
          },
        }),
      );
    }
    const { journal, log } = this.deps;
    const channel = this.config;
    this.worker = new Worker<JobData>(
      channel.id,
      async (job: Job<JobData>) => {
        const attempt = job.attemptsMade + 1;
        const journalId = job.data.journalId ?? (await journal.resolve(job.data.dedup ?? ''));
        if (!journalId) {
          // The job of a message whose store failed (the sender got AR and will resend): nothing
          // to do, once it is clear the message is not merely late.
          if (attempt < 3) throw new Error('message not in the journal yet');
          log.warn({ channel: channel.id, job: job.id }, 'job without a stored message skipped');
          return;
        }
        if (!job.data.journalId && (await journal.state(journalId))?.processed) return; // a retransmission, long after
        await journal.record(journalId, { status: 'processing', detail: `attempt ${attempt}` });
        try {
          const raw = await journal.raw(journalId);
          if (!raw) throw new PermanentError('raw message not found in the journal (expired by retention?)');
          await flow({ journalId, channel, raw, journal, log, clients: this.clients, attempt });
        } catch (e) {
          const err = e as Error;
          const final = e instanceof PermanentError || attempt >= (job.opts.attempts ?? 1);
          await journal.record(journalId, {
            status: final ? 'dead-lettered' : 'failed',
            detail: final ? `gave up after attempt ${attempt}` : `attempt ${attempt} failed, will retry`,
            error: { message: err.message },
          });
          messagesOut.inc({ channel: channel.id, outcome: final ? 'dead-lettered' : 'failed' });
          log.warn({ channel: channel.id, journalId, attempt, final, err: err.message }, 'processing failed');
          throw final ? new UnrecoverableError(err.message) : err;
        }
        await journal.markProcessed(journalId);
        messagesOut.inc({ channel: channel.id, outcome: 'processed' });
      },
      { connection: this.deps.workerRedis, prefix: QUEUE_PREFIX, concurrency: channel.processing.concurrency, autorun: true },
    );
    this.worker.on('error', (err) => log.error({ channel: channel.id, err: err.message }, 'worker error'));
  }

  /** Puts an accepted message back in the queue, as if it had just arrived. */
  async replay(journalId: string): Promise<void> {
    await this.deps.journal.resetDeliveries(journalId);
    await this.queue.add('message', { journalId, channel: this.config.id }, { jobId: `replay/${journalId}/${Date.now()}` });
    await this.deps.journal.record(journalId, { status: 'replayed', detail: 'queued again on operator request' });
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized', 'waiting-children');
  }

  /** Listener first (no new messages, in-flight ones get their ACK), then the worker finishes its jobs. */
  async stop(): Promise<void> {
    await this.server?.close();
    await this.worker?.close();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    await this.queue.close();
  }
}
