/**
 * Report mails of the MSSanté mailbox: delivery status notifications (DSN, RFC 3461-3464, RFC 6533 for
 * the "global" UTF-8 variants) written by the mail system, and message disposition notifications (MDN,
 * RFC 8098, read receipts) written by the recipients' software.
 *
 * The input is a whole raw message already bounded in size by the caller. Nothing here throws anything
 * but ReportError: a malformed report says precisely what is wrong with it, a mail that is not a report
 * is `{ kind: 'other' }`.
 */
import { MimeError, parseContentType, parseMultipartParts, type MimePart } from '../mime/multipart.js';
import { PfiError } from '../errors.js';

export interface DsnRecipient {
  /** Address only (the address type, e.g. 'rfc822;', and angle brackets are removed). */
  finalRecipient: string;
  originalRecipient?: string;
  action: 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';
  /** Enhanced status code (RFC 3463), e.g. '5.1.1'. */
  status: string;
  /** Diagnostic-Code without its type, e.g. '550 5.1.1 <x@y>: Recipient address rejected: ...'. */
  diagnostic?: string;
  /** The 3-digit SMTP reply code opening the diagnostic (550), when there is one; never guessed from the status. */
  smtpCode?: number;
}

export type Report =
  | { kind: 'dsn'; envelopeId?: string; originalMessageId?: string; reportingMta?: string; recipients: DsnRecipient[] }
  | {
      kind: 'mdn';
      originalMessageId?: string;
      finalRecipient?: string;
      originalRecipient?: string;
      /** 'manual-action/MDN-sent-manually; displayed' -> mode 'manual-action/MDN-sent-manually', type 'displayed'. */
      disposition: { mode: string; type: string; modifiers?: string[] };
      reportingUa?: string;
      /** Address of the From of the MDN mail. */
      from?: string;
    }
  | { kind: 'other' };

/** A report that cannot be read; the message says why. */
export class ReportError extends PfiError {
  override name = 'ReportError';
  constructor(message: string, options?: ErrorOptions) {
    super('report', message, options);
  }
}

const ACTIONS = new Set(['failed', 'delayed', 'delivered', 'relayed', 'expanded']);
/** Top-level header fields whose value is structured and must not be touched by RFC 2047 decoding. */
const RAW_FIELDS = new Set([
  'content-type',
  'content-transfer-encoding',
  'content-id',
  'message-id',
  'in-reply-to',
  'references',
  'mime-version',
]);
/** How deep a multipart/report is looked for inside multipart/mixed wrappers (added disclaimers...). */
const MAX_NESTING = 3;

