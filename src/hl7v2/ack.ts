/**
 * Technical acknowledgement (original mode ACK) as the CI-SIS volet "Transmission de document(s) CDA en HL7v2"
 * specifies it (profils-messages, "Le message d'acquittement du message HL7v2"):
 * - MSH-3/4 of the ACK = MSH-5/6 of the message, MSH-5/6 = its MSH-3/4; MSH-11 copied;
 *   MSH-9 = ACK^<event>^ACK; MSH-12 = the message's version; MSH-17 = FRA; MSH-18 = UNICODE UTF-8 or 8859/15;
 * - MSA-1 AA / AE / AR, MSA-2 = MSH-10 of the message;
 * - ERR when MSA-1 is AE or AR: ERR-2 location (ERL, O), ERR-3 code from HL7 table 0357 (CWE, R),
 *   ERR-4 severity from HL7 table 0516 (ID, R). ERR-8 (user message, optional in HL7) carries our free text.
 */
import { charsetFromMsh18, encodeString, type Hl7Charset } from './charset.js';
import { ERROR_TEXT, type ErrorCode, type ErrorLocation } from './errors.js';
import { escape } from './escape.js';
import type { MshHeader } from './header.js';
import { STANDARD_DELIMITERS, type Delimiters, type Hl7Message } from './message.js';

export { ERROR_TEXT, type ErrorCode } from './errors.js';

export type AckCode = 'AA' | 'AE' | 'AR';

export interface AckError {
  code: ErrorCode;
  /** Free text for ERR-8 (user message). */
  text?: string;
  location?: ErrorLocation;
  /** HL7 table 0516; E by default. */
  severity?: 'E' | 'W' | 'I' | 'F';
}

export interface AckOptions {
  code: AckCode;
  /** MSA-3 */
  text?: string;
  errors?: AckError[];
  /** New unique MSH-10 of the ACK. */
  controlId: string;
  now?: Date;
  /** Charset when the message gave none we know (or was not HL7 at all). */
  fallbackCharset?: Hl7Charset;
  /** Version when the payload was not HL7 at all; 2.5 by default. */
  fallbackVersion?: string;
}

/**
 * ER7 of the ACK (with \r separators and a final \r). `original` is undefined when the payload was not HL7:
 * then MSH-3..6 and MSA-2 are empty. We always emit the standard delimiters |^~\&; raw values copied from a
 * message with other delimiters are translated.
 */
export function buildAck(original: MshHeader | undefined, opts: AckOptions): string {
  const d = STANDARD_DELIMITERS;
  const from = original && delimitersOf(original);
  const copy = (raw: string | undefined) => (raw && from ? translate(raw, from, d) : '');
  const esc = (text: string | undefined) => escape(text ?? '', d);
  const charset = ackCharset(original, opts);
  const event = original?.triggerEvent;

  const msh = [
    'MSH',
    '^~\\&',
    copy(original?.receivingApplication),
    copy(original?.receivingFacility),
    copy(original?.sendingApplication),
    copy(original?.sendingFacility),
    hl7Timestamp(opts.now ?? new Date()),
    '',
    event ? `ACK^${esc(event)}^ACK` : 'ACK',
    esc(opts.controlId),
    copy(original?.processingId) || 'P',
    copy(original?.versionRaw) || esc(opts.fallbackVersion ?? '2.5'),
    '',
    '',
    '',
    '',
    copy(original?.countryCode),
    // Echo the sender's own spelling, unless we could not read it: then say what we actually used.
    original && charsetFromMsh18(original.charsetRaw, charset) ? copy(original.charsetRaw) : charset,
  ];
  const segments = [trimEnd(msh), trimEnd(['MSA', opts.code, esc(original?.controlId), esc(opts.text)])];
  for (const e of opts.errors ?? []) {
    segments.push(
      trimEnd([
        'ERR',
        '',
        erl(e.location),
        `${e.code}^${esc(ERROR_TEXT[e.code])}^HL70357`,
        e.severity ?? 'E',
        '',
        '',
        '',
        esc(e.text),
      ]),
    );
  }
  return segments.map((s) => s + '\r').join('');
}

