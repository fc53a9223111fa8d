import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import { ackBytes, type AckCode, type AckError } from '../hl7v2/ack.js';
import { sniffMsh18, type Hl7Charset } from '../hl7v2/charset.js';
import { readMsh, type MshHeader } from '../hl7v2/header.js';
import type { ErrorLocation } from '../hl7v2/errors.js';
import { Hl7Message, Hl7ParseError } from '../hl7v2/message.js';
import { validateTransmission } from '../flows/transmission/validate.js';
import type { Journal, MessageSummary } from '../journal/journal.js';
import { checkIns } from '../identity/ins.js';
import { cx, cxList, isInsIdentifier, repetitions } from '../identity/pid.js';
import type { ConnectionInfo, MllpHandler } from '../mllp/server.js';
import { newId } from '../util/id.js';
import { redact } from '../util/redact.js';
import type { Logger } from '../util/log.js';
import { acksOut, ackLatency, messagesIn, mllpDiscarded } from '../util/metrics.js';
import { GroupCommit, type JobData } from './commit.js';
import type { ListenerChannel } from '../config/channels.js';

/** ERR segments in one ACK, at most. */
const MAX_ERR = 20;

/** Answer when the message was refused before being stored; the decision rules are in docs/acknowledgements.md. */
interface Refusal {
  code: AckCode;
  errors: AckError[];
}

/**
 * The MLLP side of a channel: check the header, store durably, enqueue, and only then say AA.
 * Every path ends in an ACK (or, for input that was never a frame, a journal entry).
 */
export class Ingest implements MllpHandler {
  private readonly commits: GroupCommit;

  constructor(
    private readonly channel: ListenerChannel,
    private readonly journal: Journal,
    queue: Queue<JobData>,
    private readonly log: Logger,
  ) {
    this.commits = new GroupCommit(channel.id, journal, queue, log);
  }

  async onMessage(payload: Buffer, conn: ConnectionInfo): Promise<Buffer> {
    const started = process.hrtime.bigint();
    const { msh, refusal, summary } = this.examine(payload, conn);
    messagesIn.inc({ channel: this.channel.id, type: summary.messageType ?? 'unknown' });
    let ack: Buffer;
    if (refusal?.errors[0]?.code === 201 && this.channel.source.unknownEvents === 'ignore') {
      // The channel's policy: events it does not handle are acknowledged and kept, not processed.
      await this.discard(
        payload,
        summary,
        `event ${summary.messageType} not handled by this channel: acknowledged and ignored (unknownEvents: ignore)`,
      );
      ack = this.ack(msh, 'AA', []);
    } else if (refusal) {
      ack = await this.refuse(payload, msh, summary, refusal);
    } else {
      ack = await this.accept(payload, msh!, summary);
    }
    ackLatency.observe({ channel: this.channel.id }, Number(process.hrtime.bigint() - started) / 1e9);
    return ack;
  }

  /** Writes what the group commit still holds (ACK events). */
  drain(): Promise<void> {
    return this.commits.drain();
  }

  async onOversize(head: Buffer, bytes: number, conn: ConnectionInfo): Promise<Buffer> {
    mllpDiscarded.inc({ channel: this.channel.id, reason: 'oversize' });
    const { msh, summary } = this.examine(head, conn);
    summary.size = bytes;
    const limit = this.channel.source.maxMessageBytes;
    const text = `message larger than the channel limit of ${limit} bytes; connection closed`;
    this.log.warn(
      { channel: this.channel.id, conn: conn.id, controlId: msh?.controlId, limit },
      'oversize MLLP frame refused',
    );
    // Only the head is kept: storing the rest is exactly what the limit protects against.
    return this.refuse(
      head,
      msh,
      summary,
      { code: 'AR', errors: [{ code: 207, text }] },
      'oversize frame, first bytes kept',
    );
  }

  async onTruncated(payload: Buffer, conn: ConnectionInfo): Promise<void> {
    // The sender started a new frame before ending this one: it never expected an answer to it.
    mllpDiscarded.inc({ channel: this.channel.id, reason: 'truncated' });
    const { summary } = this.examine(payload, conn);
    this.log.warn({ channel: this.channel.id, conn: conn.id, bytes: payload.length }, 'truncated MLLP frame discarded');
    await this.discard(payload, summary, 'truncated frame (a new frame started before its end); no ACK sent');
  }

  onJunk(bytes: number, sample: Buffer, conn: ConnectionInfo): void {
    mllpDiscarded.inc({ channel: this.channel.id, reason: 'junk' }, bytes);
    this.log.warn({ channel: this.channel.id, conn: conn.id, bytes }, 'bytes outside MLLP frames discarded');
    const summary: MessageSummary = { channel: this.channel.id, remote: remote(conn), size: bytes };
    void this.discard(sample, summary, `${bytes} bytes outside any MLLP frame (first ${sample.length} kept)`);
  }

