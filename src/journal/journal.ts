import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { newId } from '../util/id.js';
import { packageRoot } from '../util/paths.js';

/** The life of a message, in the words an integrator uses in a message browser. */
export type MessageStatus =
  | 'received'
  | 'acknowledged'
  | 'rejected'
  | 'duplicate'
  | 'queued'
  | 'processing'
  | 'delivered'
  | 'processed'
  | 'failed'
  | 'dead-lettered'
  | 'discarded'
  | 'replayed';

export interface JournalEvent {
  at: string;
  status: MessageStatus;
  detail?: string;
  destination?: string;
  ackCode?: string;
  error?: { code?: string | number; message: string; location?: string };
}

/** What is known about a message before anyone reads its content. Values are from MSH. */
export interface MessageSummary {
  channel: string;
  remote?: string;
  size: number;
  charset?: string;
  controlId?: string;
  sendingApplication?: string;
  sendingFacility?: string;
  messageType?: string;
  version?: string;
  documentIds?: string[];
  patientIds?: string[];
}

export interface JournalEntry extends MessageSummary {
  id: string;
  receivedAt: string;
  status: MessageStatus;
  ackCode?: string;
  events: JournalEvent[];
}

export interface SearchQuery {
  controlId?: string;
  documentId?: string;
  patientId?: string;
  channel?: string;
  status?: MessageStatus;
  from?: Date;
  to?: Date;
  limit?: number;
}

/**
 * `reused`: the sender's key was seen before with different content (a control id reused for
 * another message): recorded as a new message, not as a retransmission.
 */
export type IngestResult = { id: string; duplicate: false; reused: boolean } | { id: string; duplicate: true; status: MessageStatus };

export interface Dedup {
  /** The sender's identity of the message: sending application/facility + MSH-10. */
  key: string;
  /** Fingerprint of the content, so that only a true retransmission counts as a duplicate. */
  fingerprint: string;
}

const INGEST = readFileSync(join(packageRoot(), 'src/journal/lua/ingest.lua'), 'utf8');

/**
 * Every message's story, in Redis beside its queue: a hash per message, its raw bytes, its event
 * list, and index sets to find it by MSH-10, document id (TXA-12) or patient identifier.
 * Nothing here is ever the only copy of an event that matters for delivery: the queue is.
 */