/** The ACK encoded in its MSH-18 charset (the charset of the message it acknowledges). */
export function ackBytes(original: MshHeader | undefined, opts: AckOptions): Buffer {
  return encodeString(buildAck(original, opts), ackCharset(original, opts));
}

export function ackCharset(original: MshHeader | undefined, opts: Pick<AckOptions, 'fallbackCharset'>): Hl7Charset {
  const fallback = opts.fallbackCharset ?? 'UNICODE UTF-8';
  return (original && charsetFromMsh18(original.charsetRaw, fallback)) ?? fallback;
}

export interface AckReading {
  code: string;
  /** MSA-2 */
  controlId: string;
  /** MSA-3 */
  text?: string;
  errors: { code?: string; text?: string; location?: string }[];
}

/** Reads an ACK received from a peer (v2.5+ ERR, or v2.3/2.4 ERR-1 ELD 'SEG^seq^field^code&text'). */
export function readAck(msg: Hl7Message): AckReading {
  const text = msg.get('MSA-3');
  const errors = msg.segmentsNamed('ERR').map((_, i) => {
    const at = (path: string) => msg.get(`ERR[${i + 1}]-${path}`) || undefined;
    const eld = msg.getRaw(`ERR[${i + 1}]-1`);
    const location =
      msg.getRaw(`ERR[${i + 1}]-2`) || (eld ? eld.split(msg.delimiters.component).slice(0, 3).join('^') : undefined);
    return {
      code: at('3.1') ?? at('1.4.1'),
      text: at('8') ?? at('3.2') ?? at('1.4.2'),
      location: location || undefined,
    };
  });
  return { code: msg.get('MSA-1') ?? '', controlId: msg.get('MSA-2') ?? '', ...(text ? { text } : {}), errors };
}

/** ERL: SEG^sequence^field^repetition^component^subcomponent; the sequence defaults to 1. */
function erl(loc: ErrorLocation | undefined): string {
  if (!loc) return '';
  const n = (x: number | undefined) => (x === undefined ? '' : String(x));
  return trimEnd(
    [
      escape(loc.segment, STANDARD_DELIMITERS),
      n(loc.sequence ?? 1),
      n(loc.field),
      n(loc.repetition),
      n(loc.component),
      n(loc.subcomponent),
    ],
    '^',
  );
}

/** Drops trailing empty fields, then joins. */
function trimEnd(fields: string[], sep = '|'): string {
  let n = fields.length;
  while (n > 1 && fields[n - 1] === '') n--;
  return fields.slice(0, n).join(sep);
}

/** YYYYMMDDHHMMSS, local time (HL7 TS without offset). */
export function hl7Timestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const date = `${p(d.getFullYear(), 4)}${p(d.getMonth() + 1)}${p(d.getDate())}`;
  return `${date}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function delimitersOf(h: MshHeader): Delimiters {
  const e = h.encodingChars;
  if (h.fieldSep.length !== 1 || e.length < 4) return STANDARD_DELIMITERS;
  const d: Delimiters = { field: h.fieldSep, component: e[0]!, repetition: e[1]!, escape: e[2]!, subcomponent: e[3]! };
  if (e[4]) d.truncation = e[4];
  return d;
}

/** Re-expresses a raw value written with `from` delimiters using `to` delimiters (structure kept, literals escaped). */
export function translate(raw: string, from: Delimiters, to: Delimiters): string {
  if (
    from.component === to.component &&
    from.repetition === to.repetition &&
    from.escape === to.escape &&
    from.subcomponent === to.subcomponent &&
    from.field === to.field &&
    from.truncation === to.truncation
  )
    return raw;
  const map = new Map<string, string>([
    [from.component, to.component],
    [from.repetition, to.repetition],
    [from.subcomponent, to.subcomponent],
    [from.escape, to.escape],
  ]);
  let out = '';
  for (const c of raw) out += map.get(c) ?? escape(c, to);
  return out;
}
