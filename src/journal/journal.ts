import { luaScript, RedisKeys } from '../redis/keys.js';
import type { Redis } from 'ioredis';
import { newId } from '../util/id.js';

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
/** An event to record; `at` defaults to now. */
export type NewEvent = Omit<JournalEvent, 'at'> & { at?: string };

/** Events for one message; the last one gives its new status. `field` sets one more hash field. */
export interface EventRecord {
  id: string;
  events: NewEvent[];
  field?: [string, string];
  /** Informational events (a retransmission seen) that do not change the message's status. */
  keepStatus?: boolean;
}

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
  /** MSH-3, or the From address of a received mail. */
  sender?: string;
  documentId?: string;
  patientId?: string;
  channel?: string;
  status?: MessageStatus;
  from?: Date;
  to?: Date;
  limit?: number;
}

/** `duplicate`: a retransmission; `id` is then the first copy's, `batch` the job it was given to. */
export interface IngestResult {
  id: string;
  duplicate: boolean;
  batch?: string;
}

export interface IngestItem {
  raw: Buffer;
  summary: MessageSummary;
  first: Omit<JournalEvent, 'at'>;
  /**
   * The sender's identity of the message (channel, sending application/facility, MSH-10) and a
   * fingerprint of its content: the same string again is a retransmission, recorded once.
   */
  dedup?: string;
}

const DEFAULT_KEYS = new RedisKeys();
const WRITE = luaScript('journal-write.lua');
const BEGIN = luaScript('journal-begin.lua');

type ScriptCall = (n: number, ...args: (string | Buffer | number)[]) => Promise<unknown>;

/**
 * Every message's story, in Redis beside its queue: a hash per message, its raw bytes, its event
 * list, and time-sorted indexes to find it by MSH-10, document id (TXA-12) or patient identifier.
 * Nothing here is ever the only copy of an event that matters for delivery: the queue is.
 */
