/**
 * Flow A, part 2: each submission routed to the DMP (DESTDMP=Y) is sent by a job of its own, on a
 * queue of the channel's (`<channel>-dmp`): gate, optional delay (cancellable), ITI-41 or ITI-57,
 * retries with backoff, the outcome in the journal and, when asked, a ZAM^Z01 to the CREATEUR.
 *
 * Exactly once: the job id is derived from the message, and its state (Redis hash, moved by
 * transitions.lua-style scripts below) says what is done. A job that finds "sending" knows the
 * previous attempt died or timed out with the outcome unknown: it asks the DMP (ITI-18) before
 * sending again.
 */
import { UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import { deliveryQueue } from '../redis/queues.js';
import type { RedisKeys } from '../redis/keys.js';
import { luaScript } from '../redis/keys.js';
import type { Clock } from '../util/clock.js';
import type { Redis } from 'ioredis';
import { extractDocuments } from '../cda/extract.js';
import type { DmpConfig, TransmissionChannel } from '../config/channels.js';
import { BUSINESS_ACKS, type BusinessAcks } from '../acks/business-acks.js';
import type { Submission } from '../request/submission.js';
import { senderField } from '../request/participants.js';
import { Hl7Message } from '../hl7v2/message.js';
import type { IdentityStore } from '../identity/store.js';
import { dmpPermissions } from '../identity/pam.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../util/log.js';
import { deliveries } from '../util/metrics.js';
import { redact } from '../util/redact.js';
import {
  STATUS_APPROVED,
  STATUS_DELETED,
  getDocumentsQuery,
  provideAndRegisterRequest,
  updateDocumentSetRequest,
} from '../xds/ebrim.js';
import type { Terminology } from '../xds/terminology.js';
import { DmpClient, type DmpEndpoint } from './client.js';
import { dmpGate } from './gate.js';
import type { DmpAnswer, RegistryError } from './soap.js';
import { ROLE_AUTOMATE, type VihfInput } from './vihf.js';
import { PfiError } from '../errors.js';

export type DmpState = 'scheduled' | 'held' | 'cancelled' | 'sending' | 'accepted' | 'refused' | 'dead-lettered';

export interface DmpStatus {
  state: DmpState;
  at: string;
  sendAt?: string;
  /** DMP entryUUIDs of the documents registered. */
  entries?: string[];
  error?: { code: string; text: string; system: 'DMP_ERROR_CODE' | 'PFIERRORCODE' };
  zam?: string;
}

interface DmpJob {
  journalId: string;
}

/** A failure the DMP or the gate made final: no retry. */
class DmpRefusal extends PfiError {
  constructor(
    readonly code: string,
    text: string,
    readonly system: 'DMP_ERROR_CODE' | 'PFIERRORCODE',
    readonly errors: RegistryError[] = [],
  ) {
    super('dmp-refusal', text);
  }
}

/** IHE codes that mean "try again later". */
const BUSY = new Set([
  'XDSRegistryBusy',
  'XDSRepositoryBusy',
  'XDSRegistryOutOfResources',
  'XDSRepositoryOutOfResources',
]);

const FINAL: DmpState[] = ['accepted', 'refused', 'dead-lettered'];

/** Moves a sending's state only from the given states (src/redis/lua/dmp-transition.lua). */
const TRANSITION = luaScript('dmp-transition.lua');

export interface DmpDeps {
  queueRedis: Redis;
  workerRedis: Redis;
  journal: Journal;
  identity: IdentityStore;
  /** The channel's CREATEUR listener for ZAM^Z01, when it has one. */
  acks?: BusinessAcks;
  keys: RedisKeys;
  clock: Clock;
  terminology: () => Terminology;
  log: Logger;
  retentionMs: number;
}

/** The name of the DMP outcome's ZAM^Z01 among the message's business acks. */
const ZAM = 'Z01:dmp';

export class DmpDelivery {
  readonly queue: Queue<DmpJob>;
  private worker?: Worker<DmpJob>;
  private readonly client: DmpClient;

  constructor(
    private readonly channel: TransmissionChannel,
    private readonly cfg: DmpConfig,
    endpoint: DmpEndpoint,
    private readonly deps: DmpDeps,
  ) {
    this.client = new DmpClient(endpoint);
    this.queue = deliveryQueue<DmpJob>(`${channel.id}-dmp`, deps.queueRedis, deps.keys.queues, this.cfg);
    // A clock moved by hand (tests): what falls due is sent then, not when the real delay ends.
    deps.clock.onJump?.(() => this.promoteDue());
  }

  private stateKey(journalId: string): string {
    return this.deps.keys.dmpSending(this.channel.id, journalId);
  }

  /** The engine's record of a document sent to the DMP, by patient and uniqueId. */
  private docKey(ins: string, uniqueId: string): string {
    return this.deps.keys.dmpDocument(this.channel.id, ins, uniqueId);
  }

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  private jobId(journalId: string): string {
    return `dmp-${journalId}`;
  }

  async status(journalId: string, redis: Redis = this.deps.queueRedis): Promise<DmpStatus | undefined> {
    const h = await redis.hgetall(this.stateKey(journalId));
    if (!h.state) return undefined;
    const zam = (await this.deps.acks?.sent(journalId, redis))?.[ZAM];
    return {
      state: h.state as DmpState,
      at: h.at!,
      ...(h.sendAt ? { sendAt: h.sendAt } : {}),
      ...(h.entries ? { entries: JSON.parse(h.entries) as string[] } : {}),
      ...(h.error ? { error: JSON.parse(h.error) as DmpStatus['error'] } : {}),
      ...(zam ? { zam } : {}),
    };
  }

  private async move(
    redis: Redis,
    journalId: string,
    to: DmpState,
    from: (DmpState | '')[],
    fields: Record<string, string> = {},
  ): Promise<string | null> {
    const key = this.stateKey(journalId);
    const prev = (await redis.eval(
      TRANSITION,
      1,
      key,
      to,
      this.now(),
      from.length,
      ...from,
      ...Object.entries(fields).flat(),
    )) as string | null;
    if (prev !== null) await redis.pexpire(key, this.deps.retentionMs);
    return prev;
  }

  /**
   * Called by the transmission flow once the submission is stored: the send is planned (after the
   * channel's delay, or held), once. Runs again harmlessly when the flow is retried or replayed.
   */
  async schedule(journalId: string): Promise<void> {
    const redis = this.deps.queueRedis;
    const delay = this.cfg.delaySeconds * 1000;
    const sendAt = new Date(this.deps.clock.now() + delay).toISOString();
    const prev = await this.move(redis, journalId, this.cfg.hold ? 'held' : 'scheduled', [''], { sendAt });
    if (prev === null) {
      // Already planned: make sure a job exists unless the state says it is not wanted.
      const s = await this.status(journalId);
      if (s && (s.state === 'scheduled' || s.state === 'sending'))
        await this.queue.add('dmp', { journalId }, { jobId: this.jobId(journalId) });
      return;
    }
    if (this.cfg.hold) return this.note(journalId, 'DMP: held until released (POST /submissions/:id/release)');
    // From the clock again: one moved by hand since the state was written may have made it due.
    const wait = Math.max(0, Date.parse(sendAt) - this.deps.clock.now());
    await this.queue.add('dmp', { journalId }, { jobId: this.jobId(journalId), delay: wait });
    if (delay) await this.note(journalId, `DMP: sending planned at ${sendAt}, cancellable until then`);
  }

  /** Operator actions on a send not yet made (admin API). Returns the new state, or why not. */
  async cancel(journalId: string): Promise<DmpStatus | string> {
    return this.stop(journalId, 'cancelled', 'DMP: sending cancelled on operator request');
  }

  async hold(journalId: string): Promise<DmpStatus | string> {
    return this.stop(journalId, 'held', 'DMP: sending held on operator request');
  }

  async release(journalId: string): Promise<DmpStatus | string> {
    const redis = this.deps.queueRedis;
    const prev = await this.move(redis, journalId, 'scheduled', ['held'], { sendAt: this.now() });
    if (prev === null) return this.why(journalId, 'held');
    await this.queue.add('dmp', { journalId }, { jobId: this.jobId(journalId) });
    await this.note(journalId, 'DMP: released, sending now');
    return (await this.status(journalId))!;
  }

  /**
   * Sends again a sending that ended refused or dead-lettered (the DMP is back, the patient's DMP was
   * reopened...): a new outcome, a new ZAM.
   */
  async retry(journalId: string): Promise<DmpStatus | string> {
    const redis = this.deps.queueRedis;
    const prev = await this.move(redis, journalId, 'scheduled', ['refused', 'dead-lettered'], { sendAt: this.now() });
    if (prev === null) return this.why(journalId, 'refused or dead-lettered');
    await redis.hdel(this.stateKey(journalId), 'error');
    await this.deps.acks?.forget(journalId, ZAM);
    // The dead letter's job is kept for the record (removeOnFail): make room for the new one.
    await (await this.queue.getJob(this.jobId(journalId)))?.remove().catch(() => undefined);
    await this.queue.add('dmp', { journalId }, { jobId: this.jobId(journalId) });
    await this.note(journalId, `DMP: sending again on operator request (was ${prev})`);
    return (await this.status(journalId))!;
  }

  private async stop(journalId: string, to: 'cancelled' | 'held', detail: string): Promise<DmpStatus | string> {
    const from: DmpState[] = to === 'held' ? ['scheduled'] : ['scheduled', 'held'];
    const prev = await this.move(this.deps.queueRedis, journalId, to, from);
    if (prev === null) return this.why(journalId, from.join(' or '));
    // The job may still be waiting in the queue: it would find the state and do nothing, but a
    // delayed job is better removed. A job being processed has already moved the state to sending.
    await (await this.queue.getJob(this.jobId(journalId)))?.remove().catch(() => undefined);
    await this.note(journalId, detail);
    return (await this.status(journalId))!;
  }

  /** Sends now what a manual clock made due (the system clock leaves this to the queue's delay). */
  private async promoteDue(): Promise<void> {
    for (const job of await this.queue.getDelayed()) {
      const s = await this.status(job.data.journalId);
      if (s?.state === 'scheduled' && Date.parse(s.sendAt ?? '') <= this.deps.clock.now()) await job.promote();
    }
  }

  /** A journal event that does not change the message's status. */
  private note(journalId: string, detail: string): Promise<void> {
    return this.deps.journal.note(journalId, { status: 'processed', destination: 'dmp', detail });
  }

  private async why(journalId: string, expected: string): Promise<string> {
    const s = await this.status(journalId);
    return s ? `the DMP sending is ${s.state}, not ${expected}` : 'no DMP sending for this message';
  }

  start(): void {
    this.worker = new Worker<DmpJob>(`${this.channel.id}-dmp`, (job) => this.process(job), {
      connection: this.deps.workerRedis,
      prefix: this.deps.keys.queues,
      concurrency: this.cfg.concurrency,
      // A worker killed during a call: its job is taken up again within ~15 s of a restart.
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: 5,
    });
    this.worker.on('error', (err) =>
      this.deps.log.error({ channel: this.channel.id, err: err.message }, 'DMP worker error'),
    );
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
    this.client.close();
  }

  private async process(job: Job<DmpJob>): Promise<void> {
    const { journalId } = job.data;
    const redis = this.deps.workerRedis;
    const journal = this.deps.journal;
    const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    let status = await this.status(journalId, redis);
    if (!status || status.state === 'held' || status.state === 'cancelled') return;
    const submission = await journal.result<Submission>(journalId, 'submission');
    const raw = await journal.raw(journalId);
    if (!submission || !raw) throw new UnrecoverableError('the submission or the message is no longer in the journal');
    const msg = Hl7Message.parse(raw, { defaultCharset: this.channel.source.defaultCharset });

    if (!FINAL.includes(status.state)) {
      const uncertain = status.state === 'sending';
      if ((await this.move(redis, journalId, 'sending', ['scheduled', 'sending'])) === null) return;
      try {
        const entries = await this.send(submission, msg, uncertain);
        await this.move(redis, journalId, 'accepted', ['sending'], { entries: JSON.stringify(entries) });
        const documents = `${entries.length} document${entries.length > 1 ? 's' : ''}`;
        const detail = `DMP: ${operation(submission)} accepted (${documents})`;
        await journal.note(journalId, { status: 'delivered', destination: 'dmp', ackCode: 'Success', detail });
        deliveries.inc({ channel: this.channel.id, destination: 'dmp', outcome: 'accepted' });
      } catch (e) {
        if (e instanceof DmpRefusal) {
          const error = { code: e.code, text: e.message, system: e.system };
          await this.move(redis, journalId, 'refused', ['sending'], { error: JSON.stringify(error) });
          const each = e.errors.map((x) => `${x.code} ${x.context}${x.location ? ` @${x.location}` : ''}`);
          const all = e.errors.length > 1 ? `; all errors: ${each.join(' | ')}` : '';
          // The message was processed; this is the outcome of one of its routes (the CREATEUR hears of it
          // by ZAM), so the message keeps its status. Only a dead letter, which needs an operator, moves it.
          await journal.note(journalId, {
            status: 'rejected',
            destination: 'dmp',
            detail: `DMP: ${operation(submission)} refused${all}`,
            error: { code: e.code, message: e.message },
          });
          deliveries.inc({
            channel: this.channel.id,
            destination: 'dmp',
            outcome: e.system === 'PFIERRORCODE' ? 'gated' : 'refused',
          });
          this.deps.log.warn({ channel: this.channel.id, journalId, code: e.code }, 'DMP sending refused');
        } else if (!last) {
          await journal.note(journalId, {
            status: 'failed',
            destination: 'dmp',
            detail: `DMP: attempt ${job.attemptsMade + 1} failed, will retry`,
            error: { message: (e as Error).message },
          });
          deliveries.inc({ channel: this.channel.id, destination: 'dmp', outcome: 'retry' });
          this.deps.log.warn(
            { channel: this.channel.id, journalId, attempt: job.attemptsMade + 1, err: redact((e as Error).message) },
            'DMP sending failed, will retry',
          );
          throw e;
        } else {
          const error = {
            code: 'DMP-unreachable',
            text: `gave up after ${job.attemptsMade + 1} attempts: ${(e as Error).message}`,
            system: 'PFIERRORCODE' as const,
          };
          // Its documents may or may not be in the DMP: a later replacement asks the DMP (ITI-18) instead of waiting.
          if (submission.event !== 'delete') {
            const ins = submission.documents[0]!.entry.patientId.id;
            for (const d of submission.documents) await this.remember(ins, d.entry.uniqueId, { state: 'unknown' });
          }
          await this.move(redis, journalId, 'dead-lettered', ['sending'], { error: JSON.stringify(error) });
          await journal.record(journalId, {
            status: 'dead-lettered',
            destination: 'dmp',
            detail: `DMP: gave up after attempt ${job.attemptsMade + 1}`,
            error: { message: (e as Error).message },
          });
          deliveries.inc({ channel: this.channel.id, destination: 'dmp', outcome: 'dead-lettered' });
        }
      }
      status = (await this.status(journalId, redis))!;
    }
    try {
      await this.tellCreateur(journalId, submission, msg, status);
    } catch (e) {
      // The DMP part is done; only the ZAM is retried (the job's next attempts skip the DMP).
      const event = {
        status: last ? ('dead-lettered' as const) : ('failed' as const),
        destination: BUSINESS_ACKS,
        detail: `ZAM^Z01 not delivered${last ? ', gave up' : ', will retry'}`,
        error: { message: (e as Error).message },
      };
      await journal.recordMany([{ id: journalId, keepStatus: !last, events: [event] }]);
      throw e;
    }
    if (status.state === 'dead-lettered') throw new UnrecoverableError(status.error?.text ?? 'dead-lettered');
  }

  /** ZAM^Z01 when the CREATEUR asked for it (ACK_RECEPTION=Y), once. A failure retries the job. */
  private async tellCreateur(
    journalId: string,
    submission: Submission,
    msg: Hl7Message,
    status: DmpStatus,
  ): Promise<void> {
    if (!submission.routes.acks.reception || !this.deps.acks) {
      if (submission.routes.acks.reception)
        this.deps.log.warn(
          { channel: this.channel.id, journalId },
          'ZAM^Z01 asked, but the channel has no businessAcks address',
        );
      return;
    }
    const ok = status.state === 'accepted';
    const e = status.error;
    const label = e?.system === 'DMP_ERROR_CODE' ? 'Erreur DMP' : 'Envoi au DMP refusé par la PFI';
    const zam = {
      kind: 'Z01' as const,
      ok,
      ...(e ? { error: { code: e.code, label, system: e.system, text: e.text } } : {}),
    };
    await this.deps.acks.send(journalId, ZAM, msg, zam, `ZAM^Z01 ${ok ? 'Y' : 'N'} sent to the CREATEUR`);
  }

  /** The call itself; resolves with the entryUUIDs registered, throws DmpRefusal or a retryable error. */
  private async send(sub: Submission, msg: Hl7Message, uncertain: boolean): Promise<string[]> {
    const entries = sub.documents.map((d) => d.entry);
    const patient = entries[0]!.patientId;
    const reliability =
      msg
        .segment('PID')
        ?.field(32)
        ?.split(msg.delimiters.repetition)
        .map((r) => r.split(msg.delimiters.component)[0]!) ?? [];
    const known = await this.deps.identity.dmpGate([{ id: patient.id, authority: patient.authority }]);
    const opposed = !!known.patient && !dmpPermissions(known.patient.consent).feedingAllowed;
    const refusal = dmpGate({ reliability, opposed, documents: entries }, this.deps.terminology());
    if (refusal) throw new DmpRefusal(refusal.rule, refusal.text, 'PFIERRORCODE');
    const identity = this.identity(sub, msg);
    const ins = patient.id;

    if (sub.event === 'delete') {
      const targets = await Promise.all(entries.map((e) => this.registered(identity, ins, e.uniqueId)));
      if (
        uncertain &&
        (await this.alreadyDone(
          identity,
          entries.map((e) => e.uniqueId),
          'Deleted',
        ))
      )
        return targets.map((t) => t.entryUUID);
      const answer = await this.client.updateDocumentSet(
        identity,
        updateDocumentSetRequest(
          sub.submissionSet,
          targets.map((t) => ({ entryUUID: t.entryUUID, from: t.status })),
          STATUS_DELETED,
        ),
      );
      this.check(answer);
      await Promise.all(entries.map((e) => this.remember(ins, e.uniqueId, { state: 'deleted' })));
      return targets.map((t) => t.entryUUID);
    }

    const replacements: { source: string; target: string }[] = [];
    const replaced: string[] = [];
    if (sub.event === 'replace') {
      for (const [i, d] of sub.documents.entries()) {
        const target = d.replaces ?? (i === 0 ? sub.replaces : undefined);
        if (!target)
          throw new DmpRefusal(
            'DMP-replaced-document',
            `OBX ${d.obx}: a replacement must name the replaced document (CDA relatedDocument RPLC, or TXA-13)`,
            'PFIERRORCODE',
          );
        replacements.push({
          source: d.entry.entryUUID,
          target: (await this.registered(identity, ins, target)).entryUUID,
        });
        replaced.push(target);
      }
    }
    if (
      uncertain &&
      (await this.alreadyDone(
        identity,
        entries.map((e) => e.uniqueId),
      ))
    )
      return entries.map((e) => e.entryUUID);
    const raws = extractDocuments(msg);
    const documents = sub.documents.map((d, i) => {
      const body = d.generatedCda ? Buffer.from(d.generatedCda, 'base64') : raws.find((r) => r.obx === d.obx)?.bytes;
      if (!body) throw new UnrecoverableError(`OBX ${d.obx}: the document is no longer in the message`);
      return { contentId: `doc${i + 1}@pfi`, contentType: d.entry.mimeType, body };
    });
    for (const e of entries) await this.remember(ins, e.uniqueId, { state: 'pending', entryUUID: e.entryUUID });
    const body = provideAndRegisterRequest(
      sub.submissionSet,
      entries.map((entry, i) => ({ entry, contentId: documents[i]!.contentId })),
      { replacements },
    );
    const answer = await this.client.provideAndRegister(identity, body, documents);
    try {
      this.check(answer);
    } catch (e) {
      if (e instanceof DmpRefusal) for (const x of entries) await this.remember(ins, x.uniqueId, { state: 'refused' });
      throw e;
    }
    for (const e of entries) await this.remember(ins, e.uniqueId, { state: 'accepted', entryUUID: e.entryUUID });
    for (const r of replaced) await this.remember(ins, r, { state: 'deprecated' });
    return entries.map((e) => e.entryUUID);
  }

  /** Throws unless the DMP said Success (a DmpRefusal for its business errors, else a retryable error). */
  private check(answer: DmpAnswer): void {
    if (answer.kind === 'fault') {
      const code = answer.subcode || answer.code || 'SOAPFault';
      // A Receiver fault is the service's own trouble; a Sender fault is about our request.
      if (/Receiver$/.test(answer.code)) throw new Error(`DMP SOAP fault ${code}: ${answer.reason}`);
      throw new DmpRefusal(code.replace(/^\w+:/, ''), answer.reason || 'SOAP fault', 'DMP_ERROR_CODE');
    }
    if (answer.status === 'Success') return;
    const errors = answer.errors.filter((e) => e.severity === 'Error');
    const first = errors[0] ?? answer.errors[0];
    if (errors.length && errors.every((e) => BUSY.has(e.code)))
      throw new Error(`DMP busy (${first!.code}): ${first!.context}`);
    if (!first)
      throw new DmpRefusal('XDSRegistryError', `the DMP answered ${answer.status} without an error`, 'DMP_ERROR_CODE');
    throw new DmpRefusal(
      first.code,
      first.context + (first.location ? ` (${first.location})` : ''),
      'DMP_ERROR_CODE',
      answer.errors,
    );
  }

  /**
   * The entryUUID and status of a document already in the DMP, replaced or deleted by this request:
   * from the engine's own record when it sent it (waiting while that send is not through), else
   * asked to the DMP (ITI-18), for documents sent before the engine or by another system.
   */
  private async registered(
    identity: VihfInput,
    ins: string,
    uniqueId: string,
  ): Promise<{ entryUUID: string; status: string }> {
    const mine = await this.deps.workerRedis.hgetall(this.docKey(ins, uniqueId));
    if (mine.state === 'pending') throw new Error(`waiting for document ${uniqueId} to be accepted by the DMP first`);
    if (mine.state === 'accepted' && mine.entryUUID) return { entryUUID: mine.entryUUID, status: STATUS_APPROVED };
    const answer = await this.client.storedQuery(identity, getDocumentsQuery([uniqueId]));
    if (answer.kind !== 'query') {
      this.check(answer); // a Fault or a Failure throws here
      throw new Error('the DMP answered a stored query without an AdhocQueryResponse');
    }
    if (answer.status !== 'Success') this.check({ kind: 'registry', status: answer.status, errors: answer.errors });
    const found =
      answer.documents.find((d) => d.uniqueId === uniqueId && d.status === 'Approved') ??
      answer.documents.find((d) => d.uniqueId === uniqueId);
    if (!found)
      throw new DmpRefusal('DMP-document-unknown', `document ${uniqueId} is not in the patient’s DMP`, 'PFIERRORCODE');
    if (found.status !== 'Approved')
      throw new DmpRefusal(
        'DMP-document-not-current',
        `document ${uniqueId} is ${found.status} in the DMP, not Approved`,
        'PFIERRORCODE',
      );
    return { entryUUID: found.entryUUID, status: STATUS_APPROVED };
  }

  /** After an attempt whose outcome is unknown: did the DMP register it (or delete them) already? */
  private async alreadyDone(identity: VihfInput, uniqueIds: string[], status = 'Approved'): Promise<boolean> {
    const answer = await this.client.storedQuery(identity, getDocumentsQuery(uniqueIds));
    if (answer.kind !== 'query' || answer.status !== 'Success') return false;
    return uniqueIds.every((u) => answer.documents.some((d) => d.uniqueId === u && d.status === status));
  }

  private async remember(ins: string, uniqueId: string, fields: Record<string, string>): Promise<void> {
    const key = this.docKey(ins, uniqueId);
    await this.deps.workerRedis.multi().hset(key, fields).pexpire(key, this.deps.retentionMs).exec();
  }

  /** The VIHF's subject and resource for this request (IG strategy 1: an automated processing). */
  private identity(sub: Submission, msg: Hl7Message): VihfInput {
    const c = this.cfg;
    const sender = senderField(msg);
    const patient = sub.documents[0]!.entry.patientId;
    const structureId = c.structureId ?? sender('8.10');
    const nameId = c.responsible?.id ?? sender('5.1');
    if (!structureId)
      throw new DmpRefusal(
        'DMP-VIHF-structure',
        'Identifiant_Structure: no PRT-8.10 in the PRT SB and no dmp.structureId in the channel',
        'PFIERRORCODE',
      );
    if (!nameId)
      throw new DmpRefusal(
        'DMP-VIHF-subject',
        'NameID: no PRT-5.1 in the PRT SB and no dmp.responsible.id in the channel',
        'PFIERRORCODE',
      );
    return {
      ins: { matricule: patient.id, oid: patient.authority },
      structureId,
      sector: c.sector,
      nameId,
      subjectId: c.responsible?.name ?? `${c.lps.name}, ${c.lps.name}`,
      roles: [ROLE_AUTOMATE],
      authnContext: c.authnContext,
      version: c.vihfVersion,
      lps: c.lps,
      ...(sub.flags.CONNEXION_SECRETE ? { confidentiality: c.secretConnection ?? SECRET_CONNECTION } : {}),
    };
  }
}

/**
 * VIHF confidentiality-code for a secret connection. The volet requires the attribute but does not
 * give its value (docs/dmp-notes.md §8): HL7 Confidentiality "R" until the DMP guide says otherwise;
 * `dmp.secretConnection` overrides it.
 */
const SECRET_CONNECTION = { code: 'R', codeSystem: '2.16.840.1.113883.5.25', displayName: 'Restreint' };

function operation(sub: Submission): string {
  return sub.event === 'new' ? 'publication' : sub.event === 'replace' ? 'replacement' : 'deletion';
}
