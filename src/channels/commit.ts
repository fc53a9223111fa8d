import type { Queue } from 'bullmq';
import type { EventRecord, IngestItem, Journal } from '../journal/journal.js';
import { newId } from '../util/id.js';
import type { Logger } from '../util/log.js';

/**
 * What a channel's queue carries: ids only, the messages stay in the journal. A group commit's job
 * names its batch (the journal lists the batch's messages, in order); a replay or a late enqueue
 * names journal ids.
 */
export interface JobData {
  channel: string;
  batch?: string;
  journalIds?: string[];
  /** An operator's replay: process even a message that was processed already. */
  force?: boolean;
}

export interface Committed {
  id: string;
  /** A retransmission of a message already accepted: acknowledged again, not processed again. */
  duplicate: boolean;
}

interface Pending {
  item: IngestItem & { dedup: string };
  resolve(c: Committed): void;
  reject(e: Error): void;
}

/**
 * Group commit. Messages that arrive in the same turn of the event loop (from any connection of
 * the channel) are stored in one journal call and enqueued as one BullMQ job, both written back to
 * back on the same connection: Redis runs them in that order, in one round trip, under one AOF
 * fsync. Each caller learns its own outcome only once both writes are done: the moment it may say
 * AA.
 *
 * One job per batch rather than per message: BullMQ's add and completion scripts cost Redis more
 * than everything else a message needs (see docs/benchmark.md), so they are paid once per batch.
 * Each message keeps its own identity (sender, MSH-10, content fingerprint) in the journal's
 * dedup key, its own events, retries and dead-lettering (see runtime.ts).
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
    const id = newId();
    // Issued together, journal first: the worker never sees a job before its messages.
    const records = this.takeRecords();
    const stored = this.journal.ingestMany(
      batch.map((p) => p.item),
      records,
      id,
    );
    const queued = this.queue.add('batch', { channel: this.channel, batch: id }, { jobId: id });
    let results;
    try {
      [results] = await Promise.all([stored, queued]);
      await this.enqueueOrphans(results.filter((r) => r.duplicate));
    } catch (e) {
      // Nobody gets AA. What did get stored is harmless: a job whose batch is empty does nothing,
      // a message without its job is enqueued when the sender sends it again (enqueueOrphans).
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
        keepStatus: r.duplicate,
        events: r.duplicate
          ? [
              {
                at,
                status: 'duplicate',
                detail: 'retransmission acknowledged again, not processed twice',
                ackCode: 'AA',
              },
            ]
          : [
              { at, status: 'queued', detail: `job ${id}` },
              { at, status: 'acknowledged', ackCode: 'AA' },
            ],
      };
    });
    // After the ACKs: the queue already holds the truth, this is the message browser's view of it.
    this.keepRecords(events);
  }

  /**
   * A retransmission is acknowledged again; its first copy must then be on its way. It is, unless
   * the job of the first copy never reached Redis (the sender got AR that time) and the message is
   * not finished: then it gets a job of its own now, before the AA. Rare, hence one call each.
   */
  private async enqueueOrphans(duplicates: { id: string; batch?: string }[]): Promise<void> {
    for (const d of duplicates) {
      // By state, not existence: a failed add may leave a job hash behind that no list holds.
      if (d.batch && (await this.queue.getJobState(d.batch)) !== 'unknown') continue;
      if (await this.journal.finished(d.id)) continue;
      await this.queue.add('message', { channel: this.channel, journalIds: [d.id] }, { jobId: `again-${d.id}` });
    }
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
