/**
 * HL7 v2 escape sequences (v2.5 §2.7): \F\ \S\ \T\ \R\ \E\ (\P\ when MSH-2 declares a truncation char),
 * \Xhh..\ (bytes in the message charset) and \.br\ (line break). Other sequences (\H\ \N\ \Cxxyy\ \Mxxyyzz\
 * \.sp\ \Z..\ ...) are formatting or charset switches we do not interpret: they are kept verbatim.
 */
import { decodeBytes, type Hl7Charset } from './charset.js';
import type { Delimiters } from './delimiters.js';

const HEX = /^(?:[0-9A-Fa-f]{2})+$/;

export function unescape(raw: string, d: Delimiters, charset: Hl7Charset): string {
  const e = d.escape;
  // Fast path, and no copy: OBX-5 may hold a 20 MB base64 value with no escape at all.
  if (raw.indexOf(e) < 0) return raw;
  let out = '';
  let pos = 0;
  // Consecutive \X..\ sequences are one byte run: a UTF-8 char may be split across them (\XC3\\XA9\).
  let bytes: number[] = [];
  const flushBytes = () => {
    if (bytes.length) out += decodeBytes(Buffer.from(bytes), charset);
    bytes = [];
  };
  for (let i = raw.indexOf(e); i >= 0; i = raw.indexOf(e, pos)) {
    const j = raw.indexOf(e, i + 1);
    if (j < 0) break; // a lone escape char is kept as is
    const seq = raw.slice(i + 1, j);
    if (i > pos) flushBytes();
    out += raw.slice(pos, i);
    pos = j + 1;
    if (seq[0] === 'X' && HEX.test(seq.slice(1))) {
      for (let k = 1; k < seq.length; k += 2) bytes.push(parseInt(seq.slice(k, k + 2), 16));
      continue;
    }
    flushBytes();
    out += single(seq, d) ?? e + seq + e;
  }
  flushBytes();
  return out + raw.slice(pos);
}

function single(seq: string, d: Delimiters): string | undefined {
  switch (seq) {
    case 'F':
      return d.field;
    case 'S':
      return d.component;
    case 'T':
      return d.subcomponent;
    case 'R':
      return d.repetition;
    case 'E':
      return d.escape;
    case 'P':
      return d.truncation;
    case '.br':
      return '\n';
    default:
      return undefined;
  }
}

const reEscape = (s: string) => s.replace(/[\\^$.*+?()[\]{}|-]/g, '\\$&');

/** One scanner per delimiter set (in practice one: |^~\&), built once. */
const scanners = new Map<string, RegExp>();

function scanner(specials: string): RegExp {
  let re = scanners.get(specials);
  if (!re) scanners.set(specials, (re = new RegExp(`[${reEscape(specials)}\\r\\n]`)));
  return re;
}

export function escape(text: string, d: Delimiters): string {
  const e = d.escape;
  const specials = d.field + d.component + d.subcomponent + d.repetition + e + (d.truncation ?? '');
  // Fast path: a native scan instead of a per-char loop (large values are base64, with nothing to escape).
  if (!scanner(specials).test(text)) return text;
  const table = new Map<string, string>([
    [d.field, `${e}F${e}`],
    [d.component, `${e}S${e}`],
    [d.subcomponent, `${e}T${e}`],
    [d.repetition, `${e}R${e}`],
    [e, `${e}E${e}`],
  ]);
  if (d.truncation) table.set(d.truncation, `${e}P${e}`);
  let out = '';
  let pos = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    let rep = table.get(c);
    let skip = 0;
    if (rep === undefined && (c === '\r' || c === '\n')) {
      rep = `${e}.br${e}`;
      if (c === '\r' && text[i + 1] === '\n') skip = 1; // CRLF is one line break
    }
    if (rep === undefined) continue;
    out += text.slice(pos, i) + rep;
    i += skip;
    pos = i + 1;
  }
  return pos === 0 ? text : out + text.slice(pos);
}
