/**
 * MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2 block format):
 *
 *     <VT 0x0B> payload <FS 0x1C><CR 0x0D>
 *
 * The decoder is a small state machine fed with arbitrary chunks (TCP gives no
 * message boundaries). It never concatenates its receive buffer per chunk: the
 * bytes of an unfinished frame are kept as a list of slices and concatenated
 * exactly once, when the frame completes (linear in the size of the frame).
 *
 * Leniency decisions (documented, tested):
 * - FS ends a frame. The message is emitted as soon as FS is seen; if the very
 *   next byte (possibly in the next chunk) is CR, it is swallowed; any other
 *   byte is handled normally (VT starts a new frame, anything else is junk).
 *   Many senders emit VT..FS without CR; 0x1C never appears in ER7 text.
 *   Emitting at FS (not at the following byte) also avoids dead-locking with a
 *   sender that sends VT..FS and then waits for its ACK.
 * - Bytes outside a frame are "junk" (commonly a LF after FS CR). They are not
 *   buffered: a run of junk is reported once, when it ends (the next VT) or on
 *   {@link MllpDecoder.end}, with its length and a sample of its first 256 bytes.
 * - A VT inside an unfinished frame abandons that frame (reported as
 *   'truncated' with what was received) and starts a new one.
 * - A frame larger than maxMessageBytes is reported once ('oversize') as soon
 *   as the limit is crossed, with its first min(64 KiB, max) bytes; the rest of
 *   that frame is discarded without being buffered, up to its FS (or a VT,
 *   which starts a new frame).
 */

export const VT = 0x0b;
export const FS = 0x1c;
export const CR = 0x0d;

const TRAILER = Buffer.from([FS, CR]);
const HEADER = Buffer.from([VT]);

/** Wraps a payload in an MLLP block: VT payload FS CR. */
export function frame(payload: Buffer): Buffer {
  return Buffer.concat([HEADER, payload, TRAILER], payload.length + 3);
}

export type MllpEvent =
  /** A complete frame's payload (without VT/FS/CR). Always a fresh copy. */
  | { kind: 'message'; payload: Buffer }
  /** A run of bytes found outside any frame; sample = its first <= 256 bytes. */
  | { kind: 'junk'; bytes: number; sample: Buffer }
  /** A VT arrived inside an unfinished frame (or the stream ended inside one): the unfinished frame is abandoned. */
  | { kind: 'truncated'; payload: Buffer }
  /**
   * The frame exceeded maxMessageBytes; head = its first min(64 KiB, max) bytes; bytes = bytes seen when the
   * limit was crossed.
   */
  | { kind: 'oversize'; head: Buffer; bytes: number };

export interface MllpDecoderOptions {
  /** Largest accepted payload, in bytes. Default 64 MiB. */
  maxMessageBytes?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const OVERSIZE_HEAD_BYTES = 64 * 1024;
const JUNK_SAMPLE_BYTES = 256;

const enum State {
  /** Outside any frame: bytes other than VT are junk. */
  Outside,
  /** Inside a frame, buffering payload. */
  InFrame,
  /** Inside an oversize frame: counting and discarding until FS. */
  Discarding,
}

export class MllpDecoder {
  private readonly max: number;
  private state: State = State.Outside;
  /** True right after an FS: a CR at the next byte is part of the trailer. */
  private afterFs = false;

  private chunks: Buffer[] = [];
  private frameBytes = 0;

  private junkBytes = 0;
  private junkSample: Buffer[] = [];
  private junkSampleBytes = 0;

  constructor(opts: MllpDecoderOptions = {}) {
    const max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!Number.isFinite(max) || max <= 0) throw new RangeError(`maxMessageBytes must be > 0, got ${max}`);
    this.max = Math.floor(max);
  }

  /** Bytes currently buffered for an unfinished frame (0 while discarding an oversize frame). */
  get pendingBytes(): number {
    return this.state === State.InFrame ? this.frameBytes : 0;
  }