export class Journal {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { keys?: RedisKeys; retentionMs: number },
  ) {
    redis.defineCommand('pfiWrite', { lua: WRITE });
    redis.defineCommand('pfiBegin', { lua: BEGIN });
    // Loaded first thing on every (re)connection: an EVALSHA that met NOSCRIPT would be resent
    // after commands issued behind it, and the group commit relies on their order.
    const load = () => void Promise.all([WRITE, BEGIN].map((l) => redis.script('LOAD', l))).catch(() => {});
    redis.on('ready', load);
    if (redis.status === 'ready') load();
  }

  private script(name: 'pfiWrite' | 'pfiBeginBuffer'): ScriptCall {
    const fn = (this.redis as unknown as Record<string, ScriptCall>)[name]!;
    return fn.bind(this.redis);
  }

  private get p(): string {
    return this.opts.keys?.prefix ?? 'pfi';
  }
  private key(kind: string, id: string): string {
    return (this.opts.keys ?? DEFAULT_KEYS).journal(kind, id);
  }

  /**
   * Records a received message in one atomic step. With a dedup key, a second message with the
   * same key is not recorded again: the caller gets the first one's id back.
   */
  async ingest(
    raw: Buffer,
    summary: MessageSummary,
    first: Omit<JournalEvent, 'at'>,
    dedup?: string,
  ): Promise<IngestResult> {
    return (await this.ingestMany([{ raw, summary, first, dedup }]))[0]!;
  }

  /**
   * Several messages in one Redis call (group commit): one round trip, one AOF fsync. The new ones
   * are listed under `batch`, the id of the queue job that will process them. Events for messages
   * already stored may ride along.
   */
  async ingestMany(items: IngestItem[], records: EventRecord[] = [], batch = ''): Promise<IngestResult[]> {
    const now = Date.now();
    const at = new Date(now).toISOString();
    const args: (string | number | Buffer)[] = [this.p, now, at, this.opts.retentionMs, batch, items.length];
    for (const it of items) {
      const id = newId(now);
      const meta = {
        id,
        h: this.fields(it.summary, id, at, it.first),
        x: this.indexKeys(it.summary),
        e: JSON.stringify({ at, ...it.first }),
      };
      args.push(it.dedup ?? '', it.raw, JSON.stringify(meta));
    }
    pushRecords(args, records, at);
    const reply = (await this.script('pfiWrite')(0, ...args)) as string[];
    const results: IngestResult[] = [];
    for (let i = 0; i < reply.length; i += 3)
      results.push({ id: reply[i]!, duplicate: reply[i + 1] === 'duplicate', batch: reply[i + 2] || undefined });
    return results;
  }

  /**
   * A worker takes the messages of a job (a batch, or journal ids for a replay or a late enqueue),
   * leaving out those already processed or dead-lettered unless `force`. Records nothing (see
   * begin.lua): the outcome is written once, with the attempt.
   */
  async begin(ref: {
    batch?: string;
    journalIds?: string[];
    force?: boolean;
  }): Promise<{ id: string; raw: Buffer }[] | 'missing'> {
    const reply = (await this.script('pfiBeginBuffer')(
      0,
      this.p,
      ref.force ? '1' : '',
      ref.batch ?? '',
      ...(ref.journalIds ?? []),
    )) as Buffer[];
    if (reply[0]!.toString() === 'missing') return 'missing';
    const out: { id: string; raw: Buffer }[] = [];
    for (let i = 1; i < reply.length; i += 2) out.push({ id: reply[i]!.toString(), raw: reply[i + 1]! });
    return out;
  }

  /** Whether a flow is done with this message (processed or dead-lettered). */
  async finished(id: string): Promise<boolean> {
    const [processed, dead] = await this.redis.hmget(this.key('m', id), 'processedAt', 'deadAt');
    return !!(processed || dead);
  }

  /** Events for many messages in one call (e.g. queued + acknowledged after a group commit). */
  async recordMany(records: EventRecord[]): Promise<void> {
    const now = Date.now();
    const args: (string | number)[] = [this.p, now, new Date(now).toISOString(), 0, '', 0];
    pushRecords(args, records, new Date(now).toISOString());
    await this.script('pfiWrite')(0, ...args);
  }

  /** Appends an event and moves the message's current status. */
  async record(id: string, event: NewEvent): Promise<void> {
    await this.recordMany([{ id, events: [event] }]);
  }

  /**
   * Appends an event that tells what became of one route of a message (a delivery, an answer)
   * without moving the message's status; `field` sets one more hash field in the same write.
   */
  async note(id: string, event: NewEvent, field?: [string, string]): Promise<void> {
    await this.recordMany([{ id, keepStatus: true, events: [event], ...(field ? { field } : {}) }]);
  }

  /** The flow's reading of a message (e.g. a transmission request's submission), kept as long as the message. */
  async saveResult(id: string, kind: string, value: unknown): Promise<void> {
    await this.redis.set(this.key(`res:${kind}`, id), JSON.stringify(value), 'PX', this.opts.retentionMs);
  }

  async result<T>(id: string, kind: string): Promise<T | undefined> {
    const v = await this.redis.get(this.key(`res:${kind}`, id));
    return v ? (JSON.parse(v) as T) : undefined;
  }

  /** Destinations already served, so that a retry does not send twice to the ones that said AA. */
  async markDelivered(id: string, destination: string, ackCode: string): Promise<void> {
    await this.recordMany([
      { id, events: [{ status: 'delivered', destination, ackCode }], field: [`dest:${destination}`, ackCode] },
    ]);
  }

  async deliveredTo(id: string): Promise<Set<string>> {
    const h = await this.redis.hgetall(this.key('m', id));
    return new Set(
      Object.keys(h)
        .filter((k) => k.startsWith('dest:'))
        .map((k) => k.slice(5)),
    );
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
    // In time order: some events are written after later ones (see write.lua).
    const list = events
      .map((e) => JSON.parse(e) as JournalEvent)
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    return toEntry(hash, list);
  }

  async raw(id: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.key('raw', id));
  }

  /**
   * Newest first. Every index is a sorted set by reception time: the most selective one given is
   * read page by page and the other criteria are checked on the entries, so a search never loads
   * a whole index (at most SEARCH_SCAN entries are examined).
   */
  async search(q: SearchQuery): Promise<JournalEntry[]> {
    const limit = Math.min(q.limit ?? 50, 500);
    const index = q.controlId
      ? this.key('x:ctl', q.controlId)
      : q.documentId
        ? this.key('x:doc', q.documentId)
        : q.patientId
          ? this.key('x:pat', q.patientId)
          : q.sender
            ? this.key('x:snd', q.sender)
            : q.channel
              ? this.key('x:ch', q.channel)
              : `${this.p}:x:time`;
    const max = q.to ? q.to.getTime() : '+inf';
    const min = q.from ? q.from.getTime() : '-inf';
    const out: JournalEntry[] = [];
    const page = Math.max(limit, 100);
    for (let offset = 0; out.length < limit && offset < SEARCH_SCAN; offset += page) {
      const ids = await this.redis.zrevrangebyscore(index, max, min, 'LIMIT', offset, page);
      for (const id of ids) {
        const e = await this.get(id);
        if (e && matches(e, q)) out.push(e);
        if (out.length >= limit) break;
      }
      if (ids.length < page) break;
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
        for (const k of this.indexKeys(fromHash(h))) tx.zrem(k, id);
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
    if (s.sendingApplication) keys.push(this.key('x:snd', s.sendingApplication));
    return keys;
  }

  /**
   * Document and patient ids learnt after reception (a mail's XDM is only read by its flow): added to
   * the entry and to the search indexes, at the message's reception time.
   */
  async identify(id: string, more: { documentIds?: string[]; patientIds?: string[] }): Promise<void> {
    const [score, h] = await Promise.all([
      this.redis.zscore(`${this.p}:x:time`, id),
      this.redis.hmget(this.key('m', id), 'documentIds', 'patientIds'),
    ]);
    if (score === null) return;
    const merge = (old: string | null, add: string[] = []) => [
      ...new Set([...(old ? (JSON.parse(old) as string[]) : []), ...add]),
    ];
    const documentIds = merge(h[0] ?? null, more.documentIds);
    const patientIds = merge(h[1] ?? null, more.patientIds);
    const tx = this.redis
      .multi()
      .hset(this.key('m', id), 'documentIds', JSON.stringify(documentIds), 'patientIds', JSON.stringify(patientIds));
    for (const d of more.documentIds ?? []) tx.zadd(this.key('x:doc', d), score, id);
    for (const p of more.patientIds ?? []) tx.zadd(this.key('x:pat', p), score, id);
    await tx.exec();
  }

  private fields(s: MessageSummary, id: string, at: string, first: Omit<JournalEvent, 'at'>): string[] {
    const f: Record<string, string | number | undefined> = {
      id,
      receivedAt: at,
      updatedAt: at,
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
    const out: string[] = [];
    for (const k in f) {
      const v = f[k];
      if (v !== undefined && v !== '') out.push(k, String(v));
    }
    return out;
  }
}

/** How many index entries one search may examine. */
const SEARCH_SCAN = 10_000;

function matches(e: JournalEntry, q: SearchQuery): boolean {
  return (
    (!q.controlId || e.controlId === q.controlId) &&
    (!q.documentId || !!e.documentIds?.includes(q.documentId)) &&
    (!q.patientId || !!e.patientIds?.includes(q.patientId)) &&
    (!q.sender || e.sendingApplication === q.sender) &&
    (!q.channel || e.channel === q.channel) &&
    (!q.status || e.status === q.status)
  );
}

function pushRecords(args: (string | number | Buffer)[], records: EventRecord[], at: string): void {
  args.push(records.length);
  for (const { id, events, field, keepStatus } of records) {
    const last = events[events.length - 1]!;
    const r = {
      id,
      s: keepStatus ? undefined : last.status,
      t: last.at ?? at,
      a: events.find((e) => e.ackCode)?.ackCode,
      f: field,
      e: events.map((e) => JSON.stringify({ at: e.at ?? at, ...e })),
    };
    args.push(JSON.stringify(r));
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
