import { PamError, readPatientUpdate } from '../identity/pam.js';
import { Hl7Message } from '../hl7v2/message.js';
import { PermanentError } from '../errors.js';
import type { MllpChannel } from '../config/channels.js';
import type { Flow } from './flow.js';

/**
 * Flow C: an ADT of the hospital's patient administration (IHE PAM, French extension 2.11) updates
 * the identity and consent store. A message the reader refuses cannot be fixed by retrying.
 */
export const pamFlow: Flow<MllpChannel> = async (ctx) => {
  let update;
  try {
    update = readPatientUpdate(Hl7Message.parse(ctx.raw, { defaultCharset: ctx.channel.source.defaultCharset }));
  } catch (e) {
    if (e instanceof PamError) throw new PermanentError(`${e.code} ${e.message}`);
    throw e;
  }
  const patient = await ctx.identity.apply(update, ctx.journalId);
  await ctx.journal.saveResult(ctx.journalId, 'patient', {
    patientId: patient.id,
    event: update.event,
    eventTime: update.eventTime,
  });
};
