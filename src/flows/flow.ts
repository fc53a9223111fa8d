import type { BusinessAcks } from '../acks/business-acks.js';
import type { ChannelConfig } from '../config/channels.js';
import type { DmpDelivery } from '../dmp/delivery.js';
import type { MssDelivery } from '../mssante/delivery.js';
import type { IdentityStore } from '../identity/store.js';
import type { Journal } from '../journal/journal.js';
import type { MllpClient } from '../mllp/client.js';
import type { Logger } from '../util/log.js';

/** Everything a flow may use to process one accepted message of a channel of type C. */
export interface FlowContext<C extends ChannelConfig = ChannelConfig> {
  journalId: string;
  channel: C;
  /** The message exactly as received. */
  raw: Buffer;
  journal: Journal;
  log: Logger;
  /** One long-lived client per MLLP destination of the channel, by destination id. */
  clients: Map<string, MllpClient>;
  /** Identities and DMP consent from the PAM feed. */
  identity: IdentityStore;
  attempt: number;
  /** The CREATEUR's listener for ZAMs (channel `businessAcks`), when it has one. */
  acks?: BusinessAcks;
  /** The channel's DMP delivery (channel `dmp`), when it has one. */
  dmp?: DmpDelivery;
  /** The channel's MSSanté delivery (channel `mssante`), when it has one. */
  mssante?: MssDelivery;
}

/** Throws to ask for a retry (with backoff); the worker dead-letters after the channel's attempts. */
export type Flow<C extends ChannelConfig = ChannelConfig> = (ctx: FlowContext<C>) => Promise<void>;
