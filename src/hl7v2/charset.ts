/**
 * Character sets of HL7 table 0211 (MSH-18) that the CI-SIS volets use.
 * The volets allow 'UNICODE UTF-8' and '8859/15'; '8859/1' and 'ASCII' are still sent by older systems.
 */
import iconv from 'iconv-lite';

export type Hl7Charset = 'UNICODE UTF-8' | '8859/1' | '8859/15' | 'ASCII';

/** Spellings seen in the field, keyed by their normalised form (upper case, no spaces, '_', '-' or '/'). */
const ALIASES: Record<string, Hl7Charset> = {
  UNICODEUTF8: 'UNICODE UTF-8',
  UTF8: 'UNICODE UTF-8',
  '88591': '8859/1',
  ISO88591: '8859/1',
  ISOIR100: '8859/1',
  LATIN1: '8859/1',
  '885915': '8859/15',
  ISO885915: '8859/15',
  LATIN9: '8859/15',
  ASCII: 'ASCII',
  USASCII: 'ASCII',
};

/** MSH-18 value -> charset; empty/undefined -> fallback; unknown -> undefined (the caller rejects: 0357 code 103). */
export function charsetFromMsh18(value: string | undefined, fallback: Hl7Charset): Hl7Charset | undefined {
  // MSH-18 may repeat: the first repetition is the message's default character set.
  const first = (value ?? '').split('~')[0]!.trim();
  if (first === '') return fallback;
  return ALIASES[first.toUpperCase().replace(/[\s_\-/]/g, '')];
}

export function decodeBytes(buf: Buffer, charset: Hl7Charset): string {
  switch (charset) {
    case 'UNICODE UTF-8':
      return buf.toString('utf8');
    case '8859/15':
      return iconv.decode(buf, 'iso-8859-15', { stripBOM: false });
    default:
      // ASCII is read as Latin-1 on purpose: lenient with 8-bit senders, and lossless (one byte = one char).
      return buf.toString('latin1');
  }
}

export function encodeString(text: string, charset: Hl7Charset): Buffer {
  switch (charset) {
    case 'UNICODE UTF-8':
      return Buffer.from(text, 'utf8');
    case '8859/15':
      return iconv.encode(text, 'iso-8859-15');
    default:
      // iconv (not Buffer 'latin1') so that a char outside Latin-1 becomes '?' instead of a wrong byte.
      return iconv.encode(text, 'latin1');
  }
}

const isBlank = (b: number) => b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a;

/** Offset of 'MSH' after optional leading blanks and UTF-8 BOM, or -1. */
export function mshOffset(buf: Buffer): number {
  let i = 0;
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) i = 3;
  while (i < buf.length && isBlank(buf[i]!)) i++;
  return buf[i] === 0x4d && buf[i + 1] === 0x53 && buf[i + 2] === 0x48 ? i : -1;
}

/**
 * Read raw MSH-18 straight from the bytes (the MSH segment is ASCII whatever the charset), without decoding
 * the whole buffer.
 */
export function sniffMsh18(buf: Buffer): string | undefined {
  const start = mshOffset(buf);
  if (start < 0 || start + 3 >= buf.length) return undefined;
  const sep = buf[start + 3]!;
  // MSH-1 is the separator itself, so MSH-n starts after the (n-1)th separator: MSH-18 after the 17th.
  let seen = 0;
  let from = -1;
  for (let i = start + 3; i < buf.length; i++) {
    const b = buf[i]!;
    if (b === 0x0d || b === 0x0a) break;
    if (b !== sep) continue;
    if (from >= 0) return buf.toString('latin1', from, i);
    if (++seen === 17) from = i + 1;
  }
  return from >= 0 ? buf.toString('latin1', from, lineEnd(buf, from)) : undefined;
}

function lineEnd(buf: Buffer, from: number): number {
  let i = from;
  while (i < buf.length && buf[i] !== 0x0d && buf[i] !== 0x0a) i++;
  return i;
}
