/**
 * The documents carried by a transmission request (volet "Transmission de document(s) CDA en HL7v2"):
 * OBX segments of type ED whose OBX-5 holds a CDA (or a PDF), usually base64-encoded.
 *
 * OBX-5 (ED): 1 source application ^ 2 type of data ^ 3 data subtype ^ 4 encoding ^ 5 data.
 * OBX-5.5 may weigh 20+ MB: it is read as one slice of the segment (no split of the whole field),
 * and decoded with a single Buffer.from(..., 'base64').
 */
import { unescape } from '../hl7v2/escape.js';
import type { Hl7Message } from '../hl7v2/message.js';
import { PfiError } from '../errors.js';

export interface ExtractedDocument {
  /** 1-based occurrence of the OBX segment in the message. */
  obx: number;
  /** OBX-3. */
  typeCode: { code: string; label?: string; system?: string };
  /** From OBX-5.2 / OBX-5.3 (TEXT^XML, application^PDF, ...), case-insensitive. */
  mediaType: 'text/xml' | 'application/pdf';
  /** OBX-5.4. */
  encoding: 'Base64' | 'none';
  /** The document bytes (base64-decoded, or the unescaped text encoded as UTF-8). */
  bytes: Buffer;
}

export interface DocumentLocation {
  segment: 'OBX';
  /** 1-based occurrence of the OBX segment. */
  sequence: number;
  field: 5;
  component?: number;
}

export class DocumentError extends PfiError {
  override name = 'DocumentError';
  constructor(
    message: string,
    readonly location: DocumentLocation,
  ) {
    super('document', message);
  }
}

/** OBX-3 coding system of the flags and mail bodies (MASQUE_PS, DESTDMP, CORPSMAIL_PS, ...). */
export const META_DMP_MSS = 'MetaDMPMSS';

/**
 * The documents of a transmission request: every OBX with OBX-2 = ED whose OBX-3 coding system is not
 * MetaDMPMSS (those are the flags and mail bodies CORPSMAIL_*; a CORPSMAIL_* code without coding system,
 * as in the volet V1.2 examples, is skipped too). An ED OBX that is neither TEXT^XML nor application^PDF,
 * or whose base64 is invalid, is refused with a DocumentError naming the OBX.
 */
export function extractDocuments(msg: Hl7Message): ExtractedDocument[] {
  const out: ExtractedDocument[] = [];
  const d = msg.delimiters;
  const text = (raw: string | undefined) =>
    raw === undefined || raw === '' ? undefined : unescape(raw, d, msg.charset);
  let n = 0;
  for (const seg of msg.segments) {
    if (seg.name !== 'OBX') continue;
    const sequence = ++n;
    if ((seg.value(2) ?? '').trim().toUpperCase() !== 'ED') continue;
    const system = text(seg.value(3, 1, 3));
    const code = text(seg.value(3, 1, 1)) ?? '';
    // Volet V1.2 messages send CORPSMAIL_* without the MetaDMPMSS coding system: still a mail body.
    if (system === META_DMP_MSS || code.startsWith('CORPSMAIL_')) continue;
    const at = (component?: number): DocumentLocation =>
      component === undefined
        ? { segment: 'OBX', sequence, field: 5 }
        : { segment: 'OBX', sequence, field: 5, component };

    const typeCode: ExtractedDocument['typeCode'] = { code };
    const label = text(seg.value(3, 1, 2));
    if (label !== undefined) typeCode.label = label;
    if (system !== undefined) typeCode.system = system;

    const type = (text(seg.value(5, 1, 2)) ?? '').trim().toLowerCase();
    const subtype = (text(seg.value(5, 1, 3)) ?? '').trim().toLowerCase();
    const mediaType = mediaTypeOf(type, subtype);
    if (!mediaType) {
      const found = `${seg.value(5, 1, 2) ?? ''}^${seg.value(5, 1, 3) ?? ''}`;
      throw new DocumentError(
        `OBX[${sequence}]-5: unsupported document type '${found}' (expected TEXT^XML for a CDA or application^PDF)`,
        at(subtype ? 3 : 2),
      );
    }

    const enc = (text(seg.value(5, 1, 4)) ?? '').trim().toLowerCase();
    let encoding: ExtractedDocument['encoding'];
    if (enc === 'base64') encoding = 'Base64';
    else if (enc === '' || enc === 'a') encoding = 'none';
    else
      throw new DocumentError(
        `OBX[${sequence}]-5.4: unsupported encoding '${seg.value(5, 1, 4)}' (expected Base64)`,
        at(4),
      );

    const raw = seg.value(5, 1, 5);
    if (raw === undefined || raw === '') throw new DocumentError(`OBX[${sequence}]-5.5: the document is empty`, at(5));
    let bytes: Buffer;
    if (encoding === 'Base64') {
      // Base64 has no HL7 delimiter: unescape only returns a new string when an escape char is present.
      const b64 = unescape(raw, d, msg.charset);
      const problem = base64Problem(b64);
      if (problem) throw new DocumentError(`OBX[${sequence}]-5.5: invalid base64 (${problem})`, at(5));
      bytes = Buffer.from(b64, 'base64');
      if (bytes.length !== decodedLength(b64)) {
        throw new DocumentError(`OBX[${sequence}]-5.5: invalid base64 (character outside the base64 alphabet)`, at(5));
      }
    } else {
      bytes = Buffer.from(unescape(raw, d, msg.charset), 'utf8');
    }
    out.push({ obx: sequence, typeCode, mediaType, encoding, bytes });
  }
  return out;
}

function mediaTypeOf(type: string, subtype: string): ExtractedDocument['mediaType'] | undefined {
  if (subtype === 'xml' && (type === 'text' || type === 'application' || type === '')) return 'text/xml';
  if (subtype === 'pdf' && (type === 'application' || type === 'ap' || type === '')) return 'application/pdf';
  if (type === 'text/xml' || type === 'application/xml') return 'text/xml';
  if (type === 'application/pdf') return 'application/pdf';
  return undefined;
}

/**
 * Cheap structural checks of a base64 value; characters are checked by comparing the decoded length
 * (Node skips the characters it does not know, and stops at an inner '='), so that a 20 MB value is
 * not scanned by a regular expression. Missing padding is tolerated (several ANS examples omit it).
 */
function base64Problem(s: string): string | undefined {
  const body = stripPadding(s);
  if (body.length % 4 === 1)
    return `${body.length} data characters cannot be 1 more than a multiple of 4: truncated value?`;
  // Node also accepts the URL-safe alphabet: refuse it here (indexOf is a native, vectorised scan).
  const odd = Math.max(s.indexOf('-'), s.indexOf('_'));
  if (odd >= 0) return `character '${s[odd]}' at offset ${odd} is not in the base64 alphabet`;
  return undefined;
}

function stripPadding(s: string): string {
  let end = s.length;
  while (end > 0 && end > s.length - 2 && s.charCodeAt(end - 1) === 61 /* = */) end--;
  return end === s.length ? s : s.slice(0, end);
}

function decodedLength(s: string): number {
  const n = stripPadding(s).length;
  return Math.floor((n * 3) / 4);
}
