import { resolveFrom } from '../../config/channels.js';
import { loadTerminology } from '../../config/terminology.js';
import { PermanentError } from '../../errors.js';
import { Hl7Message } from '../../hl7v2/message.js';
import { ERROR_TEXT } from '../../hl7v2/errors.js';
import type { TransmissionChannel } from '../../config/channels.js';
import type { Flow, FlowContext } from '../flow.js';
import { readFlags } from './validate.js';
import { patientIds } from './metadata.js';
import { InterpretationError, interpret } from './interpret.js';
import { loadTransmissionMapping, type TransmissionMapping } from './mapping.js';

export type { Submission, Routes } from './interpret.js';

const mappings = new Map<string, TransmissionMapping>();

/**
 * The CREATEUR asked for business acknowledgements: a refused request gets a ZAM^Z01 N naming the
 * rule. Sent once (a retry skips it once the CREATEUR said AA); if it cannot be delivered the job
 * is retried, and the last attempt's dead letter says both.
 */
async function tellCreateur(
  ctx: FlowContext<TransmissionChannel>,
  msg: Hl7Message,
  e: InterpretationError,
  refusal: string,
): Promise<void> {
  if (!ctx.acks) {
    ctx.log.warn(
      { channel: ctx.channel.id, journalId: ctx.journalId },
      'business acknowledgement asked, but the channel has no businessAcks address',
    );
    return;
  }
  const error = {
    hl7Code: e.code,
    hl7Label: ERROR_TEXT[e.code],
    code: e.rule,
    label: 'Demande refusée par la PFI',
    system: 'PFIERRORCODE',
    text: e.message,
  };
  try {
    await ctx.acks.send(ctx.journalId, 'Z01', msg, { kind: 'Z01', ok: false, error }, 'ZAM^Z01 N sent to the CREATEUR');
  } catch (err) {
    throw new Error(`${refusal}; business acknowledgement ZAM^Z01 not delivered: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * Flow A, part 1: read a transmission request into a submission (documents, XDS metadata, routes)
 * and keep it in the journal. A request the volet refuses once its document is read is a permanent
 * failure, named by its rule: retrying cannot fix it.
 */
export const transmissionFlow: Flow<TransmissionChannel> = async (ctx) => {
  const file = resolveFrom(ctx.channel.mapping);
  let mapping = mappings.get(file);
  if (!mapping) mappings.set(file, (mapping = loadTransmissionMapping(file)));
  const msg = Hl7Message.parse(ctx.raw, { defaultCharset: ctx.channel.source.defaultCharset });
  let submission;
  try {
    submission = interpret(msg, { terminology: loadTerminology(), mapping });
    // The identity store's view of the patient: the DMP gate, and a cross-check of the INS.
    const ids = patientIds(msg).all.map((i) => ({ id: i.id, authority: i.authority }));
    const gate = await ctx.identity.dmpGate(ids);
    const knownIns = gate.patient?.ins;
    const sentIns = submission.documents[0]?.entry.patientId;
    const insMatches =
      knownIns && sentIns?.type === 'NH'
        ? knownIns.matricule === sentIns.id && knownIns.oid === sentIns.authority
        : undefined;
    submission.patient = {
      storeId: gate.patient?.id,
      qualified: !!gate.patient?.qualified,
      dmpAllowed: gate.allowed,
      reason: gate.reason,
      insMatches,
    };
    if (insMatches === false && gate.patient?.qualified) {
      const text =
        `the INS sent (${sentIns!.id}) differs from the qualified INS of patient ${gate.patient.id} ` +
        'in the identity store';
      if (ctx.channel.identityCheck === 'reject')
        throw new InterpretationError('PID-3-equals-known-identity', 207, text, {
          segment: 'PID',
          sequence: 1,
          field: 3,
        });
      await ctx.journal.record(ctx.journalId, { status: 'processing', detail: `warning: ${text}` });
    }
  } catch (e) {
    if (!(e instanceof InterpretationError)) throw e;
    const refusal = `[${e.rule}] ${e.code} ${e.message}`;
    if (readFlags(msg).flags.ACK_RECEPTION) await tellCreateur(ctx, msg, e, refusal);
    throw new PermanentError(refusal);
  }
  await ctx.journal.saveResult(ctx.journalId, 'submission', submission);
  const note = (destination: string, detail: string) =>
    ctx.journal.note(ctx.journalId, { status: 'processed', destination, detail });
  if (submission.routes.dmp) {
    if (ctx.dmp) await ctx.dmp.schedule(ctx.journalId);
    else await note('dmp', 'DESTDMP=Y, but the channel has no dmp destination: not sent to the DMP');
  }
  if (submission.routes.mssantePS || submission.routes.mssantePatient) {
    if (ctx.mssante) await ctx.mssante.schedule(ctx.journalId);
    else await note('mssante', 'MSSanté asked, but the channel has no mssante destination: not sent');
  }
};
