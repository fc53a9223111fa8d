import { readAck } from '../hl7v2/ack.js';
import { Hl7Message } from '../hl7v2/message.js';
import { deliveries } from '../util/metrics.js';
import type { MllpChannel } from '../config/channels.js';
import type { Flow } from './flow.js';

/**
 * Send the message unchanged to every destination and keep each answer. A destination that said
 * AA (or CA) is not served again on retry; AE/AR or no answer is a failed attempt.
 */
export const forwardFlow: Flow<MllpChannel> = async (ctx) => {
  const done = await ctx.journal.deliveredTo(ctx.journalId);
  const failures: string[] = [];
  for (const dest of ctx.channel.destinations) {
    if (done.has(dest.id)) continue;
    const client = ctx.clients.get(dest.id);
    if (!client) throw new Error(`no client for destination ${dest.id}`);
    try {
      const ack = readAck(Hl7Message.parse(await client.send(ctx.raw)));
      if (ack.code === 'AA' || ack.code === 'CA') {
        await ctx.journal.markDelivered(ctx.journalId, dest.id, ack.code);
        deliveries.inc({ channel: ctx.channel.id, destination: dest.id, outcome: 'delivered' });
        continue;
      }
      const why = ack.errors.map((e) => [e.code, e.text].filter(Boolean).join(' ')).join('; ');
      failures.push(`${dest.id}: ${ack.code}${why ? ` (${why})` : ''}`);
    } catch (e) {
      failures.push(`${dest.id}: ${(e as Error).message}`);
    }
    deliveries.inc({ channel: ctx.channel.id, destination: dest.id, outcome: 'failed' });
  }
  if (failures.length) throw new Error(`delivery failed: ${failures.join('; ')}`);
};
