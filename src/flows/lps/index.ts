/**
 * Flow B (volet "Transmission au LPS d'un document CDA provenant d'un courriel MSSanté"): a mail of
 * the application mailbox, stored by the Inbox, becomes an MDM for the DPI (the CONSOMMATEUR, the
 * channel's first destination). Its ACK decides the answer to the sender: AA → integrated (MDN
 * `processed` when asked); AE/AR → MDN with the DPI's error (or a plain notification when no MDN was
 * asked) and a copy to the hospital's manual mailbox. Each step is a journal event; each mail sent
 * is marked delivered, so that a retry sends neither the MDM nor an answer twice.
 */
import type { Transporter } from 'nodemailer';
import { smtpTransport } from '../../mail/smtp.js';
import { PermanentError } from '../../errors.js';
import type { LpsChannel } from '../../config/channels.js';
import type { Flow, FlowContext as AnyContext } from '../flow.js';

type FlowContext = AnyContext<LpsChannel>;
import { readAck } from '../../hl7v2/ack.js';
import { encodeString } from '../../hl7v2/charset.js';
import { Hl7Message } from '../../hl7v2/message.js';
import { deliveries } from '../../util/metrics.js';
import { newId } from '../../util/id.js';
import { MimeError } from '../../mime/multipart.js';
import { readMail, type ReceivedMailParts } from './mail.js';
import { buildMdm } from './mdm.js';
import { buildMdn, buildNotification } from './notify.js';
import { DEFAULT_LIMITS, IntakeError, readXdm, type Intake } from '../../xdm/read.js';

const transports = new Map<string, Transporter>();

/** One pooled SMTP transport per channel, for the answers to senders. */
function transport(channel: LpsChannel): Transporter {
  let t = transports.get(channel.id);
  if (!t)
    transports.set(channel.id, (t = smtpTransport(channel.intake.smtp, { maxConnections: 2, timeoutMs: 60_000 })));
  return t;
}

/** The PFI's own refusals (the archive, before any DPI) reuse the volet's "other" code. */
const OTHER = { code: '906', label: "Erreur 'Autre'" };

export const lpsFlow: Flow<LpsChannel> = async (ctx) => {
  let mail: ReceivedMailParts;
  try {
    mail = readMail(ctx.raw);
  } catch (e) {
    // A mail whose MIME structure cannot be read will not read better on a retry.
    if (e instanceof MimeError) throw new PermanentError(`[MAIL-mime] ${e.message}`);
    throw e;
  }
  const intake = ctx.channel.intake;
  const done = await ctx.journal.deliveredTo(ctx.journalId);
  const zip = mail.attachments.find((a) => /^ihe_xdm\.zip$/i.test(a.filename));
  if (!zip) {
    // A plain mail (text, a PDF alone): never dropped, handed to a person.
    const forwarded = intake.noXdm === 'forward' && !!intake.manualMailbox;
    if (forwarded && intake.manualMailbox && !done.has('manual')) {
      await send(
        ctx,
        'manual',
        intake.manualMailbox,
        forwardOf(ctx, mail, 'no IHE_XDM.ZIP: to be handled by hand'),
        mail,
      );
    }
    await note(
      ctx,
      'manual',
      `no IHE_XDM.ZIP attachment: ${forwarded ? `forwarded to ${intake.manualMailbox}` : 'kept for manual handling'}`,
    );
    deliveries.inc({ channel: ctx.channel.id, destination: 'dpi', outcome: 'manual' });
    return;
  }

  let received: Intake;
  try {
    received = readXdm(zip.content, { ...DEFAULT_LIMITS, maxExpandedBytes: intake.maxExpandedBytes });
  } catch (e) {
    if (!(e instanceof IntakeError)) throw e;
    await answer(ctx, mail, done, {
      code: OTHER.code,
      label: `${OTHER.label} : archive IHE_XDM refusée (${e.reason})`,
    });
    deliveries.inc({ channel: ctx.channel.id, destination: 'dpi', outcome: 'refused-xdm' });
    throw new PermanentError(`[XDM-${e.reason}] ${e.message}`);
  }

  // Searchable from now on by document and patient (GET /messages?documentId= / ?patientId=).
  await ctx.journal.identify(ctx.journalId, {
    documentIds: received.documents.map((d) => d.entry.uniqueId),
    patientIds: received.patient.ins ? [received.patient.ins.matricule] : received.patient.ids.map((i) => i.id),
  });
  const dpi = ctx.channel.destinations[0]!;
  let ackCode = [...done].includes(dpi.id) ? 'AA' : undefined;
  let error: { code: string; label: string } | undefined;
  if (!ackCode) {
    const mdm = buildMdm(
      received,
      { from: mail.from, to: mail.to, replyTo: mail.replyTo, subject: mail.subject, body: mail.body },
      intake.parties,
      { controlId: ctx.journalId },
    );
    let ack: Hl7Message;
    try {
      ack = Hl7Message.parse(await ctx.clients.get(dpi.id)!.send(encodeString(mdm, 'UNICODE UTF-8')));
    } catch (e) {
      // No answer: retried; at the last attempt the mail is parked for a person, who is told.
      if (ctx.attempt >= ctx.channel.processing.attempts && intake.manualMailbox && !done.has('manual')) {
        await send(
          ctx,
          'manual',
          intake.manualMailbox,
          forwardOf(ctx, mail, `the DPI did not answer after ${ctx.attempt} attempts: to be integrated by hand`),
          mail,
        );
      }
      throw e;
    }
    const reading = readAck(ack);
    ackCode = reading.code;
    if (ackCode !== 'AA' && ackCode !== 'CA') {
      error = {
        code: ack.get('ERR-5.1') || ack.get('ERR-3.1') || OTHER.code,
        label: ack.get('ERR-5.2') || ack.get('ERR-3.2') || OTHER.label,
      };
    }
    await ctx.journal.recordMany([
      {
        id: ctx.journalId,
        events: [
          {
            status: error ? 'rejected' : 'delivered',
            destination: dpi.id,
            ackCode,
            detail: error ? `DPI: not integrated, ${error.code} ${error.label}` : 'DPI: integrated',
            ...(error ? { error: { code: error.code, message: error.label } } : {}),
          },
        ],
        field: [`dest:${dpi.id}`, ackCode],
      },
    ]);
    deliveries.inc({ channel: ctx.channel.id, destination: 'dpi', outcome: error ? 'rejected' : 'integrated' });
  }
  if (!error) {
    if (mail.mdnTo && !done.has('mdn')) await send(ctx, 'mdn', mail.mdnTo, buildMdn(notifyInput(ctx, mail)), mail);
    return;
  }
  await answer(ctx, mail, done, error);
  throw new PermanentError(`[DPI-${error.code}] the DPI refused the document: ${error.label}`);
};

