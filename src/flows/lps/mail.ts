/**
 * Flow B: a received mail read for what the flow needs: who sent it to which mailbox, whether it asks
 * for an MDN, its subject and text, and its attachments (IHE_XDM.ZIP, a PDF). Nested multiparts are
 * walked (a client's multipart/mixed holding a multipart/alternative body).
 */
import { decodeContent, parseContentType, parseMultipartParts, type MimePart } from '../../mime/multipart.js';
import { readHeaders } from '../../mail/reports.js';
import type { Attachment } from './notify.js';

export interface ReceivedMailParts {
  headers: Map<string, string>;
  from: string;
  to: string;
  replyTo?: string;
  subject: string;
  messageId?: string;
  /** Disposition-Notification-To: where an MDN goes, when asked. */
  mdnTo?: string;
  originalRecipient?: string;
  body: string;
  attachments: Attachment[];
}

/** The address of a header value (`Name <a@b>` or `a@b`). */
export function address(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const m = /<([^>]+)>/.exec(v);
  return (m ? m[1]! : v).trim().split(/[\s,]/)[0] || undefined;
}

function fileName(p: MimePart): string | undefined {
  const disposition = p.headers['content-disposition'] ?? '';
  const m =
    /filename\*?=(?:"([^"]+)"|([^;\s]+))/i.exec(disposition) ?? /name=(?:"([^"]+)"|([^;\s]+))/i.exec(p.contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

export function readMail(raw: Buffer): ReceivedMailParts {
  const headers = readHeaders(raw);
  const sep = raw.indexOf('\r\n\r\n');
  const start = sep >= 0 ? sep + 4 : raw.indexOf('\n\n') + 2;
  const top: MimePart = {
    contentType: headers.get('content-type') ?? 'text/plain',
    headers: Object.fromEntries(headers),
    body: raw.subarray(start),
  };
  let body: string | undefined;
  const attachments: Attachment[] = [];
  const walk = (p: MimePart, depth: number, decoded: boolean) => {
    const type = parseContentType(p.contentType).type;
    if (type.startsWith('multipart/') && depth < 4) {
      for (const child of parseMultipartParts(p.contentType, p.body)) walk(child, depth + 1, true);
      return;
    }
    const content = decoded ? p.body : decodeContent(p.body, p.headers['content-transfer-encoding']);
    const name = fileName(p);
    if (name || /attachment/i.test(p.headers['content-disposition'] ?? ''))
      attachments.push({ filename: name ?? 'attachment', contentType: type, content });
    else if (body === undefined && type.startsWith('text/plain')) body = content.toString('utf8');
  };
  walk(top, 0, false);
  return {
    headers,
    from: address(headers.get('from')) ?? '',
    to: address(headers.get('to')) ?? '',
    replyTo: address(headers.get('reply-to')),
    subject: headers.get('subject') ?? '',
    messageId: headers.get('message-id'),
    mdnTo: address(headers.get('disposition-notification-to')),
    originalRecipient: address(headers.get('original-recipient')?.replace(/^rfc822;/i, '')),
    body: body ?? '',
    attachments,
  };
}