// ---------------------------------------------------------------------------------------------------
// Text helpers

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 when the bytes are valid UTF-8 (RFC 6532 headers, RFC 6533 global reports), else Latin-1. */
function bytesToText(bytes: Buffer): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/** Every line end as CRLF (a mail saved with LF line ends, or mixed), byte for byte otherwise. */
function toCrlf(raw: Buffer): Buffer {
  let bare = false;
  for (let i = raw.indexOf(0x0a); i >= 0; i = raw.indexOf(0x0a, i + 1)) {
    if (i === 0 || raw[i - 1] !== 0x0d) {
      bare = true;
      break;
    }
  }
  if (!bare) return raw;
  return Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/**
 * Splits a message (or a MIME entity) into its header block and its body at the first empty line,
 * CRLF or LF. No empty line: all header, empty body.
 */
function splitEntity(raw: Buffer): { head: Buffer; body: Buffer } {
  let lineStart = 0;
  while (lineStart < raw.length) {
    const nl = raw.indexOf(0x0a, lineStart);
    const lineEnd = nl < 0 ? raw.length : nl;
    const contentEnd = lineEnd > lineStart && raw[lineEnd - 1] === 0x0d ? lineEnd - 1 : lineEnd;
    if (contentEnd === lineStart && nl >= 0) {
      return { head: raw.subarray(0, lineStart), body: raw.subarray(nl + 1) };
    }
    if (nl < 0) break;
    lineStart = nl + 1;
  }
  return { head: raw, body: raw.subarray(raw.length) };
}

/**
 * Header fields of a block, in order, names lower-cased, folded lines unfolded (the line break and the
 * folding white space become one space). Lines that are neither a field nor a continuation (an mbox
 * "From " line, junk) are skipped.
 */
function parseFields(text: string): { name: string; value: string }[] {
  const fields: { name: string; value: string }[] = [];
  let current: { name: string; value: string } | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    if (line[0] === ' ' || line[0] === '\t') {
      if (current) current.value += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    // A field name is printable ASCII without space or colon (RFC 5322 §3.6.8).
    if (colon <= 0 || !/^[\x21-\x39\x3b-\x7e]+$/.test(line.slice(0, colon).trimEnd())) {
      current = undefined;
      continue;
    }
    current = { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() };
    fields.push(current);
  }
  return fields;
}

/** First occurrence of each field (names lower-cased). */
function firstOf(fields: { name: string; value: string }[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const f of fields) if (!map.has(f.name)) map.set(f.name, f.value);
  return map;
}

function decodeCharset(bytes: Buffer, charset: string): string | undefined {
  const label = charset.replace(/\*.*$/, '').trim().toLowerCase(); // RFC 2231 language suffix
  try {
    return new TextDecoder(label).decode(bytes);
  } catch {
    return undefined; // a charset Node does not know
  }
}

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

/**
 * Decodes the RFC 2047 encoded words of an unstructured value. Adjacent encoded words separated only by
 * white space are joined (their bytes are concatenated before decoding, so a character split between
 * two words survives). An encoded word that cannot be decoded is left as written.
 */
export function decodeEncodedWords(value: string): string {
  if (!value.includes('=?')) return value;
  let out = '';
  let last = 0;
  let pending: { charset: string; bytes: Buffer[]; raw: string } | undefined;
  const flush = (): void => {
    if (!pending) return;
    const text = decodeCharset(Buffer.concat(pending.bytes), pending.charset);
    out += text ?? pending.raw;
    pending = undefined;
  };
  for (const m of value.matchAll(ENCODED_WORD)) {
    const gap = value.slice(last, m.index);
    const charset = m[1]!;
    const encoding = m[2]!.toUpperCase();
    const payload = m[3]!;
    let bytes: Buffer;
    if (encoding === 'B') {
      bytes = Buffer.from(payload, 'base64');
    } else {
      const q = payload.replace(/_/g, ' ');
      const arr: number[] = [];
      for (let i = 0; i < q.length; i++) {
        const hex = q[i] === '=' ? q.slice(i + 1, i + 3) : '';
        if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
          arr.push(parseInt(hex, 16));
          i += 2;
        } else {
          arr.push(q.charCodeAt(i) & 0xff);
        }
      }
      bytes = Buffer.from(arr);
    }
    if (pending && /^\s*$/.test(gap)) {
      if (pending.charset.toLowerCase() === charset.toLowerCase()) {
        pending.bytes.push(bytes);
        pending.raw += gap + m[0];
      } else {
        flush();
        pending = { charset, bytes: [bytes], raw: m[0] };
      }
    } else {
      flush();
      out += gap;
      pending = { charset, bytes: [bytes], raw: m[0] };
    }
    last = m.index + m[0].length;
  }
  flush();
  return out + value.slice(last);
}

/** Removes RFC 5322 comments "(...)" (nested, with quoted-pairs), outside quoted strings. */
function stripComments(value: string): string {
  if (!value.includes('(')) return value;
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && (depth > 0 || quoted)) {
      if (depth === 0) out += c + (value[i + 1] ?? '');
      i++;
    } else if (quoted) {
      out += c;
      if (c === '"') quoted = false;
    } else if (c === '(') {
      depth++;
    } else if (c === ')' && depth > 0) {
      depth--;
    } else if (depth === 0) {
      if (c === '"') quoted = true;
      out += c;
    }
  }
  return out;
}

/**
 * The address of a typed address field ('rfc822; <a@b>', 'rfc822;a@b', 'utf-8; a\x{E9}@b', or an
 * address without type), angle brackets removed. undefined when nothing is left.
 */
function typedAddress(value: string): string | undefined {
  const semi = value.indexOf(';');
  const type = semi >= 0 ? value.slice(0, semi).trim().toLowerCase() : '';
  let addr = stripComments(semi >= 0 ? value.slice(semi + 1) : value).trim();
  const angle = /<([^<>]*)>/.exec(addr);
  if (angle) addr = angle[1]!.trim();
  else addr = addr.split(/\s+/)[0] ?? '';
  if (type === 'utf-8') {
    // RFC 6533 §3: non-ASCII characters may be written \x{HEX} (unitext / utf-8-addr-xtext).
    addr = addr.replace(/\\x\{([0-9A-Fa-f]{1,6})\}/g, (all, hex: string) => {
      const cp = parseInt(hex, 16);
      return cp <= 0x10ffff ? String.fromCodePoint(cp) : all;
    });
  }
  return addr === '' ? undefined : addr;
}

