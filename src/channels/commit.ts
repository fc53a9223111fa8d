import type { Queue } from 'bullmq';
import type { Dedup, IngestItem, Journal, JournalEvent } from '../journal/journal.js';
import type { Logger } from '../util/log.js';

/** What a channel's queue carries: ids only, the message itself stays in the journal. */
export interface JobData {
  journalId: string;
  channel: string;
}

export interface Committed {
  id: string;
  /** A retransmission of a message already accepted: acknowledge again, do not process again. */
  duplicate: boolean;
}

interface Pending {
  item: IngestItem & { dedup: Dedup };
  resolve(c: Committed): void;
  reject(e: Error): void;
}

/**
 * Group commit. Messages that arrive in the same turn of the event loop (from any connection of
 * the channel) are stored in one journal call and enqueued in one BullMQ call: one round trip and
 * one AOF fsync for the lot, instead of one per message. Each caller still learns its own outcome,
 * and gets it only once both writes are done: that is the moment it may say AA.
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

  commit(item: IngestItem & { dedup: Dedup }): Promise<Committed> {
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
    let results;
    try {
      results = await this.journal.ingestMany(batch.map((p) => p.item));
    } catch (e) {
      for (const p of batch) p.reject(e as Error);
      return;
    }
    let done = batch.map((p, i) => ({ p, r: results[i]! }));
    // New messages go to the queue; so does a retransmission whose first copy never reached it
    // (Redis failed between the two writes).
    const toQueue = done.filter(({ r }) => !r.duplicate || r.status === 'received');
    try {
      if (toQueue.length) {
        await this.queue.addBulk(
          toQueue.map(({ p, r }) => ({ name: 'message', data: { journalId: r.id, channel: this.channel }, opts: { jobId: jobId(p.item.dedup) } })),
        );
      }
    } catch (e) {
      for (const { p } of toQueue) p.reject(e as Error);
      done = done.filter((d) => !toQueue.includes(d));
    }
    const events: { id: string; events: Omit<JournalEvent, 'at'>[] }[] = [];
    for (const { p, r } of done) {
      p.resolve({ id: r.id, duplicate: r.duplicate });
      if (r.duplicate) events.push({ id: r.id, events: [{ status: 'duplicate', detail: 'retransmission acknowledged again, not processed twice', ackCode: 'AA' }] });
      else {
        const queued: Omit<JournalEvent, 'at'> = r.reused
          ? { status: 'queued', detail: 'control id already used by the sender for another content: processed as a new message' }
          : { status: 'queued' };
        events.push({ id: r.id, events: [queued, { status: 'acknowledged', ackCode: 'AA' }] });
      }
    }
    // After the ACKs: the queue already holds the truth, this is the message browser's view of it.
    this.journal.recordMany(events).catch((e: Error) => this.log.warn({ channel: this.channel, err: e.message }, 'could not journal ACKs'));
  }
}

/**
 * The job id is the sender's identity of the message, so adding it twice is a no-op (BullMQ
 * refuses ':' in custom ids); the fingerprint tells a reused control id from a retransmission.
 */
function jobId(d: Dedup): string {
  return `${d.key.replace(/:/g, '/')}/${d.fingerprint.slice(0, 16)}`;
}
