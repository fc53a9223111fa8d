import type { ChannelConfig } from '../config/channels.js';
import type { Flow } from './flow.js';
import { forwardFlow } from './forward.js';
import { journalFlow } from './journal.js';
import { lpsFlow } from './lps/index.js';
import { pamFlow } from './pam.js';
import { transmissionFlow } from './transmission/index.js';

export type { Flow, FlowContext } from './flow.js';

/** The flows a channel file may name (the schema's `flow` enum lists the same ones). */
export const FLOWS: Record<ChannelConfig['flow'], Flow> = {
  journal: journalFlow,
  forward: forwardFlow,
  transmission: transmissionFlow,
  pam: pamFlow,
  lps: lpsFlow,
};
