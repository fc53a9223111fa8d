import { readAck } from '../hl7v2/ack.js';
import { charsetFromMsh18, encodeString, type Hl7Charset } from '../hl7v2/charset.js';
import { readMsh } from '../hl7v2/header.js';
import { Hl7Message } from '../hl7v2/message.js';
import { buildZam, type ZamOptions } from '../hl7v2/zam.js';
import type { MllpClient } from '../mllp/client.js';
import { newId } from '../util/id.js';

/**
 * Sends a ZAM business acknowledgement about `request` (the message as received) to the CREATEUR,
 * in the request's charset; resolves with its ACK code, throws unless AA/CA (the caller retries).
 */
export async function sendZam(client: MllpClient, request: Hl7Message, defaultCharset: Hl7Charset, zam: Omit<ZamOptions, 'original' | 'controlId'>): Promise<string> {
  const original = readMsh(request);
  const text = buildZam({ ...zam, original, controlId: newId() });
  const charset = charsetFromMsh18(original.charsetRaw, defaultCharset) ?? 'UNICODE UTF-8';
  const ack = readAck(Hl7Message.parse(await client.send(encodeString(text, charset))));
  if (ack.code !== 'AA' && ack.code !== 'CA') throw new Error(`the CREATEUR answered ${ack.code} to ZAM^${zam.kind}`);
  return ack.code;
}
