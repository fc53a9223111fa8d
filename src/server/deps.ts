import type { Redis } from 'ioredis';
import type { ChannelRuntime } from '../channels/runtime.js';
import type { IdentityStore } from '../identity/store.js';
import type { Journal } from '../journal/journal.js';
import type { Settings } from '../settings.js';
import type { Logger } from '../util/log.js';

/** What the admin API works with; each route plugin picks the part it needs. */
export interface AppDeps {
  settings: Settings;
  channels: ChannelRuntime[];
  journal: Journal;
  redis: Redis;
  identity: IdentityStore;
  log: Logger;
}

/** The routes on messages and their sendings: the journal, and the channels to act through. */
export type JournalDeps = Pick<AppDeps, 'journal' | 'channels'>;

/** Channels by id: a journal entry names its channel, the routes act through it. */
export function channelsById(channels: ChannelRuntime[]) {
  return new Map(channels.map((c) => [c.config.id, c]));
}

/** Params of the routes on one message, submission or patient. */
export const idParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;

/** Route types of the routes with an :id. */
export interface ById {
  Params: { id: string };
}