/** The value of a 'type; value' field without its type (Reporting-MTA: 'dns; mx.example' -> 'mx.example'). */
function untyped(value: string): string | undefined {
  const semi = value.indexOf(';');
  const v = (semi >= 0 ? value.slice(semi + 1) : value).trim();
  return v === '' ? undefined : v;
}

/** The first msg-id of a Message-ID-like value, as '<left@right>' (brackets added when the sender omitted them). */
function messageIdOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = stripComments(value).trim();
  const angle = /<([^<>\s]+)>/.exec(v);
  if (angle) return `<${angle[1]}>`;
  const token = v.split(/\s+/)[0];
  return token ? `<${token.replace(/^<|>$/g, '')}>` : undefined;
}

/** The address of a From value ('"Dr X" <x@y>' -> 'x@y', 'x@y (Dr X)' -> 'x@y'). */
function addressOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = stripComments(value).trim();
  const angle = /<([^<>]*)>\s*$/.exec(v) ?? /<([^<>]*)>/.exec(v);
  const addr = angle ? angle[1]!.trim() : (v.split(/[\s,]+/)[0] ?? '');
  return addr === '' ? undefined : addr;
}

// ---------------------------------------------------------------------------------------------------
// Public API

/**
 * The top-level header fields of a raw message, for correlation (Message-ID, In-Reply-To, References,
 * From, Subject, Content-Type...). Keys are the field names lower-cased ('message-id'); folded lines are
 * unfolded; when a field occurs more than once the first occurrence is kept. Values are decoded as UTF-8
 * when valid (RFC 6532), else Latin-1, and the RFC 2047 encoded words of all fields but the structured
 * ones (Content-*, MIME-Version, Message-ID, In-Reply-To, References) are decoded. Never throws.
 */
export function readHeaders(raw: Buffer): Map<string, string> {
  const { head } = splitEntity(raw);
  const map = new Map<string, string>();
  for (const f of parseFields(bytesToText(head))) {
    if (map.has(f.name)) continue;
    map.set(f.name, RAW_FIELDS.has(f.name) ? f.value : decodeEncodedWords(f.value));
  }
  return map;
}

/**
 * Reads a raw RFC 5322 message (bounded by the caller) and tells whether it is a DSN, an MDN, or
 * another mail. Throws ReportError (only) for a report that cannot be read.
 *
 * - A report is a multipart/report, at the top level or (up to 3 levels) inside multipart/mixed
 *   wrappers; its report-type parameter picks DSN or MDN, or, when it is missing, the parts present.
 *   Other report types (feedback-report, tlsrpt...) are 'other'.
 * - DSN: per-message fields (Original-Envelope-Id -> envelopeId, Reporting-MTA -> reportingMta without
 *   its 'dns;' type) and one DsnRecipient per per-recipient block; originalMessageId is the Message-ID
 *   of the returned headers part (text/rfc822-headers, message/rfc822 or their RFC 6533 global forms).
 * - MDN: Original-Message-ID field (else, as a fallback, the Message-ID of the returned headers part),
 *   Final-/Original-Recipient, Disposition, Reporting-UA as written, and the address of the mail's From.
 * - Message-IDs are returned as '<left@right>', as in the Message-ID header field.
 */