  onError(err: Error, conn?: ConnectionInfo): void {
    this.log.error({ channel: this.channel.id, conn: conn?.id, err: err.message }, 'MLLP connection error');
  }

  /** Reads MSH and applies the channel's accept list. Pure: no I/O. */
  private examine(
    payload: Buffer,
    conn: ConnectionInfo,
  ): { msh?: MshHeader; summary: MessageSummary; refusal?: Refusal } {
    const summary: MessageSummary = { channel: this.channel.id, remote: remote(conn), size: payload.length };
    let msg: Hl7Message;
    let msh: MshHeader | undefined;
    try {
      msg = Hl7Message.parse(payload, { defaultCharset: this.channel.source.defaultCharset });
      msh = readMsh(msg);
    } catch (e) {
      if (!(e instanceof Hl7ParseError)) {
        // A parser bug must still end in an answer and a journal entry, not a dropped connection.
        this.log.error(
          { channel: this.channel.id, conn: conn.id, err: redact((e as Error).message) },
          'unexpected error reading a message',
        );
        return { summary, refusal: { code: 'AR', errors: [{ code: 207, text: 'the message could not be read' }] } };
      }
      summary.charset = sniffMsh18(payload);
      msh = e.code === 103 ? headerDespiteCharset(payload, this.channel.source.defaultCharset) : undefined;
      if (msh)
        Object.assign(summary, {
          controlId: msh.controlId || undefined,
          sendingApplication: msh.sendingApplication || undefined,
        });
      // Not HL7 at all (no MSH) is a reject; a readable header with a bad value is an error in content.
      const code: AckCode = e.code === 100 ? 'AR' : 'AE';
      return {
        msh,
        summary,
        refusal: { code, errors: [{ code: e.code as AckError['code'], text: e.message, location: e.location }] },
      };
    }
    const pid = msg.segment('PID');
    Object.assign(summary, {
      charset: msg.charset,
      controlId: msh.controlId || undefined,
      sendingApplication: msh.sendingApplication || undefined,
      sendingFacility: msh.sendingFacility || undefined,
      messageType: [msh.messageType, msh.triggerEvent].filter(Boolean).join('^') || undefined,
      version: msh.version || undefined,
      documentIds: unique([msg.get('TXA-12.1'), msg.get('TXA-13.1')]),
      patientIds: unique(pid ? cxList(msg, pid, 'PID', 3).map((i) => i.id) : []),
    });
    return { msh, summary, refusal: this.checkHeader(msh) ?? checkInsIdentifiers(msg) ?? this.checkProfile(msg, msh) };
  }

  /** The volet's rules that need nothing but the message (the others wait for interpretation). */
  private checkProfile(msg: Hl7Message, msh: MshHeader): Refusal | undefined {
    if (this.channel.source.profile !== 'cisis-transmission' || !['MDM', 'ORU'].includes(msh.messageType))
      return undefined;
    const errors = validateTransmission(msg).filter((e) => e.stage === 'ingest');
    if (!errors.length) return undefined;
    // Every violation is named, up to a sane number of ERR segments.
    return {
      code: 'AE',
      errors: errors
        .slice(0, MAX_ERR)
        .map((e) => ({ code: e.code, text: `${e.text} [${e.rule}]`, location: e.location })),
    };
  }

  private checkHeader(msh: MshHeader): Refusal | undefined {
    const required = (field: number, label: string): Refusal => ({
      code: 'AE',
      errors: [
        { code: 101, text: `${label} (MSH-${field}) is required`, location: { segment: 'MSH', sequence: 1, field } },
      ],
    });
    if (!msh.messageType || !msh.triggerEvent) return required(9, 'message type');
    if (!msh.controlId) return required(10, 'message control id');
    if (!msh.version) return required(12, 'version id');
    const rules = this.channel.source.accept.filter((r) => r.type === msh.messageType);
    const at = (field: number, component?: number) => ({ segment: 'MSH', sequence: 1, field, component });
    if (!rules.length) {
      return {
        code: 'AR',
        errors: [
          {
            code: 200,
            text: `message type ${msh.messageType} is not accepted on channel ${this.channel.id}`,
            location: at(9, 1),
          },
        ],
      };
    }
    const byEvent = rules.filter((r) => r.events.includes(msh.triggerEvent));
    if (!byEvent.length) {
      return {
        code: 'AR',
        errors: [
          {
            code: 201,
            text: `event ${msh.messageType}^${msh.triggerEvent} is not accepted on channel ${this.channel.id}`,
            location: at(9, 2),
          },
        ],
      };
    }
    if (!byEvent.some((r) => r.versions.includes(msh.version))) {
      const versions = [...new Set(byEvent.flatMap((r) => r.versions))].join(', ');
      return {
        code: 'AR',
        errors: [
          {
            code: 203,
            text:
              `version ${msh.version} is not supported for ${msh.messageType}^${msh.triggerEvent} ` +
              `(expected ${versions})`,
            location: at(12, 1),
          },
        ],
      };
    }
    return undefined;
  }

