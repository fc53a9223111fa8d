import { describe, expect, it } from 'vitest';
import MailComposer from 'nodemailer/lib/mail-composer';
import { MimeError } from '../../src/mime/multipart.js';
import { parseReport, readHeaders, ReportError, type Report } from '../../src/mail/reports.js';

// Samples written for these tests, shaped like what Postfix 3.7 (DSN) and Thunderbird / Outlook (MDN) send.

/** Joins lines with CRLF (the wire form) or LF (a mail saved by a Unix tool). */
const lines = (l: string[], eol: '\r\n' | '\n' = '\r\n'): string => l.join(eol);
const buf = (s: string): Buffer => Buffer.from(s, 'utf8');

const B = '4VbQ1w0GZ2z9vB.1715674324/mx.hopital.test';

interface PartSpec {
  headers: string[];
  body: string[];
}

/** A Postfix-like multipart/report; `parts` replace the usual three (notification, delivery status, headers). */
function report(opts: {
  subject?: string;
  reportType?: string | null;
  parts: PartSpec[];
  eol?: '\r\n' | '\n';
  boundary?: string;
}): Buffer {
  const boundary = opts.boundary ?? B;
  const rt = opts.reportType === null ? '' : ` report-type=${opts.reportType ?? 'delivery-status'};`;
  const out = [
    'Return-Path: <>',
    'Delivered-To: pfi@hopital.test',
    'Received: by mx.hopital.test (Postfix)',
    '\tid 4VbQ1w0GZ2z9vB; Tue, 14 May 2024 10:12:04 +0200 (CEST)',
    'Date: Tue, 14 May 2024 10:12:04 +0200 (CEST)',
    'From: MAILER-DAEMON@mx.hopital.test (Mail Delivery System)',
    `Subject: ${opts.subject ?? 'Undelivered Mail Returned to Sender'}`,
    'To: pfi@hopital.test',
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report;${rt}`,
    `\tboundary="${boundary}"`,
    'Content-Transfer-Encoding: 8bit',
    'Message-Id: <20240514081204.5E8F1C0A12@mx.hopital.test>',
    '',
    'This is a MIME-encapsulated message.',
    '',
  ];
  for (const p of opts.parts) out.push(`--${boundary}`, ...p.headers, '', ...p.body, '');
  out.push(`--${boundary}--`, '');
  return buf(lines(out, opts.eol));
}

const notification = (text: string): PartSpec => ({
  headers: ['Content-Description: Notification', 'Content-Type: text/plain; charset=us-ascii'],
  body: ['This is the mail system at host mx.hopital.test.', '', text, '', '                   The mail system'],
});

const PER_MESSAGE = [
  'Reporting-MTA: dns; mx.hopital.test',
  'X-Postfix-Queue-ID: 4VbQ1v6Ws1z9v8',
  'X-Postfix-Sender: rfc822; pfi@hopital.test',
  'Original-Envelope-Id: 01HXQ7K2M3-ABCD-EF01.0',
  'Arrival-Date: Tue, 14 May 2024 10:12:03 +0200 (CEST)',
];

const deliveryStatus = (recipients: string[][], perMessage = PER_MESSAGE): PartSpec => ({
  headers: ['Content-Description: Delivery report', 'Content-Type: message/delivery-status'],
  body: [...perMessage, ...recipients.flatMap((r) => ['', ...r])],
});

const ORIGINAL_HEADERS = [
  'Return-Path: <pfi@hopital.test>',
  'Received: from pfi.hopital.test (localhost [127.0.0.1])',
  '\tby mx.hopital.test (Postfix) with ESMTP id 4VbQ1v6Ws1z9v8',
  '\tfor <dr.martin@pro.test>; Tue, 14 May 2024 10:12:03 +0200 (CEST)',
  'From: PFI <pfi@hopital.test>',
  'To: dr.martin@pro.test',
  'Subject: =?UTF-8?Q?Compte_rendu_d=27hospitalisation?=',
  'Message-ID: <01HXQ7K2M3-ABCD-EF01.0.ch1@hopital.test>',
  'Date: Tue, 14 May 2024 10:12:02 +0200',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="--_NmP-0123456789abcdef-Part_1"',
];

const returnedHeaders = (h = ORIGINAL_HEADERS): PartSpec => ({
  headers: ['Content-Description: Undelivered Message Headers', 'Content-Type: text/rfc822-headers'],
  body: h,
});

const BOUNCED = [
  'Final-Recipient: rfc822; nobody@pro.test',
  'Original-Recipient: rfc822;nobody@pro.test',
  'Action: failed',
  'Status: 5.1.1',
  'Remote-MTA: dns; mx.pro.test',
  'Diagnostic-Code: smtp; 550 5.1.1 <nobody@pro.test>: Recipient address rejected:',
  '    User unknown in virtual mailbox table',
];

const DELIVERED = [
  'Final-Recipient: rfc822; dr.martin@pro.test',
  'Original-Recipient: rfc822;dr.martin@pro.test',
  'Action: delivered',
  'Status: 2.0.0',
  'Remote-MTA: dns; 127.0.0.1',
  'Diagnostic-Code: smtp; 250 2.0.0 <dr.martin@pro.test> mD3tB7QhQ2aFGQAA0J78UA Saved',
];

const success = (eol: '\r\n' | '\n' = '\r\n') =>
  report({
    subject: 'Successful Mail Delivery Report',
    eol,
    parts: [
      notification('Your message was successfully delivered to the destination(s)\nlisted below.'),
      deliveryStatus([DELIVERED]),
      returnedHeaders(),
    ],
  });

const bounce = () =>
  report({
    parts: [
      notification("I'm sorry to have to inform you that your message could not\nbe delivered."),
      deliveryStatus([BOUNCED]),
      returnedHeaders(),
    ],
  });

function mdn(opts: { disposition: string; eol?: '\r\n' | '\n'; fields?: string[]; third?: boolean }): Buffer {
  const b = '------------mdnA1b2C3d4E5f6';
  const out = [
    'Return-Path: <dr.martin@pro.test>',
    'Content-Type: multipart/report; report-type=disposition-notification;',
    ` boundary="${b}"`,
    'Message-ID: <7c1e0f3a-2b9d-4e6f-8a10-5d2c9e1b4f00@pro.test>',
    'Date: Tue, 14 May 2024 11:03:51 +0200',
    'MIME-Version: 1.0',
    'From: =?UTF-8?Q?Dr_Fran=C3=A7ois_Martin?= <dr.martin@pro.test>',
    'To: pfi@hopital.test',
    'Subject: =?UTF-8?Q?Accus=C3=A9_de_lecture_=28affich=C3=A9=29_-_Compte_rendu_d=27hos?=',
    ' =?UTF-8?Q?pitalisation?=',
    '',
    'This is a multi-part message in MIME format.',
    `--${b}`,
    'Content-Type: text/plain; charset=UTF-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Ceci est un accusé de lecture pour le courriel envoyé à dr.martin@pro.test',
    '',
    `--${b}`,
    'Content-Type: message/disposition-notification; name="MDNPart2.txt"',
    'Content-Disposition: inline',
    'Content-Transfer-Encoding: 7bit',
    '',
    ...(opts.fields ?? [
      'Reporting-UA: pro.test; Thunderbird 115.10.1',
      'Original-Recipient: rfc822;dr.martin@pro.test',
      'Final-Recipient: rfc822;dr.martin@pro.test',
      'Original-Message-ID: <01HXQ7K2M3-ABCD-EF01.0.ch1@hopital.test>',
      `Disposition: ${opts.disposition}`,
    ]),
    '',
  ];
  if (opts.third !== false) {
    out.push(
      `--${b}`,
      'Content-Type: text/rfc822-headers; name="MDNPart3.txt"',
      'Content-Transfer-Encoding: 7bit',
      'Content-Disposition: inline',
      '',
      ...ORIGINAL_HEADERS,
      '',
    );
  }
  out.push(`--${b}--`, '');
  return buf(lines(out, opts.eol));
}

const wrap76 = (s: string): string[] => s.match(/.{1,76}/g) ?? [];

/** A minimal quoted-printable encoder (RFC 2045 §6.7): '=' and 8-bit bytes escaped, lines soft-broken at 76. */
function qp(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let enc = '';
    for (const byte of Buffer.from(line, 'utf8')) {
      enc +=
        byte === 0x3d || byte > 0x7e
          ? `=${byte.toString(16).toUpperCase().padStart(2, '0')}`
          : String.fromCharCode(byte);
    }
    while (enc.length > 75) {
      let cut = 75;
      while (enc[cut - 1] === '=' || enc[cut - 2] === '=') cut--; // do not split an escape
      out.push(enc.slice(0, cut) + '=');
      enc = enc.slice(cut);
    }
    out.push(enc);
  }
  return out;
}

const dsnOf = (r: Report) => {
  if (r.kind !== 'dsn') throw new Error(`expected a DSN, got ${r.kind}`);
  return r;
};
const mdnOf = (r: Report) => {
  if (r.kind !== 'mdn') throw new Error(`expected an MDN, got ${r.kind}`);
  return r;
};

function compose(mail: ConstructorParameters<typeof MailComposer>[0]): Promise<Buffer> {
  return new Promise((ok, fail) => new MailComposer(mail).compile().build((err, out) => (err ? fail(err) : ok(out))));
}

// ---------------------------------------------------------------------------------------------------------------

describe('parseReport: DSN', () => {
  it('reads a Postfix success report (delivered over LMTP)', () => {
    const r = dsnOf(parseReport(success()));
    expect(r).toEqual({
      kind: 'dsn',
      envelopeId: '01HXQ7K2M3-ABCD-EF01.0',
      originalMessageId: '<01HXQ7K2M3-ABCD-EF01.0.ch1@hopital.test>',
      reportingMta: 'mx.hopital.test',
      recipients: [
        {
          finalRecipient: 'dr.martin@pro.test',
          originalRecipient: 'dr.martin@pro.test',
          action: 'delivered',
          status: '2.0.0',
          diagnostic: '250 2.0.0 <dr.martin@pro.test> mD3tB7QhQ2aFGQAA0J78UA Saved',
          smtpCode: 250,
        },
      ],
    });
  });

  it('reads a Postfix bounce (5.1.1, folded Diagnostic-Code)', () => {
    const r = dsnOf(parseReport(bounce()));
    expect(r.recipients).toEqual([
      {
        finalRecipient: 'nobody@pro.test',
        originalRecipient: 'nobody@pro.test',
        action: 'failed',
        status: '5.1.1',
        diagnostic: '550 5.1.1 <nobody@pro.test>: Recipient address rejected: User unknown in virtual mailbox table',
        smtpCode: 550,
      },
    ]);
    expect(r.originalMessageId).toBe('<01HXQ7K2M3-ABCD-EF01.0.ch1@hopital.test>');
  });

  it('reads a delay notice: no SMTP code in an X-Postfix diagnostic, none invented from the status', () => {
    const raw = report({
      subject: 'Delayed Mail (still being retried)',
      parts: [
        notification('This is a warning only. You do not need to resend your message.'),
        deliveryStatus([
          [
            'Final-Recipient: rfc822; janet.blanc@medecin.mssante.fr',
            'Original-Recipient: rfc822;janet.blanc@medecin.mssante.fr',
            'Action: delayed',
            'Status: 4.4.1',
            'Diagnostic-Code: X-Postfix; connect to mx.medecin.mssante.fr[192.0.2.25]:25:',
            '    Connection timed out',
            'Will-Retry-Until: Sun, 19 May 2024 10:12:03 +0200 (CEST)',
          ],
        ]),
        returnedHeaders(),
      ],
    });
    const [rcpt] = dsnOf(parseReport(raw)).recipients;
    expect(rcpt).toEqual({
      finalRecipient: 'janet.blanc@medecin.mssante.fr',
      originalRecipient: 'janet.blanc@medecin.mssante.fr',
      action: 'delayed',
      status: '4.4.1',
      diagnostic: 'connect to mx.medecin.mssante.fr[192.0.2.25]:25: Connection timed out',
    });
  });

  it('reads one block per recipient, in order', () => {
    const raw = report({ parts: [notification('...'), deliveryStatus([DELIVERED, BOUNCED]), returnedHeaders()] });
    const r = dsnOf(parseReport(raw));
    expect(r.recipients.map((x) => [x.finalRecipient, x.action, x.status, x.smtpCode])).toEqual([
      ['dr.martin@pro.test', 'delivered', '2.0.0', 250],
      ['nobody@pro.test', 'failed', '5.1.1', 550],
    ]);
  });

  it('LF line ends read the same as CRLF', () => {
    expect(parseReport(success('\n'))).toEqual(parseReport(success('\r\n')));
    const mixed = Buffer.from(
      success('\r\n')
        .toString('latin1')
        .replace(/Action: delivered\r\n/, 'Action: delivered\n'),
      'latin1',
    );
    expect(parseReport(mixed)).toEqual(parseReport(success()));
  });

  it('decodes base64 and quoted-printable parts', () => {
    const dsText = [...PER_MESSAGE, '', ...BOUNCED].join('\r\n') + '\r\n';
    const b64 = report({
      parts: [
        notification('...'),
        {
          headers: ['Content-Type: message/delivery-status', 'Content-Transfer-Encoding: base64'],
          body: wrap76(Buffer.from(dsText).toString('base64')),
        },
        {
          headers: ['Content-Type: text/rfc822-headers', 'Content-Transfer-Encoding: base64'],
          body: wrap76(Buffer.from(ORIGINAL_HEADERS.join('\r\n')).toString('base64')),
        },
      ],
    });
    const qpText = [
      ...PER_MESSAGE,
      '',
      ...BOUNCED.slice(0, 5),
      'Diagnostic-Code: smtp; 550 5.1.1 <nobody@pro.test>: Recipient address rejected: ' +
        `User unknown in virtual mailbox table ${'x'.repeat(40)}`,
    ].join('\n');
    const qpRaw = report({
      parts: [
        notification('...'),
        {
          headers: ['Content-Type: message/delivery-status', 'Content-Transfer-Encoding: quoted-printable'],
          body: qp(qpText),
        },
        {
          headers: ['Content-Type: text/rfc822-headers', 'Content-Transfer-Encoding: Quoted-Printable'],
          body: qp(ORIGINAL_HEADERS.join('\n')),
        },
      ],
    });
    expect(qpRaw.toString('latin1')).toMatch(/=\r\n/); // really soft-broken
    const plain = dsnOf(parseReport(bounce()));
    expect(parseReport(b64)).toEqual(plain);
    const fromQp = dsnOf(parseReport(qpRaw));
    expect(fromQp.recipients[0]!.diagnostic).toBe(`${plain.recipients[0]!.diagnostic} ${'x'.repeat(40)}`);
    expect(fromQp.originalMessageId).toBe(plain.originalMessageId);
    expect(fromQp.envelopeId).toBe(plain.envelopeId);
  });

  it('takes the original Message-ID from a returned message/rfc822 part too', () => {
    const raw = report({
      parts: [
        notification('...'),
        deliveryStatus([BOUNCED]),
        {
          headers: ['Content-Description: Undelivered Message', 'Content-Type: message/rfc822'],
          body: [...ORIGINAL_HEADERS, '', 'Message-ID: <not-this-one@body>', 'body'],
        },
      ],
    });
    expect(dsnOf(parseReport(raw)).originalMessageId).toBe('<01HXQ7K2M3-ABCD-EF01.0.ch1@hopital.test>');
  });

  it('without a returned part, no originalMessageId; without ENVID, no envelopeId', () => {
    const raw = report({
      parts: [
        notification('...'),
        deliveryStatus(
          [BOUNCED],
          PER_MESSAGE.filter((f) => !f.startsWith('Original-Envelope-Id')),
        ),
      ],
    });
    const r = dsnOf(parseReport(raw));
    expect(r).not.toHaveProperty('originalMessageId');
    expect(r).not.toHaveProperty('envelopeId');
    expect(r.recipients).toHaveLength(1);
  });

  it('is tolerant of other writers: case, comments, angle brackets, missing per-message block, no report-type', () => {
    const raw = report({
      reportType: null,
      parts: [
        {
          headers: ['content-type: Message/Delivery-Status'],
          body: [
            'final-recipient: RFC822; <Dr.Durand@pro.test>',
            'ACTION: Failed (permanent)',
            'status: 5.2.2 (mailbox full)',
            'diagnostic-code: smtp;552-5.2.2 Mailbox full',
          ],
        },
      ],
    });
    expect(parseReport(raw)).toEqual({
      kind: 'dsn',
      recipients: [
        {
          finalRecipient: 'Dr.Durand@pro.test',
          action: 'failed',
          status: '5.2.2',
          diagnostic: '552-5.2.2 Mailbox full',
          smtpCode: 552,
        },
      ],
    });
  });

  it('reads RFC 6533 global DSNs (UTF-8 addresses, \\x{..} escapes)', () => {
    const raw = report({
      parts: [
        notification('...'),
        {
          headers: ['Content-Type: message/global-delivery-status'],
          body: [
            'Reporting-MTA: dns; mx.hopital.test',
            '',
            'Final-Recipient: utf-8; j\\x{E9}r\\x{F4}me@pro.test',
            'Original-Recipient: utf-8; jérôme@pro.test',
            'Action: failed',
            'Status: 5.1.1',
          ],
        },
      ],
    });
    const [rcpt] = dsnOf(parseReport(raw)).recipients;
    expect(rcpt!.finalRecipient).toBe('jérôme@pro.test');
    expect(rcpt!.originalRecipient).toBe('jérôme@pro.test');
  });

  it('finds a report wrapped in multipart/mixed by a gateway that adds a disclaimer', async () => {
    const inner = bounce();
    const { body } = splitRaw(inner);
    const ct = readHeaders(inner).get('content-type')!;
    const wrapped = Buffer.concat([
      buf(
        lines([
          'From: MAILER-DAEMON@gw.hopital.test',
          'To: pfi@hopital.test',
          'Subject: Undelivered',
          'MIME-Version: 1.0',
          'Content-Type: multipart/mixed; boundary="gw-1"',
          '',
          '--gw-1',
          `Content-Type: ${ct}`,
          '',
          '',
        ]),
      ),
      body,
      buf(
        lines([
          '',
          '--gw-1',
          'Content-Type: text/plain',
          '',
          'Ce message a été analysé par notre passerelle.',
          '--gw-1--',
          '',
        ]),
      ),
    ]);
    expect(parseReport(wrapped)).toEqual(parseReport(inner));
  });

  it('multipart/report of another type (ARF feedback) is not ours: other', () => {
    const raw = report({
      reportType: 'feedback-report',
      parts: [
        notification('abuse'),
        { headers: ['Content-Type: message/feedback-report'], body: ['Feedback-Type: abuse'] },
      ],
    });
    expect(parseReport(raw)).toEqual({ kind: 'other' });
  });
});

describe('parseReport: MDN', () => {
  it('reads a "displayed" MDN (Thunderbird-like)', () => {
    expect(parseReport(mdn({ disposition: 'manual-action/MDN-sent-manually; displayed' }))).toEqual({
      kind: 'mdn',
      originalMessageId: '<01HXQ7K2M3-ABCD-EF01.0.ch1@hopital.test>',
      finalRecipient: 'dr.martin@pro.test',
      originalRecipient: 'dr.martin@pro.test',
      disposition: { mode: 'manual-action/MDN-sent-manually', type: 'displayed' },
      reportingUa: 'pro.test; Thunderbird 115.10.1',
      from: 'dr.martin@pro.test',
    });
  });

  it('reads "processed" and "deleted" dispositions, modifiers and comments, LF line ends', () => {
    const processed = mdnOf(
      parseReport(mdn({ disposition: 'automatic-action/MDN-sent-automatically; processed', eol: '\n' })),
    );
    expect(processed.disposition).toEqual({ mode: 'automatic-action/MDN-sent-automatically', type: 'processed' });
    const deleted = mdnOf(parseReport(mdn({ disposition: 'manual-action/MDN-sent-manually;deleted' })));
    expect(deleted.disposition).toEqual({ mode: 'manual-action/MDN-sent-manually', type: 'deleted' });
    const withError = mdnOf(
      parseReport(
        mdn({ disposition: 'automatic-action / MDN-sent-automatically ; Processed / Error , Warning (virus scan)' }),
      ),
    );
    expect(withError.disposition).toEqual({
      mode: 'automatic-action/MDN-sent-automatically',
      type: 'processed',
      modifiers: ['error', 'warning'],
    });
  });

  it('falls back on the returned headers when Original-Message-ID is missing; adds angle brackets when absent', () => {
    const fields = [
      'Reporting-UA: Microsoft Outlook 16.0',
      'Final-Recipient: rfc822;dr.martin@pro.test',
      'Disposition: manual-action/MDN-sent-manually; displayed',
    ];
    expect(mdnOf(parseReport(mdn({ disposition: '', fields }))).originalMessageId).toBe(
      '<01HXQ7K2M3-ABCD-EF01.0.ch1@hopital.test>',
    );
    expect(mdnOf(parseReport(mdn({ disposition: '', fields, third: false }))).originalMessageId).toBeUndefined();
    const bare = [...fields, 'Original-Message-ID: 01HXQ7K2M3-ABCD-EF01.0.ch1@hopital.test'];
    expect(mdnOf(parseReport(mdn({ disposition: '', fields: bare, third: false }))).originalMessageId).toBe(
      '<01HXQ7K2M3-ABCD-EF01.0.ch1@hopital.test>',
    );
  });

  it('an MDN without Disposition, or with a malformed one, is a ReportError', () => {
    const noDisposition = mdn({
      disposition: '',
      fields: ['Final-Recipient: rfc822;dr.martin@pro.test', 'Original-Message-ID: <a@b>'],
    });
    expect(() => parseReport(noDisposition)).toThrow(
      new ReportError('the disposition-notification part has no Disposition field'),
    );
    expect(() => parseReport(mdn({ disposition: 'displayed' }))).toThrow(/no ';' between mode and type/);
  });
});

describe('parseReport: what is not a (readable) report', () => {
  it('a plain mail is other', async () => {
    const plain = await compose({
      from: 'Dr Martin <dr.martin@pro.test>',
      to: 'pfi@hopital.test',
      subject: 'Re: compte rendu',
      text: 'Bien reçu, merci.',
      attachments: [{ filename: 'note.txt', content: 'Content-Type: multipart/report\r\n' }],
    });
    expect(parseReport(plain)).toEqual({ kind: 'other' });
    expect(parseReport(buf('Subject: hello\r\n\r\nbody'))).toEqual({ kind: 'other' });
    expect(parseReport(Buffer.alloc(0))).toEqual({ kind: 'other' });
  });

  it('a delivery-status report without its delivery-status part is a ReportError', () => {
    const raw = report({ parts: [notification('...'), returnedHeaders()] });
    expect(() => parseReport(raw)).toThrow(
      new ReportError('multipart/report with report-type=delivery-status has no message/delivery-status part'),
    );
  });

  it('says precisely what is wrong', () => {
    const missing = (drop: string) => report({ parts: [deliveryStatus([BOUNCED.filter((l) => !l.startsWith(drop))])] });
    expect(() => parseReport(missing('Action'))).toThrow(
      new ReportError('recipient block 1 (nobody@pro.test): no Action field'),
    );
    expect(() => parseReport(missing('Status'))).toThrow(
      new ReportError('recipient block 1 (nobody@pro.test): no Status field'),
    );
    expect(() => parseReport(missing('Final-Recipient'))).toThrow(
      new ReportError('recipient block 1: no Final-Recipient field'),
    );
    const badAction = report({
      parts: [deliveryStatus([BOUNCED.map((l) => l.replace('Action: failed', 'Action: exploded'))])],
    });
    expect(() => parseReport(badAction)).toThrow(/unknown Action "exploded"/);
    const badStatus = report({
      parts: [deliveryStatus([BOUNCED.map((l) => l.replace('Status: 5.1.1', 'Status: 550'))])],
    });
    expect(() => parseReport(badStatus)).toThrow(/malformed Status "550"/);
    const noRecipient = report({ parts: [deliveryStatus([])] });
    expect(() => parseReport(noRecipient)).toThrow(
      new ReportError('the delivery-status part has no per-recipient fields'),
    );
    const truncated = bounce().subarray(0, 1500);
    expect(() => parseReport(truncated)).toThrow(/^malformed MIME structure: no closing delimiter/);
    const noBoundary = buf('Content-Type: multipart/report; report-type=delivery-status\r\n\r\n--x\r\n\r\n--x--\r\n');
    expect(() => parseReport(noBoundary)).toThrow(/no boundary parameter/);
  });

  it('garbage bytes: other or ReportError, never anything else', () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
    const samples: Buffer[] = [
      Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x0d]),
      Buffer.from('\r\n\r\n\r\n'),
      Buffer.from(':::\n: :\n\n'),
    ];
    for (let i = 0; i < 50; i++)
      samples.push(Buffer.from(Array.from({ length: Math.floor(rnd() * 2000) }, () => Math.floor(rnd() * 256))));
    samples.push(buf('Content-Type: multipart/report; boundary=x\r\n\r\n' + '\u0000\u00ff'.repeat(100)));
    for (const s of samples) {
      try {
        expect(parseReport(s)).toEqual({ kind: 'other' });
      } catch (e) {
        expect(e).toBeInstanceOf(ReportError);
      }
    }
  });

  it('fuzz: 200 random mutations of a valid DSN never throw anything but ReportError (and never from a bug)', () => {
    let seed = 20240514;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
    const int = (n: number) => Math.floor(rnd() * n);
    const base = report({ parts: [notification('...'), deliveryStatus([DELIVERED, BOUNCED]), returnedHeaders()] });
    const snippets = [
      '\r\n',
      '\n',
      '\r\n\r\n',
      ':',
      ';',
      '--',
      `--${B}`,
      `--${B}--`,
      '=?UTF-8?B?',
      '=',
      '(',
      '<',
      '\t',
      '\u0000',
      'Action: ',
      'Status: 9.9.9',
    ];
    const outcomes = { dsn: 0, other: 0, error: 0 };
    for (let i = 0; i < 200; i++) {
      const b = Buffer.from(base);
      let m: Buffer = b;
      const kind = int(6);
      const at = int(b.length);
      if (kind === 0)
        for (let k = 0; k < 1 + int(8); k++) b[int(b.length)] = int(256); // flip bytes
      else if (kind === 1)
        m = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(200)))]); // cut a span
      else if (kind === 2)
        // insert
        m = Buffer.concat([b.subarray(0, at), Buffer.from(snippets[int(snippets.length)]!, 'latin1'), b.subarray(at)]);
      else if (kind === 3)
        m = b.subarray(0, at); // truncate
      else if (kind === 4)
        m = Buffer.concat([b.subarray(0, at), b.subarray(int(b.length))]); // splice
      else
        m = Buffer.from(
          b.toString('latin1').replace(/\r\n/g, () => (rnd() < 0.3 ? '\n' : rnd() < 0.1 ? '\r' : '\r\n')),
          'latin1',
        ); // mixed line ends
      try {
        const r = parseReport(m);
        outcomes[r.kind === 'dsn' ? 'dsn' : 'other']++;
        if (r.kind === 'dsn')
          for (const x of r.recipients)
            expect(['failed', 'delayed', 'delivered', 'relayed', 'expanded']).toContain(x.action);
      } catch (e) {
        expect(e).toBeInstanceOf(ReportError);
        const cause = (e as Error).cause;
        if (cause !== undefined) expect(cause).toBeInstanceOf(MimeError); // an unexpected error would be a parser bug
        outcomes.error++;
      }
    }
    expect(outcomes.dsn).toBeGreaterThan(20); // most mutations leave a readable report
  });
});

describe('readHeaders', () => {
  it('unfolds, lower-cases names, keeps the first occurrence, decodes encoded words, CRLF or LF', () => {
    for (const eol of ['\r\n', '\n'] as const) {
      const h = readHeaders(mdn({ disposition: 'manual-action/MDN-sent-manually; displayed', eol }));
      expect(h.get('subject')).toBe("Accusé de lecture (affiché) - Compte rendu d'hospitalisation");
      expect(h.get('from')).toBe('Dr François Martin <dr.martin@pro.test>');
      expect(h.get('message-id')).toBe('<7c1e0f3a-2b9d-4e6f-8a10-5d2c9e1b4f00@pro.test>');
      expect(h.get('content-type')).toBe(
        'multipart/report; report-type=disposition-notification; boundary="------------mdnA1b2C3d4E5f6"',
      );
    }
    const h = readHeaders(success());
    expect(h.get('received')).toBe(
      'by mx.hopital.test (Postfix) id 4VbQ1w0GZ2z9vB; Tue, 14 May 2024 10:12:04 +0200 (CEST)',
    );
    expect(h.has('Received')).toBe(false);
    expect(h.has('reporting-mta')).toBe(false); // body fields are not headers
  });

  it('decodes B and Q words, joins adjacent ones (a character split across two words), leaves unknown charsets', () => {
    const cr = Buffer.from('Compte rendu – séjour', 'utf8');
    const raw = buf(
      lines([
        `Subject: =?utf-8?B?${cr.subarray(0, 15).toString('base64')}?=`,
        `  =?UTF-8?B?${cr.subarray(15).toString('base64')}?=`,
        'To: =?iso-8859-1?q?J=E9r=F4me?= <j@pro.test>, =?x-unknown?Q?abc?= <k@pro.test>',
        'In-Reply-To: <a=?b?q?c?=@d>',
        '',
        'body',
      ]),
    );
    const h = readHeaders(raw);
    expect(h.get('subject')).toBe('Compte rendu – séjour');
    expect(h.get('to')).toBe('Jérôme <j@pro.test>, =?x-unknown?Q?abc?= <k@pro.test>');
    expect(h.get('in-reply-to')).toBe('<a=?b?q?c?=@d>');
  });

  it('reads raw UTF-8 headers (RFC 6532), skips junk lines, never throws', async () => {
    const h = readHeaders(buf('From blah Tue May 14\r\nSubject: séjour\r\nnot a header\r\nX-A: 1\r\n\r\nbody: no'));
    expect([...h.entries()]).toEqual([
      ['subject', 'séjour'],
      ['x-a', '1'],
    ]);
    expect(readHeaders(Buffer.alloc(0)).size).toBe(0);
    expect(readHeaders(Buffer.from([0xff, 0x00, 0x3a, 0x0a])).size).toBe(0);
    const composed = await compose({
      from: 'a@b',
      to: 'c@d',
      subject: 'Ça marche ? Très bien, merci beaucoup pour ce compte rendu très détaillé',
      messageId: '<m1@b>',
      text: 'x',
    });
    expect(readHeaders(composed).get('subject')).toBe(
      'Ça marche ? Très bien, merci beaucoup pour ce compte rendu très détaillé',
    );
    expect(readHeaders(composed).get('message-id')).toBe('<m1@b>');
  });
});

/** Header block and body of a raw message with CRLF line ends. */
function splitRaw(raw: Buffer): { head: Buffer; body: Buffer } {
  const at = raw.indexOf('\r\n\r\n');
  return { head: raw.subarray(0, at), body: raw.subarray(at + 4) };
}
