/**
 * MTOM / XOP packaging (multipart/related, RFC 2387 + W3C XOP) for SOAP 1.2, as the DMP's ITI-41 uses it:
 * the root part is the SOAP envelope (application/xop+xml), each document a raw binary part referenced
 * by `xop:Include href="cid:..."`. Building never copies an attachment (the caller's Buffers are passed
 * through as chunks); reading is the MIME layer's parseMultipart.
 */
import { randomBytes } from 'node:crypto';
import { stripAngles } from '../mime/multipart.js';

const CRLF = '\r\n';
export const ROOT_CONTENT_ID = 'root.message@pfi';

/** A boundary that occurs in none of the bodies (random 192 bits: a clash is only checked for form's sake). */
function makeBoundary(bodies: (Buffer | string)[]): string {
  for (;;) {
    const boundary = `MIMEBoundary_pfi_${randomBytes(24).toString('hex')}`;
    if (!bodies.some((b) => b.indexOf(boundary) >= 0)) return boundary;
  }
}

/**
 * SOAP 1.2 MTOM request: root part = the envelope (application/xop+xml; type="application/soap+xml"),
 * Content-ID <root.message@pfi>, attachments as raw binary parts.
 */
export function buildMtom(
  envelope: string,
  attachments: { contentId: string; contentType: string; body: Buffer }[],
  action: string,
): { contentType: string; chunks: Buffer[] } {
  const boundary = makeBoundary([envelope, ...attachments.map((a) => a.body)]);
  const head = (contentType: string, encoding: string, id: string): Buffer =>
    Buffer.from(
      `--${boundary}${CRLF}Content-Type: ${contentType}${CRLF}Content-Transfer-Encoding: ${encoding}${CRLF}` +
        `Content-ID: <${stripAngles(id)}>${CRLF}${CRLF}`,
      'latin1',
    );
  const chunks: Buffer[] = [
    head('application/xop+xml; charset=UTF-8; type="application/soap+xml"', '8bit', ROOT_CONTENT_ID),
    Buffer.from(envelope, 'utf8'),
  ];
  for (const a of attachments) {
    chunks.push(Buffer.from(CRLF), head(a.contentType, 'binary', a.contentId), a.body);
  }
  chunks.push(Buffer.from(`${CRLF}--${boundary}--${CRLF}`));
  const contentType =
    `multipart/related; boundary="${boundary}"; type="application/xop+xml"; start="<${ROOT_CONTENT_ID}>"; ` +
    `start-info="application/soap+xml"; action="${action.replace(/["\\]/g, '\\$&')}"`;
  return { contentType, chunks };
}
