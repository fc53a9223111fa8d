/**
 * Minimal HL7 v2 knowledge needed by the MLLP client to correlate an ACK with
 * the message it acknowledges: MSH-10 of the outgoing message, MSA-1/MSA-2 of
 * the ACK. Scans bytes only (no full parse, no unescaping: both sides are
 * compared raw). The field separator is the 4th byte of MSH; segments are
 * separated by CR (a LF after CR is tolerated).
 */

export interface AckInfo {
  /** MSA-1 acknowledgment code (AA, AE, AR, CA, CE, CR), '' if absent. */
  code: string;
  /** MSA-2 message control id, '' if absent. */
  controlId: string;
}

export interface Correlator {
  /** MSH-10 of an outgoing message, or undefined when it cannot be found. */
  messageControlId(payload: Buffer): string | undefined;
  /** MSA-1 and MSA-2 of an ACK, or undefined when the payload has no MSH/MSA. */
  ack(payload: Buffer): AckInfo | undefined;
}

const CR = 0x0d;
const LF = 0x0a;

/** Offset of the 'MSH' segment start, tolerating leading whitespace. */
function mshStart(payload: Buffer): number {
  let i = 0;
  while (i < payload.length && (payload[i] === CR || payload[i] === LF || payload[i] === 0x20 || payload[i] === 0x09))
    i++;
  if (payload.length < i + 4) return -1;
  if (payload[i] !== 0x4d || payload[i + 1] !== 0x53 || payload[i + 2] !== 0x48) return -1; // 'MSH'
  return i;
}

function segmentEnd(payload: Buffer, from: number): number {
  const cr = payload.indexOf(CR, from);
  const lf = payload.indexOf(LF, from);
  if (cr === -1) return lf === -1 ? payload.length : lf;
  return lf === -1 ? cr : Math.min(cr, lf);
}

/** MSH-10 (raw, trimmed), or undefined. Reads only the MSH segment. */
export function extractMessageControlId(payload: Buffer): string | undefined {
  const start = mshStart(payload);
  if (start < 0) return undefined;
  const sep = String.fromCharCode(payload[start + 3]!);
  const msh = payload.toString('latin1', start, segmentEnd(payload, start));
  // "MSH|^~\&|3|4|5|6|7|8|9|10": split()[0] = 'MSH', [1] = MSH-2, so MSH-n = [n - 1].
  const id = msh.split(sep)[9]?.trim();
  return id ? id : undefined;
}

/** MSA-1 and MSA-2 of an ACK, or undefined when there is no MSH or no MSA segment. */
export function extractAck(payload: Buffer): AckInfo | undefined {
  const start = mshStart(payload);
  if (start < 0) return undefined;
  const sep = String.fromCharCode(payload[start + 3]!);
  const text = payload.toString('latin1', start);
  for (const raw of text.split(/\r\n?|\n/)) {
    const seg = raw.trimStart();
    if (seg.startsWith('MSA' + sep) || seg === 'MSA') {
      const f = seg.split(sep);
      return { code: (f[1] ?? '').trim(), controlId: (f[2] ?? '').trim() };
    }
  }
  return undefined;
}

export const defaultCorrelator: Correlator = {
  messageControlId: extractMessageControlId,
  ack: extractAck,
};