export function parseReport(raw: Buffer): Report {
  try {
    return parseReportInner(raw);
  } catch (err) {
    if (err instanceof ReportError) throw err;
    if (err instanceof MimeError) throw new ReportError(`malformed MIME structure: ${err.message}`, { cause: err });
    // Not expected: the parser is written not to throw anything else. Kept so that a bug here cannot
    // crash the mailbox watcher; the cause is kept for diagnosis.
    throw new ReportError(`unreadable report (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}

function parseReportInner(raw: Buffer): Report {
  const { head, body } = splitEntity(raw);
  const headers = firstOf(parseFields(bytesToText(head)));
  const report = findReport(headers.get('content-type'), () => toCrlf(body), 0);
  if (!report) return { kind: 'other' };

  const reportType = (report.reportType ?? '').toLowerCase();
  const typeOf = (p: MimePart): string => parseContentType(p.contentType).type;
  const dsnPart = report.parts.find((p) =>
    ['message/delivery-status', 'message/global-delivery-status'].includes(typeOf(p)),
  );
  const mdnPart = report.parts.find((p) =>
    ['message/disposition-notification', 'message/global-disposition-notification'].includes(typeOf(p)),
  );
  const returned = report.parts.find((p) =>
    ['text/rfc822-headers', 'message/rfc822', 'message/global', 'message/global-headers'].includes(typeOf(p)),
  );

  let kind: 'dsn' | 'mdn';
  if (reportType === 'delivery-status') {
    if (!dsnPart)
      throw new ReportError('multipart/report with report-type=delivery-status has no message/delivery-status part');
    kind = 'dsn';
  } else if (reportType === 'disposition-notification') {
    if (!mdnPart) {
      throw new ReportError(
        'multipart/report with report-type=disposition-notification has no message/disposition-notification part',
      );
    }
    kind = 'mdn';
  } else if (reportType === '') {
    if (dsnPart) kind = 'dsn';
    else if (mdnPart) kind = 'mdn';
    else
      throw new ReportError(
        'multipart/report without report-type and without a delivery-status or disposition-notification part',
      );
  } else {
    return { kind: 'other' }; // another kind of report (ARF feedback, TLS report...): not ours to read
  }

  const returnedMessageId = returned ? messageIdOf(returnedHeaders(returned).get('message-id')) : undefined;
  if (kind === 'dsn') return readDsn(dsnPart!, returnedMessageId);
  return readMdn(mdnPart!, returnedMessageId, headers.get('from'));
}

/** The parts of the multipart/report found from a Content-Type, or undefined when the mail is no report. */
function findReport(
  contentType: string | undefined,
  body: () => Buffer,
  depth: number,
): { reportType?: string; parts: MimePart[] } | undefined {
  if (contentType === undefined) return undefined;
  const { type, params } = parseContentType(contentType);
  if (type === 'multipart/report') {
    const parts = parseMultipartParts(contentType, body());
    return params['report-type'] !== undefined ? { reportType: params['report-type'], parts } : { parts };
  }
  if (type !== 'multipart/mixed' || depth >= MAX_NESTING) return undefined;
  let parts: MimePart[];
  try {
    parts = parseMultipartParts(contentType, body());
  } catch {
    return undefined; // a broken ordinary mail is still no report
  }
  for (const p of parts) {
    const found = findReport(p.contentType, () => toCrlf(p.body), depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** The header fields of a returned-content part (the headers of the original message). */
function returnedHeaders(part: MimePart): Map<string, string> {
  const type = parseContentType(part.contentType).type;
  // text/rfc822-headers holds the header block only; message/rfc822 a whole message.
  const block =
    type === 'text/rfc822-headers' || type === 'message/global-headers' ? part.body : splitEntity(part.body).head;
  return firstOf(parseFields(bytesToText(block)));
}

/** The field groups of a delivery-status / disposition-notification body, split on empty lines. */
function fieldGroups(part: MimePart): { name: string; value: string }[][] {
  const text = bytesToText(part.body).replace(/\r\n?/g, '\n');
  const groups: { name: string; value: string }[][] = [];
  // A line of white space only also separates groups (some MTAs write one instead of an empty line).
  for (const block of text.split(/\n[ \t]*\n/)) {
    const fields = parseFields(block);
    if (fields.length > 0) groups.push(fields);
  }
  return groups;
}

function readDsn(part: MimePart, originalMessageId: string | undefined): Report {
  const groups = fieldGroups(part).map(firstOf);
  if (groups.length === 0) throw new ReportError('the delivery-status part is empty');
  // The per-message group comes first; an MTA that omits it starts with a recipient group.
  const isRecipient = (g: Map<string, string>): boolean =>
    g.has('final-recipient') || g.has('action') || g.has('status');
  const perMessage = isRecipient(groups[0]!) ? new Map<string, string>() : groups[0]!;
  const recipientGroups = groups.filter(isRecipient);
  if (recipientGroups.length === 0) throw new ReportError('the delivery-status part has no per-recipient fields');

  const recipients = recipientGroups.map((g, i) => readRecipient(g, i + 1));
  const report: Extract<Report, { kind: 'dsn' }> = { kind: 'dsn', recipients };
  // As written: xtext (RFC 3461 §4) is not decoded, comments are not stripped (an ENVID may hold '(').
  const envid = perMessage.get('original-envelope-id')?.trim();
  if (envid) report.envelopeId = envid;
  const mta = perMessage.get('reporting-mta');
  const reportingMta = mta ? untyped(stripComments(mta)) : undefined;
  if (reportingMta) report.reportingMta = reportingMta;
  if (originalMessageId) report.originalMessageId = originalMessageId;
  return report;
}

function readRecipient(g: Map<string, string>, n: number): DsnRecipient {
  const finalField = g.get('final-recipient');
  if (finalField === undefined) throw new ReportError(`recipient block ${n}: no Final-Recipient field`);
  const finalRecipient = typedAddress(finalField);
  if (finalRecipient === undefined) throw new ReportError(`recipient block ${n}: empty Final-Recipient`);
  const who = `recipient block ${n} (${finalRecipient})`;

  const actionField = g.get('action');
  if (actionField === undefined) throw new ReportError(`${who}: no Action field`);
  const action = stripComments(actionField).trim().toLowerCase();
  if (!ACTIONS.has(action)) throw new ReportError(`${who}: unknown Action "${action.slice(0, 40)}"`);

  const statusField = g.get('status');
  if (statusField === undefined) throw new ReportError(`${who}: no Status field`);
  const status = /^\s*([245]\.\d{1,3}\.\d{1,3})(?!\d)/.exec(stripComments(statusField));
  if (!status) throw new ReportError(`${who}: malformed Status "${statusField.slice(0, 40)}"`);

  const r: DsnRecipient = { finalRecipient, action: action as DsnRecipient['action'], status: status[1]! };
  const orig = g.get('original-recipient');
  const originalRecipient = orig === undefined ? undefined : typedAddress(orig);
  if (originalRecipient) r.originalRecipient = originalRecipient;
  const diag = g.get('diagnostic-code');
  if (diag !== undefined) {
    const diagnostic = untyped(diag);
    if (diagnostic) {
      r.diagnostic = diagnostic;
      const code = /^([2-5]\d\d)(?![\d.])/.exec(diagnostic);
      if (code) r.smtpCode = Number(code[1]);
    }
  }
  return r;
}

function readMdn(part: MimePart, returnedMessageId: string | undefined, fromField: string | undefined): Report {
  const fields = firstOf(fieldGroups(part).flat());
  const dispField = fields.get('disposition');
  if (dispField === undefined) throw new ReportError('the disposition-notification part has no Disposition field');
  const disposition = parseDisposition(dispField);

  const report: Extract<Report, { kind: 'mdn' }> = { kind: 'mdn', disposition };
  const originalMessageId = messageIdOf(fields.get('original-message-id')) ?? returnedMessageId;
  if (originalMessageId) report.originalMessageId = originalMessageId;
  const finalField = fields.get('final-recipient');
  const finalRecipient = finalField === undefined ? undefined : typedAddress(finalField);
  if (finalRecipient) report.finalRecipient = finalRecipient;
  const origField = fields.get('original-recipient');
  const originalRecipient = origField === undefined ? undefined : typedAddress(origField);
  if (originalRecipient) report.originalRecipient = originalRecipient;
  const ua = fields.get('reporting-ua');
  if (ua) report.reportingUa = decodeEncodedWords(ua);
  const from = addressOf(fromField === undefined ? undefined : decodeEncodedWords(fromField));
  if (from) report.from = from;
  return report;
}

/**
 * 'manual-action/MDN-sent-manually; displayed' or 'automatic-action/MDN-sent-automatically;
 * processed/error' (RFC 8098 §3.2.6). Type and modifiers lower-cased; the mode as written, without spaces.
 */
function parseDisposition(value: string): { mode: string; type: string; modifiers?: string[] } {
  const v = stripComments(value);
  const semi = v.indexOf(';');
  if (semi < 0) throw new ReportError(`malformed Disposition "${value.slice(0, 80)}": no ';' between mode and type`);
  const mode = v.slice(0, semi).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9-]+\/[A-Za-z0-9-]+$/.test(mode))
    throw new ReportError(`malformed Disposition mode "${mode.slice(0, 60)}"`);
  const rest = v.slice(semi + 1);
  const slash = rest.indexOf('/');
  const type = (slash < 0 ? rest : rest.slice(0, slash)).trim().toLowerCase();
  if (!/^[a-z0-9-]+$/.test(type)) throw new ReportError(`malformed Disposition type "${type.slice(0, 60)}"`);
  const result: { mode: string; type: string; modifiers?: string[] } = { mode, type };
  if (slash >= 0) {
    const modifiers = rest
      .slice(slash + 1)
      .split(',')
      .map((m) => m.trim().toLowerCase())
      .filter((m) => m !== '');
    if (modifiers.length > 0) result.modifiers = modifiers;
  }
  return result;
}
