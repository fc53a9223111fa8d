import type { FastifyInstance } from 'fastify';
import type { ChannelRuntime } from '../channels/runtime.js';
import type { Role } from '../settings.js';
import type { Logger } from '../util/log.js';

/**
 * Hosts the channels inside Fastify's lifecycle: listeners and workers start when the app is
 * ready and stop, listeners first, when it closes.
 */
export async function channelsPlugin(
  app: FastifyInstance,
  opts: { channels: ChannelRuntime[]; role: Role; log: Logger },
) {
  app.addHook('onReady', async () => {
    for (const c of opts.channels) {
      if (opts.role !== 'worker') await c.startListener();
      if (opts.role !== 'ingest') c.startWorker();
    }
  });
  app.addHook('onClose', async () => {
    await Promise.all(opts.channels.map((c) => c.stop()));
  });
}
// Registered without encapsulation so that the hooks see the root instance's lifecycle.
(channelsPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
