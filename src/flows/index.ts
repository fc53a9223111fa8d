import type { ChannelConfig } from '../config/channels.js';
import type { FlowContext } from './flow.js';
import { forwardFlow } from './forward.js';
import { journalFlow } from './journal.js';
import { lpsFlow } from './lps/index.js';
import { pamFlow } from './pam.js';
import { transmissionFlow } from './transmission/index.js';

export type { Flow, FlowContext } from './flow.js';

/** The flow a channel names (the schema's `flow` enum lists the same ones), bound to its channel. */
export function flowOf(channel: ChannelConfig): (ctx: Omit<FlowContext, 'channel'>) => Promise<void> {
  switch (channel.flow) {
    case 'journal':
      return (ctx) => journalFlow({ ...ctx, channel });
    case 'forward':
      return (ctx) => forwardFlow({ ...ctx, channel });
    case 'pam':
      return (ctx) => pamFlow({ ...ctx, channel });
    case 'transmission':
      return (ctx) => transmissionFlow({ ...ctx, channel });
    case 'lps':
      return (ctx) => lpsFlow({ ...ctx, channel });
  }
}