/** The sender hears why (MDN if asked, else a plain notification); the manual mailbox gets a copy. */
async function answer(
  ctx: FlowContext,
  mail: ReceivedMailParts,
  done: Set<string>,
  error: { code: string; label: string },
): Promise<void> {
  const input = { ...notifyInput(ctx, mail), error };
  const to = mail.mdnTo ?? mail.replyTo ?? mail.from;
  if (to && !done.has('mdn')) await send(ctx, 'mdn', to, mail.mdnTo ? buildMdn(input) : buildNotification(input), mail);
  const manual = ctx.channel.intake.manualMailbox;
  if (manual && !done.has('manual'))
    await send(
      ctx,
      'manual',
      manual,
      buildNotification({ ...input, to: manual, messageId: `<${newId()}.manual@${domain(ctx)}>` }),
      mail,
    );
}

function notifyInput(ctx: FlowContext, mail: ReceivedMailParts) {
  return {
    from: ours(ctx, mail),
    to: mail.mdnTo ?? mail.replyTo ?? mail.from,
    subject: mail.subject,
    originalMessageId: mail.messageId,
    originalRecipient: mail.originalRecipient ?? mail.to,
    body: mail.body,
    attachments: mail.attachments,
    original: ctx.raw,
    messageId: `<${ctx.journalId}.answer@${domain(ctx)}>`,
  };
}

function forwardOf(ctx: FlowContext, mail: ReceivedMailParts, why: string): Buffer {
  return buildNotification({
    ...notifyInput(ctx, mail),
    to: ctx.channel.intake.manualMailbox!,
    messageId: `<${ctx.journalId}.manual@${domain(ctx)}>`,
    error: { code: 'MANUEL', label: why },
  });
}

function domain(ctx: FlowContext): string {
  return ours(ctx).split('@')[1] ?? 'pfi';
}

/** Our side of a conversation: the application mailbox the mail reached (the channel may watch several). */
function ours(ctx: FlowContext, mail?: ReceivedMailParts): string {
  const accounts = ctx.channel.source.accounts.map((a) => a.user.toLowerCase());
  const to = mail?.to.toLowerCase();
  return to && accounts.includes(to) ? to : accounts[0]!;
}

async function send(
  ctx: FlowContext,
  destination: 'mdn' | 'manual',
  to: string,
  raw: Buffer,
  mail?: ReceivedMailParts,
): Promise<void> {
  // An MDN goes with a null return path (RFC 8098 §2.1): nothing answers it automatically.
  const isMdn = destination === 'mdn' && !!mail?.mdnTo;
  await transport(ctx.channel).sendMail({ envelope: { from: isMdn ? '' : ours(ctx, mail), to: [to] }, raw });
  await ctx.journal.note(
    ctx.journalId,
    {
      status: 'delivered',
      destination,
      detail: destination === 'mdn' ? 'answer sent to the sender' : 'copy sent to the manual mailbox',
    },
    [`dest:${destination}`, 'sent'],
  );
}

async function note(ctx: FlowContext, destination: string, detail: string): Promise<void> {
  await ctx.journal.note(ctx.journalId, { status: 'processed', destination, detail });
}
