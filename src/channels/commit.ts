import type { Queue } from 'bullmq';
import type { EventRecord, IngestItem, Journal } from '../journal/journal.js';
import type { Logger } from '../util/log.js';

/**
 * What a channel's queue carries: ids only, the message itself stays in the journal. A received
 * message's job names it by its dedup key (resolved to the first copy's journal id by the worker);
 * a replay names the journal id directly.
 */
export interface JobData {
  channel: string;
  dedup?: string;
  journalId?: string;
}

export interface Committed {
  id: string;
  /** A retransmission of a message already accepted: acknowledge again, do not process again. */
  duplicate: boolean;
}

interface Pending {
  item: IngestItem & { dedup: string };
  resolve(c: Committed): void;
  reject(e: Error): void;
}

/**
 * Group commit. Messages that arrive in the same turn of the event loop (from any connection of
 * the channel) are stored in one journal call and enqueued in one BullMQ call, written back to
 * back on the same connection: Redis runs them in that order, in one round trip, under one AOF
 * fsync. Each caller learns its own outcome only once both writes are done: the moment it may
 * say AA.
 *
 * Every message is enqueued, retransmissions too: the job id is the dedup key, so BullMQ ignores
 * the add while the first job exists; if that job is long gone, the worker finds the message
 * already processed and skips it. A retransmission of a message whose first enqueue failed is
 * thereby enqueued at last.
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  /** ACK events waiting to ride with the next batch (or a short timer when traffic stops). */
  private afterAck: EventRecord[] = [];
  private recordTimer?: NodeJS.Timeout;

  constructor(
    private readonly channel: string,
    private readonly journal: Journal,
    private readonly queue: Queue<JobData>,
    private readonly log: Logger,
    private readonly maxBatch = 128,
  ) {}

  commit(item: IngestItem & { dedup: string }): Promise<Committed> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length) void this.write(batch);
  }

  private async write(batch: Pending[]): Promise<void> {
    // Issued together, journal first: the worker never sees a job before its message.
    const records = this.takeRecords();
    const stored = this.journal.ingestMany(
      batch.map((p) => p.item),
      records,
    );
    const queued = this.queue.addBulk(
      batch.map((p) => ({ name: 'message', data: { channel: this.channel, dedup: p.item.dedup }, opts: { jobId: jobId(p.item.dedup) } })),
    );
    let results;
    try {
      [results] = await Promise.all([stored, queued]);
    } catch (e) {
      // Either write failed: nobody gets AA. What did get stored is harmless: a job without its
      // message is skipped, a message without its job is enqueued by the sender's next attempt.
      for (const p of batch) p.reject(e as Error);
      this.keepRecords(records);
      stored.catch(() => {});
      queued.catch(() => {});
      return;
    }
    const at = new Date().toISOString();
    const events = batch.map((p, i): EventRecord => {
      const r = results[i]!;
      p.resolve(r);
      return {
        id: r.id,
        events: r.duplicate
          ? [{ at, status: 'duplicate', detail: 'retransmission acknowledged again, not processed twice', ackCode: 'AA' }]
          : [{ at, status: 'queued' }, { at, status: 'acknowledged', ackCode: 'AA' }],
      };
    });
    // After the ACKs: the queue already holds the truth, this is the message browser's view of it.
    this.keepRecords(events);
  }

  private takeRecords(): EventRecord[] {
    clearTimeout(this.recordTimer);
    this.recordTimer = undefined;
    const r = this.afterAck;
    this.afterAck = [];
    return r;
  }

  /** Bounded: during a long Redis outage, the browser's view may lose events; messages never. */
  private keepRecords(records: EventRecord[], delayMs = 5): void {
    if (this.afterAck.length < 10_000) this.afterAck.push(...records);
    if (this.afterAck.length && !this.recordTimer) {
      this.recordTimer = setTimeout(() => void this.writeRecords(), delayMs);
    }
  }

  private async writeRecords(): Promise<void> {
    const r = this.takeRecords();
    if (!r.length) return;
    try {
      await this.journal.recordMany(r);
    } catch (e) {
      this.log.warn({ channel: this.channel, err: (e as Error).message }, 'could not journal ACK events, will retry');
      this.keepRecords(r, 1000);
    }
  }

  /** On stop: what is still pending gets written (one try). */
  async drain(): Promise<void> {
    await this.writeRecords();
    clearTimeout(this.recordTimer);
  }
}

/** BullMQ refuses ':' in custom job ids. */
function jobId(dedup: string): string {
  return dedup.replace(/:/g, '/');
}
