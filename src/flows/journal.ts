import type { MllpChannel } from '../config/channels.js';
import type { Flow } from './flow.js';

/** Keep the message in the journal, nothing else: the channel is a durable inbox. */
export const journalFlow: Flow<MllpChannel> = async () => {};
