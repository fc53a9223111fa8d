/**
 * Every Redis key the engine writes, in one place, under one prefix (PFI_REDIS_PREFIX, default `pfi`),
 * so that two engines can share a Redis and an operator can find what belongs to what. Scripts build
 * the journal's keys from the same prefix (src/redis/lua): one Redis, not a Redis Cluster.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/paths.js';

export class RedisKeys {
  constructor(readonly prefix = 'pfi') {}

  /** BullMQ's own prefix for the queues (`<prefix>-q:<queue>:...`). */
  get queues(): string {
    return `${this.prefix}-q`;
  }

  /** The journal: `m` (message hash), `raw`, `ev`, `res:<kind>`, `x:<index>`, `batch`, `dedup`. */
  journal(kind: string, id: string): string {
    return `${this.prefix}:${kind}:${id}`;
  }

  /** The DMP sending of a message (state machine: src/redis/lua/dmp-transition.lua). */
  dmpSending(channel: string, journalId: string): string {
    return `${this.prefix}:dmp:${channel}:s:${journalId}`;
  }

  /** A document the channel sent to the DMP, for replacements and ordering. */
  dmpDocument(channel: string, ins: string, uniqueId: string): string {
    return `${this.prefix}:dmp:${channel}:doc:${ins}|${uniqueId}`;
  }

  /** The MSSanté sending of a message: per recipient, the mail server's answer. */
  mssSending(channel: string, journalId: string): string {
    return `${this.prefix}:mss:${channel}:s:${journalId}`;
  }

  /** The business acknowledgements (ZAM) sent about a message, each once. */
  businessAcks(journalId: string): string {
    return `${this.prefix}:zam:${journalId}`;
  }

  /** The identity store: `p:<patient>`, `h:<patient>` (history), `x:<authority>|<id>` (identifier). */
  identity(kind: 'p' | 'h' | 'x', id: string): string {
    return `${this.prefix}:id:${kind}:${id}`;
  }
}

/** A Lua script of src/redis/lua, read once at start. */
export function luaScript(name: string): string {
  return readFileSync(join(packageRoot(), 'src/redis/lua', name), 'utf8');
}
