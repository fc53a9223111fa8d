import type { Queue } from 'bullmq';
import type { IngestItem, Journal, JournalEvent } from '../journal/journal.js';
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
    const stored = this.journal.ingestMany(batch.map((p) => p.item));
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
      stored.catch(() => {});
      queued.catch(() => {});
      return;
    }
    const events = batch.map((p, i) => {
      const r = results[i]!;
      p.resolve(r);
      const ev: Omit<JournalEvent, 'at'>[] = r.duplicate
        ? [{ status: 'duplicate', detail: 'retransmission acknowledged again, not processed twice', ackCode: 'AA' }]
        : [{ status: 'queued' }, { status: 'acknowledged', ackCode: 'AA' }];
      return { id: r.id, events: ev };
    });
    // After the ACKs: the queue already holds the truth, this is the message browser's view of it.
    this.journal.recordMany(events).catch((e: Error) => this.log.warn({ channel: this.channel, err: e.message }, 'could not journal ACKs'));
  }
}

/** BullMQ refuses ':' in custom job ids. */
function jobId(dedup: string): string {
  return dedup.replace(/:/g, '/');
}