  private async accept(payload: Buffer, msh: MshHeader, summary: MessageSummary): Promise<Buffer> {
    const sender = `${msh.sendingApplication}|${msh.sendingFacility}|${msh.controlId}`;
    const dedup = `${this.channel.id}:${sender}:${fingerprint(payload)}`;
    try {
      const res = await this.commits.commit({ raw: payload, summary, first: { status: 'received' }, dedup });
      this.log.debug(
        { channel: this.channel.id, journalId: res.id, controlId: msh.controlId, duplicate: res.duplicate },
        'accepted',
      );
      return this.ack(msh, 'AA', []);
    } catch (e) {
      // Redis down, full or refusing: never AA. AR tells the sender to send again later.
      this.log.error(
        { channel: this.channel.id, controlId: msh.controlId, err: (e as Error).message },
        'durable store failed, message refused',
      );
      return this.ack(msh, 'AR', [{ code: 207, text: 'message could not be stored durably; send it again later' }]);
    }
  }

  private async refuse(
    payload: Buffer,
    msh: MshHeader | undefined,
    summary: MessageSummary,
    r: Refusal,
    detail?: string,
  ): Promise<Buffer> {
    const ack = this.ack(msh, r.code, r.errors);
    const err = r.errors[0]!;
    try {
      await this.journal.ingest(payload, summary, {
        status: 'rejected',
        ackCode: r.code,
        detail,
        error: {
          code: err.code,
          message: err.text ?? '',
          location: err.location ? formatLocation(err.location) : undefined,
        },
      });
    } catch (e) {
      this.log.error({ channel: this.channel.id, err: (e as Error).message }, 'could not journal a refused message');
    }
    this.log.info(
      { channel: this.channel.id, controlId: msh?.controlId, ack: r.code, error: err.code },
      'message refused',
    );
    return ack;
  }

  private async discard(payload: Buffer, summary: MessageSummary, detail: string): Promise<void> {
    try {
      await this.journal.ingest(payload, summary, { status: 'discarded', detail });
    } catch (e) {
      this.log.error({ channel: this.channel.id, err: (e as Error).message }, 'could not journal discarded input');
    }
  }

  private ack(msh: MshHeader | undefined, code: AckCode, errors: AckError[]): Buffer {
    acksOut.inc({ channel: this.channel.id, code });
    return ackBytes(msh, { code, errors, controlId: newId(), fallbackCharset: this.channel.source.defaultCharset });
  }
}

/** The header of a message whose MSH-18 we cannot decode: read as the channel's default, for the ACK only. */
function headerDespiteCharset(payload: Buffer, charset: Hl7Charset): MshHeader | undefined {
  try {
    return readMsh(Hl7Message.parse(payload, { charset }));
  } catch {
    return undefined;
  }
}

/**
 * What must match, besides the sender and MSH-10, for a message to be a retransmission: everything
 * after MSH (senders often restamp MSH-7 when they resend). A control id reused for another
 * content is a new message, not a duplicate to drop.
 */
function fingerprint(payload: Buffer): string {
  let start = payload.indexOf(0x0d);
  if (start < 0) start = payload.length;
  return createHash('sha256').update(payload.subarray(start)).digest('base64url');
}

function remote(conn: ConnectionInfo): string {
  return `${conn.remoteAddress}:${conn.remotePort}`;
}

/**
 * Every INS entering the engine is checked (OID of the INS referential, 15 characters, NIR key): a
 * PID-3 repetition typed INS, or whose assigning authority is an INS OID. Refused AE 102 at it.
 */
function checkInsIdentifiers(msg: Hl7Message): Refusal | undefined {
  const pid = msg.segment('PID');
  if (!pid) return undefined;
  const errors: AckError[] = [];
  for (let r = 1; r <= repetitions(msg, pid, 3); r++) {
    const i = cx(msg, `PID-3[${r}]`);
    if (!i || !isInsIdentifier(i)) continue;
    const check = checkIns(i.id, i.authority);
    if (!check.ok)
      errors.push({
        code: 102,
        text: check.reason,
        location: { segment: 'PID', sequence: 1, field: 3, repetition: r, component: 1 },
      });
  }
  return errors.length ? { code: 'AE', errors } : undefined;
}

function unique(values: (string | undefined)[]): string[] | undefined {
  const out = [...new Set(values.filter((v): v is string => !!v))];
  return out.length ? out : undefined;
}

export function formatLocation(l: ErrorLocation): string {
  let s = l.segment;
  if (l.field !== undefined) s += `-${l.field}`;
  if (l.repetition !== undefined && l.repetition > 1) s += `[${l.repetition}]`;
  if (l.component !== undefined) s += `.${l.component}`;
  if (l.subcomponent !== undefined) s += `.${l.subcomponent}`;
  return s;
}
