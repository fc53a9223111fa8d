import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveFrom } from '../../channels/config.js';
import { Hl7Message } from '../../hl7v2/message.js';
import { packageRoot } from '../../util/paths.js';
import { Terminology } from '../../xds/terminology.js';
import { PermanentError, type Flow } from '../flow.js';
import { InterpretationError, interpret } from './interpret.js';
import { loadTransmissionMapping, type TransmissionMapping } from './mapping.js';

export type { Submission, Routes } from './interpret.js';

const mappings = new Map<string, TransmissionMapping>();
let terminology: Terminology | undefined;

/** The operator's terminology ($PFI_HOME/mappings/terminology.json) or the one shipped with the engine. */
export function loadTerminology(): Terminology {
  if (!terminology) {
    const own = resolveFrom('mappings/terminology.json');
    terminology = Terminology.load(existsSync(own) ? own : join(packageRoot(), 'mappings/terminology.json'));
  }
  return terminology;
}

/**
 * Flow A, part 1: read a transmission request into a submission (documents, XDS metadata, routes)
 * and keep it in the journal. A request the volet refuses once its document is read is a permanent
 * failure, named by its rule: retrying cannot fix it.
 */
export const transmissionFlow: Flow = async (ctx) => {
  const file = resolveFrom(ctx.channel.mapping!);
  let mapping = mappings.get(file);
  if (!mapping) mappings.set(file, (mapping = loadTransmissionMapping(file)));
  let submission;
  try {
    submission = interpret(Hl7Message.parse(ctx.raw, { defaultCharset: ctx.channel.source.defaultCharset }), { terminology: loadTerminology(), mapping });
  } catch (e) {
    if (e instanceof InterpretationError) throw new PermanentError(`[${e.rule}] ${e.code} ${e.message}`);
    throw e;
  }
  await ctx.journal.saveResult(ctx.journalId, 'submission', submission);
};