export class Journal {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { prefix?: string; retentionMs: number },
  ) {
    redis.defineCommand('pfiIngest', { lua: INGEST });
  }

  private get p(): string {
    return this.opts.prefix ?? 'pfi';
  }
  private key(kind: string, id: string): string {
    return `${this.p}:${kind}:${id}`;
  }

  /**
   * Records a received message in one atomic step. With a dedup key, a second message with the
   * same key is not recorded again: the caller gets the first one's id back.
   */
  async ingest(raw: Buffer, summary: MessageSummary, first: Omit<JournalEvent, 'at'>, dedup?: Dedup): Promise<IngestResult> {
    const now = Date.now();
    const id = newId(now);
    const fields = this.fields(summary, id, now, first);
    const indexKeys = this.indexKeys(summary);
    const event = JSON.stringify({ at: new Date(now).toISOString(), ...first });
    const keys = [
      dedup ? this.key('dedup', dedup.key) : '',
      this.key('m', id),
      this.key('raw', id),
      this.key('ev', id),
      `${this.p}:x:time`,
      ...indexKeys,
    ];
    const ingest = (this.redis as unknown as { pfiIngest(n: number, ...a: (string | Buffer | number)[]): Promise<[string, string]> }).pfiIngest;
    const [gotId, state] = await ingest.call(this.redis, keys.length, ...keys, id, now, this.opts.retentionMs, raw, event, dedup?.fingerprint ?? '', ...fields);
    if (state !== 'duplicate') return { id: gotId, duplicate: false, reused: state === 'reused' };
    const status = ((await this.redis.hget(this.key('m', gotId), 'status')) ?? 'received') as MessageStatus;
    return { id: gotId, duplicate: true, status };
  }

  /** Appends an event and moves the message's current status. */
  async record(id: string, event: Omit<JournalEvent, 'at'>): Promise<void> {
    const e: JournalEvent = { at: new Date().toISOString(), ...event };
    const fields: string[] = ['status', e.status, 'updatedAt', e.at];
    if (e.ackCode) fields.push('ackCode', e.ackCode);
    await this.redis.multi().rpush(this.key('ev', id), JSON.stringify(e)).hset(this.key('m', id), ...fields).exec();
  }

  /** Several events at once (one round trip), e.g. queued + acknowledged. */
  async recordAll(id: string, events: Omit<JournalEvent, 'at'>[]): Promise<void> {
    const at = new Date().toISOString();
    const tx = this.redis.multi();
    for (const ev of events) {
      tx.rpush(this.key('ev', id), JSON.stringify({ at, ...ev }));
      tx.hset(this.key('m', id), 'status', ev.status, 'updatedAt', at, ...(ev.ackCode ? ['ackCode', ev.ackCode] : []));
    }
    await tx.exec();
  }

  /** Destinations already served, so that a retry does not send twice to the ones that said AA. */
  async markDelivered(id: string, destination: string, ackCode: string): Promise<void> {
    await this.redis.hset(this.key('m', id), `dest:${destination}`, ackCode);
    await this.record(id, { status: 'delivered', destination, ackCode });
  }

  async deliveredTo(id: string): Promise<Set<string>> {
    const h = await this.redis.hgetall(this.key('m', id));
    return new Set(Object.keys(h).filter((k) => k.startsWith('dest:')).map((k) => k.slice(5)));
  }

  /** A replay starts from scratch: every destination is served again. */
  async resetDeliveries(id: string): Promise<void> {
    const fields = [...(await this.deliveredTo(id))].map((d) => `dest:${d}`);
    if (fields.length) await this.redis.hdel(this.key('m', id), ...fields);
  }

  async get(id: string): Promise<JournalEntry | undefined> {
    const [[, hash], [, events]] = (await this.redis
      .multi()
      .hgetall(this.key('m', id))
      .lrange(this.key('ev', id), 0, -1)
      .exec()) as [[null, Record<string, string>], [null, string[]]];
    if (!hash || !hash.id) return undefined;
    return toEntry(hash, events.map((e) => JSON.parse(e) as JournalEvent));
  }

  async raw(id: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.key('raw', id));
  }

  /** Newest first. Index sets narrow the search; the time index orders it. */
  async search(q: SearchQuery): Promise<JournalEntry[]> {
    const limit = Math.min(q.limit ?? 50, 500);
    const sets: string[] = [];
    if (q.controlId) sets.push(this.key('x:ctl', q.controlId));
    if (q.documentId) sets.push(this.key('x:doc', q.documentId));
    if (q.patientId) sets.push(this.key('x:pat', q.patientId));
    if (q.channel) sets.push(this.key('x:ch', q.channel));
    const min = q.from ? q.from.getTime() : '-inf';
    const max = q.to ? q.to.getTime() : '+inf';
    let ids: string[];
    if (sets.length) {
      const members = sets.length === 1 ? await this.redis.smembers(sets[0]!) : await this.redis.sinter(...sets);
      ids = members.sort().reverse();
    } else {
      ids = await this.redis.zrevrangebyscore(`${this.p}:x:time`, max, min, 'LIMIT', 0, q.status ? limit * 20 : limit);
    }
    const out: JournalEntry[] = [];
    for (const id of ids) {
      if (out.length >= limit) break;
      const e = await this.get(id);
      if (!e) continue;
      const t = Date.parse(e.receivedAt);
      if (q.from && t < q.from.getTime()) continue;
      if (q.to && t > q.to.getTime()) continue;
      if (q.status && e.status !== q.status) continue;
      out.push(e);
    }
    return out;
  }

  /** Drops messages older than the retention, in batches; returns how many went. */
  async sweep(now = Date.now(), batch = 500): Promise<number> {
    const timeKey = `${this.p}:x:time`;
    let removed = 0;
    for (;;) {
      const ids = await this.redis.zrangebyscore(timeKey, '-inf', now - this.opts.retentionMs, 'LIMIT', 0, batch);
      if (!ids.length) return removed;
      for (const id of ids) {
        const h = await this.redis.hgetall(this.key('m', id));
        const tx = this.redis.multi();
        for (const k of this.indexKeys(fromHash(h))) tx.srem(k, id);
        tx.del(this.key('m', id), this.key('raw', id), this.key('ev', id)).zrem(timeKey, id);
        await tx.exec();
        removed++;
      }
    }
  }

  private indexKeys(s: MessageSummary): string[] {
    const keys = [this.key('x:ch', s.channel)];
    if (s.controlId) keys.push(this.key('x:ctl', s.controlId));
    for (const d of s.documentIds ?? []) keys.push(this.key('x:doc', d));
    for (const p of s.patientIds ?? []) keys.push(this.key('x:pat', p));
    return keys;
  }

  private fields(s: MessageSummary, id: string, now: number, first: Omit<JournalEvent, 'at'>): string[] {
    const f: Record<string, string | number | undefined> = {
      id,
      receivedAt: new Date(now).toISOString(),
      updatedAt: new Date(now).toISOString(),
      status: first.status,
      ackCode: first.ackCode,
      channel: s.channel,
      remote: s.remote,
      size: s.size,
      charset: s.charset,
      controlId: s.controlId,
      sendingApplication: s.sendingApplication,
      sendingFacility: s.sendingFacility,
      messageType: s.messageType,
      version: s.version,
      documentIds: s.documentIds?.length ? JSON.stringify(s.documentIds) : undefined,
      patientIds: s.patientIds?.length ? JSON.stringify(s.patientIds) : undefined,
    };
    return Object.entries(f).flatMap(([k, v]) => (v === undefined || v === '' ? [] : [k, String(v)]));
  }
}

function fromHash(h: Record<string, string>): MessageSummary {
  return {
    channel: h.channel ?? '',
    remote: h.remote,
    size: Number(h.size ?? 0),
    charset: h.charset,
    controlId: h.controlId,
    sendingApplication: h.sendingApplication,
    sendingFacility: h.sendingFacility,
    messageType: h.messageType,
    version: h.version,
    documentIds: h.documentIds ? (JSON.parse(h.documentIds) as string[]) : undefined,
    patientIds: h.patientIds ? (JSON.parse(h.patientIds) as string[]) : undefined,
  };
}

function toEntry(h: Record<string, string>, events: JournalEvent[]): JournalEntry {
  const e: JournalEntry = {
    ...fromHash(h),
    id: h.id!,
    receivedAt: h.receivedAt!,
    status: h.status as MessageStatus,
    ackCode: h.ackCode,
    events,
  };
  return Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)) as JournalEntry;
}
