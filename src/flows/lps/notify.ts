/**
 * Flow B: what the GESTIONNAIRE tells the sender of a received mail (volet "Transmission au LPS d'un
 * document CDA provenant d'un courriel MSSanté"): an MDN (RFC 8098, struct-msg-mdn.md) when the mail
 * asked for one with Disposition-Notification-To, else a plain notification (struct-email-standard.md)
 * when the document could not be integrated. Built as raw RFC 5322 text: a multipart/report is not
 * something mail composers write.
 */
import { randomBytes } from 'node:crypto';

export interface Attachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

export interface NotifyInput {
  /** The application mailbox that received the mail (our From). */
  from: string;
  /** Where the notification goes (Disposition-Notification-To, else Reply-To / From of the mail). */
  to: string;
  /** Subject of the received mail (`XDM/1.0/DDM+...`). */
  subject: string;
  originalMessageId?: string;
  /** Original-Recipient of the mail when it had one, else the mailbox it reached. */
  originalRecipient: string;
  /** The received mail's text body, and its attachments (IHE_XDM.ZIP, the PDF). */
  body: string;
  attachments: Attachment[];
  /** Absent: success (`processed`). */
  error?: { code: string; label: string };
  /** The received mail as it came: attached to a plain notification as `message_original.eml`. */
  original?: Buffer;
  now?: Date;
  messageId: string;
}

const CRLF = '\r\n';

/** RFC 2047 encoded word for non-ASCII header text. */
function header(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : `=?UTF-8?B?${Buffer.from(v, 'utf8').toString('base64')}?=`;
}

function base64Lines(b: Buffer): string {
  return (b.toString('base64').match(/.{1,76}/g) ?? []).join(CRLF);
}

function part(contentType: string, content: string, extra: string[] = []): string {
  return [`Content-Type: ${contentType}`, ...extra, '', content].join(CRLF);
}

function attachment(a: Attachment): string {
  return part(`${a.contentType}; name="${a.filename}"`, base64Lines(a.content), [
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${a.filename}"`,
  ]);
}

function multipart(contentType: string, parts: string[]): { type: string; body: string } {
  const boundary = `pfi-${randomBytes(12).toString('hex')}`;
  return {
    type: `${contentType}; boundary="${boundary}"`,
    body: parts.map((p) => `--${boundary}${CRLF}${p}`).join(CRLF) + `${CRLF}--${boundary}--${CRLF}`,
  };
}

function message(i: NotifyInput, subject: string, content: { type: string; body: string }): Buffer {
  const head = [
    `From: ${i.from}`,
    `To: ${i.to}`,
    `Subject: ${header(subject)}`,
    `Date: ${(i.now ?? new Date()).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${i.messageId}`,
    ...(i.originalMessageId ? [`In-Reply-To: ${i.originalMessageId}`, `References: ${i.originalMessageId}`] : []),
    'MIME-Version: 1.0',
    `Content-Type: ${content.type}`,
  ];
  return Buffer.from(head.join(CRLF) + CRLF + CRLF + content.body, 'utf8');
}

const koSubject = (i: NotifyInput) => `[KO Intégration système !][${i.error!.code}] ${i.subject}`;

function text(i: NotifyInput): string {
  return i.error
    ? `Le message ci-dessous n'a pas pu être intégré automatiquement dans le DPI pour la raison suivante :${CRLF}` +
        `${i.error.code} ${i.error.label}${CRLF}`
    : `Le message ci-dessous a été intégré dans le DPI.${CRLF}`;
}

/** The MDN: human text, the machine-readable disposition, the original body, the original attachments. */
export function buildMdn(i: NotifyInput): Buffer {
  const disposition = i.error
    ? `automatic-action/MDN-sent-automatically; processed/Error: ${i.error.code}^${i.error.label}`
    : 'automatic-action/MDN-sent-automatically; processed';
  const fields = [
    'Reporting-UA: pfi-engine',
    `Original-Recipient: rfc822;${i.originalRecipient}`,
    `Final-Recipient: rfc822;${i.from}`,
    ...(i.originalMessageId ? [`Original-Message-ID: ${i.originalMessageId}`] : []),
    `Disposition: ${disposition}`,
  ].join(CRLF);
  const report = multipart('multipart/report; report-type=disposition-notification', [
    part('text/plain; charset=UTF-8', base64Lines(Buffer.from(text(i), 'utf8')), ['Content-Transfer-Encoding: base64']),
    part('message/disposition-notification', fields + CRLF),
    part('text/plain; charset=UTF-8', base64Lines(Buffer.from(i.body, 'utf8')), [
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: inline',
    ]),
    ...i.attachments.map(attachment),
  ]);
  return message(i, i.error ? koSubject(i) : i.subject, report);
}

/** The plain notification of a failure, when the sender asked for no MDN (struct-email-standard.md). */
export function buildNotification(i: NotifyInput & { error: { code: string; label: string } }): Buffer {
  const intro =
    `Bonjour,${CRLF}${CRLF}Le document envoyé n'a pas pu être intégré correctement dans le système.${CRLF}` +
    `- Erreur détectée : ${i.error.label}${CRLF}- Code d'erreur : ${i.error.code}${CRLF}${CRLF}` +
    `Vous trouverez ci-dessous le message d'origine et, en pièces jointes, ses fichiers ` +
    `(archive IHE_XDM et PDF).${CRLF}` +
    `Veuillez vérifier les informations fournies et soumettre à nouveau les documents après correction.${CRLF}` +
    `${CRLF}--- Message d'origine ---${CRLF}${i.body}`;
  const mixed = multipart('multipart/mixed', [
    part('text/plain; charset=UTF-8', base64Lines(Buffer.from(intro, 'utf8')), ['Content-Transfer-Encoding: base64']),
    // message/rfc822 may not be base64-encoded (RFC 2046): the original goes as it is, with CRLF line ends.
    ...(i.original
      ? [
          part('message/rfc822', i.original.toString('latin1').replace(/\r?\n/g, CRLF), [
            'Content-Transfer-Encoding: 8bit',
            'Content-Disposition: attachment; filename="message_original.eml"',
          ]),
        ]
      : []),
    ...i.attachments.map(attachment),
  ]);
  return message(i, koSubject(i), mixed);
}