  /** Feeds a chunk; returns the events it completes, in stream order. */
  push(chunk: Buffer): MllpEvent[] {
    const events: MllpEvent[] = [];
    const len = chunk.length;
    let pos = 0;
    // Cached positions of the next VT / FS at or after pos (-1: none in this
    // chunk), so each byte of the chunk is scanned at most once per marker.
    let nextVt = -2;
    let nextFs = -2;
    const findVt = (): number => {
      if (nextVt !== -1 && nextVt < pos) nextVt = chunk.indexOf(VT, pos);
      return nextVt;
    };
    const findFs = (): number => {
      if (nextFs !== -1 && nextFs < pos) nextFs = chunk.indexOf(FS, pos);
      return nextFs;
    };

    while (pos < len) {
      if (this.afterFs) {
        this.afterFs = false;
        if (chunk[pos] === CR) {
          pos++;
          continue;
        }
      }
      switch (this.state) {
        case State.Outside: {
          const vt = findVt();
          const end = vt === -1 ? len : vt;
          if (end > pos) this.addJunk(chunk.subarray(pos, end));
          if (vt === -1) {
            pos = len;
          } else {
            this.flushJunk(events);
            this.startFrame();
            pos = vt + 1;
          }
          break;
        }
        case State.InFrame:
        case State.Discarding: {
          const vt = findVt();
          const fs = findFs();
          let stop = len;
          if (vt !== -1) stop = vt;
          if (fs !== -1 && fs < stop) stop = fs;
          if (stop > pos) this.addFrameBytes(chunk.subarray(pos, stop), events);
          if (stop === len) {
            pos = len;
          } else if (stop === fs) {
            if (this.state === State.InFrame) {
              events.push({ kind: 'message', payload: this.takeFrame() });
            }
            this.resetFrame();
            this.state = State.Outside;
            this.afterFs = true;
            pos = fs + 1;
          } else {
            // VT inside a frame: abandon it and start a new one.
            if (this.state === State.InFrame) {
              events.push({ kind: 'truncated', payload: this.takeFrame() });
            }
            this.startFrame();
            pos = vt + 1;
          }
          break;
        }
      }
    }
    return events;
  }

  /**
   * Signals the end of the stream: reports a pending junk run and an
   * unfinished frame (as 'truncated'), then resets the decoder.
   */
  end(): MllpEvent[] {
    const events: MllpEvent[] = [];
    this.flushJunk(events);
    if (this.state === State.InFrame) events.push({ kind: 'truncated', payload: this.takeFrame() });
    this.resetFrame();
    this.state = State.Outside;
    this.afterFs = false;
    return events;
  }

  private startFrame(): void {
    this.resetFrame();
    this.state = State.InFrame;
  }

  private resetFrame(): void {
    this.chunks = [];
    this.frameBytes = 0;
  }

  private takeFrame(): Buffer {
    const out = Buffer.concat(this.chunks, this.frameBytes);
    this.chunks = [];
    return out;
  }

  private addFrameBytes(part: Buffer, events: MllpEvent[]): void {
    if (this.state === State.Discarding) {
      this.frameBytes += part.length;
      return;
    }
    const total = this.frameBytes + part.length;
    if (total <= this.max) {
      this.chunks.push(part);
      this.frameBytes = total;
      return;
    }
    // Limit crossed: keep only the head (a copy, so the big chunks are released).
    this.chunks.push(part);
    const headLen = Math.min(OVERSIZE_HEAD_BYTES, this.max);
    const head = Buffer.concat(this.chunks, headLen);
    events.push({ kind: 'oversize', head, bytes: total });
    this.chunks = [];
    this.frameBytes = total;
    this.state = State.Discarding;
  }

  private addJunk(part: Buffer): void {
    this.junkBytes += part.length;
    if (this.junkSampleBytes < JUNK_SAMPLE_BYTES) {
      const take = part.subarray(0, JUNK_SAMPLE_BYTES - this.junkSampleBytes);
      this.junkSample.push(Buffer.from(take));
      this.junkSampleBytes += take.length;
    }
  }

  private flushJunk(events: MllpEvent[]): void {
    if (this.junkBytes === 0) return;
    events.push({ kind: 'junk', bytes: this.junkBytes, sample: Buffer.concat(this.junkSample, this.junkSampleBytes) });
    this.junkBytes = 0;
    this.junkSample = [];
    this.junkSampleBytes = 0;
  }
}
