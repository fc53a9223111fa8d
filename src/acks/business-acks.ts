/**
 * The CREATEUR's listener for business acknowledgements (channel `businessAcks`): ZAM^Z01 (DMP, or a
 * request the engine refused), ZAM^Z02 (MSSanté delivery), ZAM^Z03 (MSSanté reading). Each ZAM about
 * a message is sent once: it is named (`Z01`, `Z01:dmp`, `Z02:<address>`...), and the name is kept
 * with the CREATEUR's ACK code once it answered AA/CA. A retry, a replayed report or a restarted
 * worker finds the name and sends nothing.
 */
import type { Redis } from 'ioredis';
import { readAck } from '../hl7v2/ack.js';
import { charsetFromMsh18, encodeString, type Hl7Charset } from '../hl7v2/charset.js';
import { readMsh } from '../hl7v2/header.js';
import { Hl7Message } from '../hl7v2/message.js';
import { buildZam, type ZamOptions } from '../hl7v2/zam.js';
import type { Journal } from '../journal/journal.js';
import type { MllpClient } from '../mllp/client.js';
import type { RedisKeys } from '../redis/keys.js';
import { newId } from '../util/id.js';
import type { Logger } from '../util/log.js';

export type Zam = Omit<ZamOptions, 'original' | 'controlId'>;

/** The journal's destination name for the CREATEUR's listener. */
export const BUSINESS_ACKS = 'business-acks';

export interface BusinessAcksDeps {
  /** The CREATEUR's listener; absent when the channel names none (asked ZAMs are then logged, not sent). */
  client?: MllpClient;
  redis: Redis;
  keys: RedisKeys;
  journal: Journal;
  log: Logger;
  channel: string;
  defaultCharset: Hl7Charset;
  retentionMs: number;
}

export class BusinessAcks {
  constructor(private readonly deps: BusinessAcksDeps) {}

  /**
   * Sends the ZAM called `name` about `request` (the message as received) unless it went out already.
   * Resolves with the CREATEUR's ACK code when it went out now; undefined when it had gone out before or
   * the channel has no listener. Throws when the CREATEUR does not accept it: the caller retries.
   */
  async send(
    journalId: string,
    name: string,
    request: Hl7Message,
    zam: Zam,
    detail: string,
  ): Promise<string | undefined> {
    const { client, redis, keys, journal, log } = this.deps;
    const key = keys.businessAcks(journalId);
    if (await redis.hexists(key, name)) return undefined;
    if (!client) {
      log.warn(
        { channel: this.deps.channel, journalId },
        `ZAM^${zam.kind} asked, but the channel has no businessAcks address`,
      );
      return undefined;
    }
    const code = await sendZam(client, request, this.deps.defaultCharset, zam);
    await redis.multi().hset(key, name, code).pexpire(key, this.deps.retentionMs).exec();
    await journal.note(journalId, { status: 'delivered', destination: BUSINESS_ACKS, ackCode: code, detail });
    return code;
  }

  /** The ZAMs sent about a message: name → the CREATEUR's ACK code. */
  async sent(journalId: string, redis: Redis = this.deps.redis): Promise<Record<string, string>> {
    return redis.hgetall(this.deps.keys.businessAcks(journalId));
  }

  /** A new outcome to tell (an operator's retry, a replay): the ZAM of that name may go out again. */
  async forget(journalId: string, name: string): Promise<void> {
    await this.deps.redis.hdel(this.deps.keys.businessAcks(journalId), name);
  }

  async close(): Promise<void> {
    await this.deps.client?.close();
  }
}

/**
 * Sends a ZAM about `request` to the CREATEUR, in the request's charset; resolves with its ACK code,
 * throws unless AA/CA.
 */
async function sendZam(client: MllpClient, request: Hl7Message, defaultCharset: Hl7Charset, zam: Zam): Promise<string> {
  const original = readMsh(request);
  const text = buildZam({ ...zam, original, controlId: newId() });
  const charset = charsetFromMsh18(original.charsetRaw, defaultCharset) ?? 'UNICODE UTF-8';
  const ack = readAck(Hl7Message.parse(await client.send(encodeString(text, charset))));
  if (ack.code !== 'AA' && ack.code !== 'CA') throw new Error(`the CREATEUR answered ${ack.code} to ZAM^${zam.kind}`);
  return ack.code;
}
