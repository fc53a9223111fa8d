/**
 * MIME multipart bodies (RFC 2046): the parts of a mail, a DSN or MDN report, an MTOM SOAP message.
 * Bodies can be tens of MiB: parsing scans with Buffer.indexOf and slices with subarray (no quadratic
 * work, no copies for binary parts).
 */
import { PfiError } from '../errors.js';

export interface MimePart {
  /** Without the angle brackets. */
  contentId?: string;
  contentType: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: Buffer;
}

export class MimeError extends PfiError {
  override name = 'MimeError';
  constructor(message: string) {
    super('mime', message);
  }
}

const CRLF = '\r\n';
/**
 * Parts of one multipart body: a mail, a report or an MTOM message has a handful. Without a cap, 60 MiB of
 * empty parts cost 36 s and 1.2 GB (measured); mailparser refuses past 1000 too.
 */
export const MAX_PARTS = 1000;

/** Media type and parameters of a Content-Type value (parameter names lower-cased, quotes removed). */
export function parseContentType(value: string): { type: string; params: Record<string, string> } {
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const params: Record<string, string> = {};
  // name=token or name="quoted \"string\"" (RFC 2045 / RFC 7231 grammar, tolerant of spaces around '=').
  const re = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (const m of (semi < 0 ? '' : value.slice(semi)).matchAll(re)) {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
  }
  return { type, params };
}

export const stripAngles = (id: string): string => id.trim().replace(/^<|>$/g, '');

function parseHeaders(block: string, index: number): Record<string, string> {
  const headers: Record<string, string> = {};
  // Unfold continuation lines (RFC 5322 §2.2.3) before splitting.
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split(CRLF)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MimeError(`MIME part ${index}: malformed header line "${line.slice(0, 80)}"`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

function decodeBase64(body: Buffer, index: number): Buffer {
  const text = body.toString('latin1').replace(/[\r\n\t ]+/g, '');
  // Buffer.from(…, 'base64') silently skips junk: check the alphabet so a corrupt part is an error.
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new MimeError(`MIME part ${index}: invalid base64 content`);
  }
  return Buffer.from(text, 'base64');
}

function decodeQuotedPrintable(body: Buffer): Buffer {
  const text = body.toString('latin1').replace(/=\r?\n/g, ''); // soft line breaks
  const out = Buffer.allocUnsafe(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const hex = c === 0x3d ? text.slice(i + 1, i + 3) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

/** A MIME body under its Content-Transfer-Encoding (absent: binary). Throws MimeError on an unknown one. */
export function decodeContent(body: Buffer, transferEncoding: string | undefined, index = 0): Buffer {
  const encoding = (transferEncoding ?? 'binary').toLowerCase();
  if (encoding === 'base64') return decodeBase64(body, index);
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  if (!['binary', '8bit', '7bit'].includes(encoding))
    throw new MimeError(`MIME part ${index}: unsupported Content-Transfer-Encoding "${encoding}"`);
  return body;
}

function decodePart(raw: Buffer, index: number): MimePart {
  let headerEnd: number;
  let bodyStart: number;
  if (raw.subarray(0, 2).toString('latin1') === CRLF) {
    headerEnd = 0; // a part without headers starts with the blank line
    bodyStart = 2;
  } else {
    headerEnd = raw.indexOf(CRLF + CRLF);
    if (headerEnd < 0) throw new MimeError(`MIME part ${index}: no blank line between headers and body`);
    bodyStart = headerEnd + 4;
  }
  const headers = parseHeaders(raw.subarray(0, headerEnd).toString('latin1'), index);
  const body = decodeContent(raw.subarray(bodyStart), headers['content-transfer-encoding'], index);
  const part: MimePart = { contentType: headers['content-type'] ?? 'text/plain; charset=us-ascii', headers, body };
  if (headers['content-id'] !== undefined) part.contentId = stripAngles(headers['content-id']);
  return part;
}

/**
 * Parses a multipart/related body (boundary from the Content-Type, quoted or not); decodes
 * Content-Transfer-Encoding base64 / quoted-printable; binary/8bit as is. Throws MimeError with a
 * precise message on a malformed body. `root` = the part named by the start parameter, else the first.
 */
export function parseMultipart(contentType: string, body: Buffer): { root: MimePart; parts: Map<string, MimePart> } {
  const { params } = parseContentType(contentType);
  const list = parseMultipartParts(contentType, body);

  const parts = new Map<string, MimePart>();
  for (const p of list) {
    if (p.contentId === undefined) continue;
    if (parts.has(p.contentId)) throw new MimeError(`duplicate Content-ID <${p.contentId}>`);
    parts.set(p.contentId, p);
  }
  let root = list[0]!;
  if (params.start) {
    const named = parts.get(stripAngles(params.start));
    if (!named) throw new MimeError(`start part <${stripAngles(params.start)}> not found`);
    root = named;
  }
  return { root, parts };
}

/**
 * Every part of a multipart body (any multipart subtype: related, mixed, report...), in order, parts
 * without a Content-ID included. Same framing rules (CRLF line ends), decoding and MimeError messages
 * as parseMultipart, which is built on it; at least one part on success.
 */
export function parseMultipartParts(contentType: string, body: Buffer): MimePart[] {
  const { type, params } = parseContentType(contentType);
  if (!type.startsWith('multipart/')) throw new MimeError(`Content-Type ${type || '(none)'} is not multipart`);
  const boundary = params.boundary;
  if (!boundary) throw new MimeError('no boundary parameter in the multipart Content-Type');
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const nextDelimiter = Buffer.from(`${CRLF}--${boundary}`, 'latin1');

  // The first delimiter opens the body or follows a preamble line.
  let at = body.subarray(0, delimiter.length).equals(delimiter) ? 0 : body.indexOf(nextDelimiter);
  if (at < 0) throw new MimeError(`boundary "${boundary}" not found in the body`);
  if (at > 0) at += 2;

  const list: MimePart[] = [];
  for (;;) {
    let cursor = at + delimiter.length;
    if (body[cursor] === 0x2d && body[cursor + 1] === 0x2d) break; // "--": close delimiter
    while (body[cursor] === 0x20 || body[cursor] === 0x09) cursor++; // transport padding
    if (body[cursor] !== 0x0d || body[cursor + 1] !== 0x0a) {
      throw new MimeError(
        cursor >= body.length
          ? 'no closing delimiter'
          : `MIME part ${list.length + 1}: boundary line not followed by CRLF`,
      );
    }
    cursor += 2;
    const end = body.indexOf(nextDelimiter, cursor);
    if (end < 0) throw new MimeError(`no closing delimiter (--${boundary}--) after MIME part ${list.length + 1}`);
    if (list.length >= MAX_PARTS) throw new MimeError(`more than ${MAX_PARTS} MIME parts`);
    list.push(decodePart(body.subarray(cursor, end), list.length + 1));
    at = end + 2;
  }
  if (list.length === 0) throw new MimeError('multipart body has no part');
  return list;
}
