import type { FastifyInstance } from 'fastify';
import type { ChannelRuntime } from '../channels/runtime.js';
import { acksOut, deliveries, messagesIn, messagesOut, queueDepth, registry } from '../util/metrics.js';
import type { AppDeps } from './deps.js';

const healthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    redis: { type: 'string' },
    listeners: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

const counts = { type: 'object', additionalProperties: { type: 'integer' } } as const;
const list = { type: 'array', items: { type: 'string' } } as const;

const channelSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    description: { type: 'string' },
    flow: { type: 'string' },
    port: { type: 'integer' },
    tls: { type: 'boolean' },
    listener: { type: 'string' },
    connections: { type: 'integer' },
    queue: counts,
    counts: {
      type: 'object',
      description: 'Since this process started',
      properties: {
        received: { type: 'integer' },
        acks: counts,
        processed: counts,
        dmp: {
          type: 'object',
          description: 'DMP sendings by outcome (accepted, refused, gated, retry, dead-lettered)',
          additionalProperties: { type: 'integer' },
        },
        mssante: {
          type: 'object',
          description:
            'MSSanté recipients by outcome (accepted, refused, dead-lettered, delivered, bounced, read, not-read, ' +
            'report-aside)',
          additionalProperties: { type: 'integer' },
        },
      },
    },
    dmpQueue: {
      type: 'object',
      description: 'Jobs of the DMP delivery queue (failed = dead letters)',
      additionalProperties: { type: 'integer' },
    },
    mssanteQueue: {
      type: 'object',
      description: 'Jobs of the MSSanté delivery queue',
      additionalProperties: { type: 'integer' },
    },
    accept: {
      type: 'array',
      items: { type: 'object', properties: { type: { type: 'string' }, events: list, versions: list } },
    },
    destinations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          type: { type: 'string' },
          host: { type: 'string' },
          port: { type: 'integer' },
        },
      },
    },
  },
} as const;

interface Metric {
  get(): Promise<{ values: { labels: Record<string, string | number | undefined>; value: number }[] }>;
}

/** Sums a counter's values that carry the given labels, by one more label (or all together). */
async function sum(metric: Metric, match: Record<string, string>, by?: string) {
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) {
    if (Object.entries(match).some(([label, value]) => v.labels[label] !== value)) continue;
    const k = by ? String(v.labels[by]) : 'all';
    out[k] = (out[k] ?? 0) + v.value;
  }
  return out;
}

/** This process's counters for one channel, read back from the Prometheus registry. */
async function countsOf(channel: string) {
  return {
    received: (await sum(messagesIn, { channel })).all ?? 0,
    acks: await sum(acksOut, { channel }, 'code'),
    processed: await sum(messagesOut, { channel }, 'outcome'),
    dmp: await sum(deliveries, { channel, destination: 'dmp' }, 'outcome'),
    mssante: await sum(deliveries, { channel, destination: 'mssante' }, 'outcome'),
  };
}

async function channelView(c: ChannelRuntime) {
  return {
    id: c.config.id,
    description: c.config.description,
    flow: c.config.flow,
    port: c.listeningPort ?? c.config.source.port,
    tls: !!c.config.source.tls,
    listener: c.listening ? 'up' : 'down',
    connections: c.connectionCount,
    queue: await c.counts().catch(() => ({})),
    ...(c.dmp ? { dmpQueue: await c.dmp.counts().catch(() => ({})) } : {}),
    ...(c.mssante ? { mssanteQueue: await c.mssante.counts().catch(() => ({})) } : {}),
    counts: await countsOf(c.config.id),
    accept: c.config.source.type === 'mllp' ? c.config.source.accept : [],
    destinations: c.config.destinations,
  };
}

/** What operations watch: health, Prometheus metrics, the channels' state; and the API's own description. */
export async function opsRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'channels' | 'redis' | 'settings'>) {
  const { channels, redis } = deps;
  const listenerOf = (c: ChannelRuntime) => {
    if (deps.settings.role === 'worker') return 'not-started (worker role)';
    return c.listening ? 'up' : 'down';
  };

  app.get(
    '/health',
    {
      config: { public: true },
      schema: {
        summary: 'Redis reachable and every MLLP listener up',
        security: [],
        response: { 200: healthSchema, 503: healthSchema },
      },
    },
    async (_req, reply) => {
      const redisOk = await redis.ping().then(
        () => true,
        () => false,
      );
      const listeners = Object.fromEntries(channels.map((c) => [c.config.id, listenerOf(c)]));
      const ok = redisOk && Object.values(listeners).every((s) => s !== 'down');
      const body = { status: ok ? 'ok' : 'degraded', redis: redisOk ? 'up' : 'down', listeners };
      return reply.code(ok ? 200 : 503).send(body);
    },
  );

  app.get(
    '/metrics',
    { config: { public: true }, schema: { summary: 'Prometheus metrics', security: [], produces: ['text/plain'] } },
    async (_req, reply) => {
      // Queue depths live in Redis: sampled at scrape time.
      await Promise.all(
        channels.map(async (c) => {
          const depths = await c.counts().catch(() => undefined);
          for (const [state, n] of Object.entries(depths ?? {})) queueDepth.set({ channel: c.config.id, state }, n);
        }),
      );
      return reply.type(registry.contentType).send(await registry.metrics());
    },
  );

  app.get(
    '/channels',
    {
      schema: {
        summary: 'Channels with their listener state, queue depths and message counts',
        response: { 200: { type: 'array', items: channelSchema } },
      },
    },
    async () => Promise.all(channels.map(channelView)),
  );

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
