/**
 * ER7 (pipe and hat) HL7 v2 message, parsed lazily.
 *
 * Segments are cut by scanning for line breaks and kept as substrings of the input (V8 slices, no copy);
 * a segment is split into fields only when one of its fields is read, and a field into repetitions,
 * components and subcomponents only along the path asked for. Untouched segments are written back exactly
 * as received, so a message that goes through the engine keeps its bytes (Z-segments, trailing empty
 * fields, odd spacing included); only the segment separators are normalised to \r.
 */
import { charsetFromMsh18, decodeBytes, encodeString, mshOffset, sniffMsh18, type Hl7Charset } from './charset.js';
import { Hl7ParseError } from './errors.js';
import { escape, unescape } from './escape.js';
import type { Delimiters } from './delimiters.js';

export { Hl7ParseError, type ErrorLocation } from './errors.js';

export { STANDARD_DELIMITERS, type Delimiters } from './delimiters.js';

export interface Hl7Path {
  segment: string;
  occurrence: number;
  field: number;
  repetition: number;
  component?: number;
  subcomponent?: number;
}

const PATH = /^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?[-.](\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?$/;

/** `SEG[occ]-field[rep].component.subcomponent`, all 1-based; occ and rep default to 1. */
export function parsePath(path: string): Hl7Path {
  const m = PATH.exec(path);
  const n = (s: string | undefined) => (s === undefined ? undefined : Number(s));
  const p = m && {
    segment: m[1]!,
    occurrence: n(m[2]) ?? 1,
    field: n(m[3])!,
    repetition: n(m[4]) ?? 1,
    component: n(m[5]),
    subcomponent: n(m[6]),
  };
  if (!p || [p.occurrence, p.field, p.repetition, p.component, p.subcomponent].some((x) => x === 0)) {
    throw new Error(`Invalid HL7 path: ${path}`);
  }
  return p;
}

/** The n-th (1-based) piece of s cut by sep, found with indexOf so that big values are not split whole. */
function piece(s: string, sep: string, n: number): string | undefined {
  let start = 0;
  for (let i = 1; i < n; i++) {
    const at = s.indexOf(sep, start);
    if (at < 0) return undefined;
    start = at + sep.length;
  }
  const end = s.indexOf(sep, start);
  return end < 0 ? s.slice(start) : s.slice(start, end);
}

function replacePiece(s: string, sep: string, n: number, value: string): string {
  const parts = s.split(sep);
  while (parts.length < n) parts.push('');
  parts[n - 1] = value;
  return parts.join(sep);
}

export class Hl7Segment {
  readonly name: string;
  readonly #d: Delimiters;
  /** As received; dropped once a field is set, then the segment is rebuilt from #parts. */
  #raw: string | undefined;
  /** raw.split(field separator): parts[0] is the name; for MSH, parts[1] is MSH-2. */
  #parts: string[] | undefined;
  /**
   * The repetitions of each field read so far, split once: reading repetition r by scanning from the
   * start made a field of n repetitions cost n² (a 16 KB PID-3 of `~` froze the engine for seconds).
   */
  readonly #repetitions = new Map<number, string[]>();

  constructor(raw: string, delimiters: Delimiters) {
    const end = raw.indexOf(delimiters.field);
    this.name = end < 0 ? raw : raw.slice(0, end);
    this.#raw = raw;
    this.#d = delimiters;
  }

  get #isMsh(): boolean {
    return this.name === 'MSH';
  }

  #split(): string[] {
    return (this.#parts ??= this.#raw!.split(this.#d.field));
  }

  /** MSH-1 is the field separator itself, so MSH fields are shifted by one. */
  #index(n: number): number {
    return this.#isMsh ? n - 1 : n;
  }

  get fieldCount(): number {
    const parts = this.#split();
    return this.#isMsh ? parts.length : parts.length - 1;
  }

  /** Raw (escaped) field n, all repetitions; undefined beyond the last field. */
  field(n: number): string | undefined {
    if (this.#isMsh && n === 1) return this.#d.field;
    return n >= 1 ? this.#split()[this.#index(n)] : undefined;
  }

  /** Raw value at field[rep].component.subcomponent; without component: the whole repetition. */
  value(field: number, repetition = 1, component?: number, subcomponent?: number): string | undefined {
    const f = this.field(field);
    if (f === undefined) return undefined;
    // MSH-1 and MSH-2 hold the delimiters themselves: never split them.
    if (this.#isMsh && field <= 2)
      return repetition === 1 && (component ?? 1) === 1 && (subcomponent ?? 1) === 1 ? f : undefined;
    const r = this.repetitionsOf(field)[repetition - 1];
    if (r === undefined || component === undefined) return r;
    const c = piece(r, this.#d.component, component);
    if (c === undefined || subcomponent === undefined) return c;
    return piece(c, this.#d.subcomponent, subcomponent);
  }

  /** The raw repetitions of field n (`[]` when absent; one empty string when empty), split once. */
  repetitionsOf(n: number): readonly string[] {
    let reps = this.#repetitions.get(n);
    if (!reps) {
      const f = this.field(n);
      reps = f === undefined ? [] : this.#isMsh && n <= 2 ? [f] : f.split(this.#d.repetition);
      this.#repetitions.set(n, reps);
    }
    return reps;
  }

  /** Sets a raw (already escaped) value, adding empty fields, repetitions or components as needed. */
  setValue(raw: string, field: number, repetition = 1, component?: number, subcomponent?: number): void {
    if (this.#isMsh && field <= 2) throw new Error('MSH-1 and MSH-2 (delimiters) cannot be set');
    const d = this.#d;
    const parts = this.#split();
    const i = this.#index(field);
    while (parts.length <= i) parts.push('');
    const f = parts[i]!;
    let v = raw;
    if (component !== undefined) {
      const r = piece(f, d.repetition, repetition) ?? '';
      if (subcomponent !== undefined)
        v = replacePiece(piece(r, d.component, component) ?? '', d.subcomponent, subcomponent, v);
      v = replacePiece(r, d.component, component, v);
    }
    parts[i] = replacePiece(f, d.repetition, repetition, v);
    this.#repetitions.delete(field);
    this.#raw = undefined;
  }

  /** True when the segment was changed since parsing. */
  get modified(): boolean {
    return this.#raw === undefined;
  }

  toString(): string {
    return this.#raw ?? this.#parts!.join(this.#d.field);
  }
}

export class Hl7Message {
  readonly delimiters: Delimiters;
  readonly charset: Hl7Charset;
  readonly #segments: Hl7Segment[];
  /** Separators after each segment, kept so that blank lines and the final CR round-trip. */
  readonly #trailers: string[];

  private constructor(delimiters: Delimiters, charset: Hl7Charset, segments: Hl7Segment[], trailers: string[]) {
    this.delimiters = delimiters;
    this.charset = charset;
    this.#segments = segments;
    this.#trailers = trailers;
  }

  /**
   * `charset` forces the decoding whatever MSH-18 says: used to read the header of a message whose
   * MSH-18 is unknown, so that its refusal can still name it.
   */
  static parse(input: Buffer | string, opts: { defaultCharset?: Hl7Charset; charset?: Hl7Charset } = {}): Hl7Message {
    const fallback = opts.defaultCharset ?? 'UNICODE UTF-8';
    let text: string;
    let charset: Hl7Charset | undefined = opts.charset;
    let msh18: string | undefined;
    if (typeof input === 'string') {
      text = input;
    } else {
      if (mshOffset(input) < 0) throw notMsh();
      // The charset must be known before decoding: read MSH-18 from the (ASCII) header bytes.
      if (!charset) {
        msh18 = sniffMsh18(input);
        charset = charsetFromMsh18(msh18, fallback);
        if (!charset) throw unknownCharset(msh18);
      }
      text = decodeBytes(input, charset);
    }
    const start = text.search(/\S/);
    if (start < 0 || !text.startsWith('MSH', start)) throw notMsh();
    const d = readDelimiters(text, start + 3);
    const { segments, trailers } = splitSegments(text, start, d);
    if (!charset) {
      msh18 = segments[0]!.field(18);
      charset = charsetFromMsh18(msh18, fallback);
      if (!charset) throw unknownCharset(msh18);
    }
    return new Hl7Message(d, charset, segments, trailers);
  }

  get segments(): readonly Hl7Segment[] {
    return this.#segments;
  }

  /** The occurrence-th (1-based) segment with this name. */
  segment(name: string, occurrence = 1): Hl7Segment | undefined {
    let seen = 0;
    for (const s of this.#segments) if (s.name === name && ++seen === occurrence) return s;
    return undefined;
  }

  segmentsNamed(name: string): Hl7Segment[] {
    return this.#segments.filter((s) => s.name === name);
  }

  /** Still-escaped value at path; undefined if absent, '' if present but empty. */
  getRaw(path: string): string | undefined {
    return this.#at(parsePath(path));
  }

  /** Decoded (unescaped) value at path, e.g. 'PID-3[2].4.2', 'OBX[2]-5.5'. */
  get(path: string): string | undefined {
    const p = parsePath(path);
    const raw = this.#at(p);
    // MSH-1 and MSH-2 are the delimiters themselves, not escaped text.
    if (raw === undefined || (p.segment === 'MSH' && p.field <= 2)) return raw;
    return unescape(raw, this.delimiters, this.charset);
  }

  #at(p: Hl7Path): string | undefined {
    return this.segment(p.segment, p.occurrence)?.value(p.field, p.repetition, p.component, p.subcomponent);
  }

  /** Escapes value and stores it at path; the segment must exist. */
  set(path: string, value: string): void {
    this.setRaw(path, escape(value, this.delimiters));
  }

  /** Stores an already-escaped value (may hold delimiters) at path; the segment must exist. */
  setRaw(path: string, raw: string): void {
    const p = parsePath(path);
    const seg = this.segment(p.segment, p.occurrence);
    if (!seg) throw new Error(`No segment ${p.segment}[${p.occurrence}] for ${path}`);
    seg.setValue(raw, p.field, p.repetition, p.component, p.subcomponent);
  }

  /** ER7 with \r segment separators. */
  toString(): string {
    let out = '';
    for (let i = 0; i < this.#segments.length; i++) out += this.#segments[i]!.toString() + this.#trailers[i]!;
    return out;
  }

  toBuffer(): Buffer {
    return encodeString(this.toString(), this.charset);
  }
}

function notMsh(): Hl7ParseError {
  return new Hl7ParseError('Not an HL7 v2 message: MSH segment expected first', 100, { segment: 'MSH', sequence: 1 });
}

function unknownCharset(value: string | undefined): Hl7ParseError {
  return new Hl7ParseError(`Unsupported character set in MSH-18: '${value}'`, 103, {
    segment: 'MSH',
    sequence: 1,
    field: 18,
  });
}

/** MSH-1 and MSH-2, at offset at (just after 'MSH'). */
function readDelimiters(text: string, at: number): Delimiters {
  const field = text[at];
  if (!field || /[\sA-Za-z0-9]/.test(field)) {
    throw new Hl7ParseError('Invalid field separator (MSH-1)', 102, { segment: 'MSH', sequence: 1, field: 1 });
  }
  let end = at + 1;
  while (end < text.length && end < at + 7 && !'\r\n'.includes(text[end]!) && text[end] !== field) end++;
  const enc = text.slice(at + 1, end);
  const chars = [field, ...enc];
  if (enc.length < 4 || enc.length > 5 || new Set(chars).size !== chars.length || /[\sA-Za-z0-9]/.test(enc)) {
    throw new Hl7ParseError(`Invalid encoding characters (MSH-2): '${enc}'`, 102, {
      segment: 'MSH',
      sequence: 1,
      field: 2,
    });
  }
  const d: Delimiters = { field, component: enc[0]!, repetition: enc[1]!, escape: enc[2]!, subcomponent: enc[3]! };
  if (enc[4]) d.truncation = enc[4];
  return d;
}

/** Cuts segments at \r, \n or \r\n; blank lines and the final terminator are kept as the previous segment's trailer. */
function splitSegments(text: string, start: number, d: Delimiters): { segments: Hl7Segment[]; trailers: string[] } {
  const segments: Hl7Segment[] = [];
  const trailers: string[] = [];
  const add = (raw: string, trailer: string) => {
    if (segments.length && !/\S/.test(raw)) trailers[trailers.length - 1] += raw + trailer;
    else {
      segments.push(new Hl7Segment(raw, d));
      trailers.push(trailer);
    }
  };
  const re = /[\r\n]+/g;
  re.lastIndex = start;
  let pos = start;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    add(text.slice(pos, m.index), m[0].replace(/\r?\n/g, '\r'));
    pos = re.lastIndex;
  }
  if (pos < text.length) add(text.slice(pos), '');
  return { segments, trailers };
}
