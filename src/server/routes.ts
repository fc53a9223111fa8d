import type { FastifyInstance } from 'fastify';
import type { Patient } from '../identity/store.js';
import type { MessageStatus } from '../journal/journal.js';
import { acksOut, deliveries, messagesIn, messagesOut, queueDepth, registry } from '../util/metrics.js';
import { problem, type AppDeps } from './app.js';

const problemSchema = {
  type: 'object',
  properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' } },
} as const;

const eventSchema = {
  type: 'object',
  properties: {
    at: { type: 'string' },
    status: { type: 'string' },
    detail: { type: 'string' },
    destination: { type: 'string' },
    ackCode: { type: 'string' },
    error: { type: 'object', properties: { code: {}, message: { type: 'string' }, location: { type: 'string' } } },
  },
} as const;

const entrySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    channel: { type: 'string' },
    receivedAt: { type: 'string' },
    status: { type: 'string' },
    ackCode: { type: 'string' },
    remote: { type: 'string' },
    size: { type: 'integer' },
    charset: { type: 'string' },
    controlId: { type: 'string', description: 'MSH-10' },
    sendingApplication: { type: 'string' },
    sendingFacility: { type: 'string' },
    messageType: { type: 'string' },
    version: { type: 'string' },
    documentIds: { type: 'array', items: { type: 'string' }, description: 'TXA-12 (and TXA-13 for a replacement)' },
    patientIds: { type: 'array', items: { type: 'string' }, description: 'PID-3 identifiers' },
    events: { type: 'array', items: eventSchema },
  },
} as const;

const healthSchema = {
  type: 'object',
  properties: { status: { type: 'string' }, redis: { type: 'string' }, listeners: { type: 'object', additionalProperties: { type: 'string' } } },
} as const;

const STATUSES: MessageStatus[] = ['received', 'acknowledged', 'rejected', 'duplicate', 'queued', 'processing', 'delivered', 'processed', 'failed', 'dead-lettered', 'discarded', 'replayed'];

/** This process's counters for one channel, read back from the Prometheus registry. */
async function countsOf(channel: string) {
  const sum = async (m: { get(): Promise<{ values: { labels: Record<string, string | number | undefined>; value: number }[] }> }, by?: string) => {
    const out: Record<string, number> = {};
    for (const v of (await m.get()).values) {
      if (v.labels.channel !== channel) continue;
      const k = by ? String(v.labels[by]) : 'all';
      out[k] = (out[k] ?? 0) + v.value;
    }
    return out;
  };
  const by: Record<string, Record<string, number>> = { dmp: {}, mssante: {} };
  for (const v of (await deliveries.get()).values) {
    const d = by[String(v.labels.destination)];
    if (v.labels.channel === channel && d) d[String(v.labels.outcome)] = (d[String(v.labels.outcome)] ?? 0) + v.value;
  }
  return { received: (await sum(messagesIn)).all ?? 0, acks: await sum(acksOut, 'code'), processed: await sum(messagesOut, 'outcome'), dmp: by.dmp, mssante: by.mssante };
}

const dmpStatusSchema = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: ['scheduled', 'held', 'cancelled', 'sending', 'accepted', 'refused', 'dead-lettered'] },
    at: { type: 'string' },
    sendAt: { type: 'string' },
    entries: { type: 'array', items: { type: 'string' }, description: 'DMP entryUUIDs' },
    error: { type: 'object', properties: { code: { type: 'string' }, text: { type: 'string' }, system: { type: 'string' } } },
    zam: { type: 'string', description: 'ACK code of the ZAM^Z01 sent to the CREATEUR' },
  },
} as const;

export async function routes(app: FastifyInstance, deps: AppDeps) {
  const { journal, channels, redis } = deps;
  const byId = new Map(channels.map((c) => [c.config.id, c]));

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
      const listeners = Object.fromEntries(
        channels.map((c) => [c.config.id, deps.settings.role === 'worker' ? 'not-started (worker role)' : c.listening ? 'up' : 'down']),
      );
      const ok = redisOk && Object.values(listeners).every((s) => s !== 'down');
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', redis: redisOk ? 'up' : 'down', listeners });
    },
  );

  app.get(
    '/metrics',
    { config: { public: true }, schema: { summary: 'Prometheus metrics', security: [], produces: ['text/plain'] } },
    async (_req, reply) => {
      await Promise.all(
        channels.map(async (c) => {
          const counts = await c.counts().catch(() => undefined);
          for (const [state, n] of Object.entries(counts ?? {})) queueDepth.set({ channel: c.config.id, state }, n);
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
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'string' },
                description: { type: 'string' },
                flow: { type: 'string' },
                port: { type: 'integer' },
                tls: { type: 'boolean' },
                listener: { type: 'string' },
                connections: { type: 'integer' },
                queue: { type: 'object', additionalProperties: { type: 'integer' } },
                counts: {
                  type: 'object',
                  description: 'Since this process started',
                  properties: {
                    received: { type: 'integer' },
                    acks: { type: 'object', additionalProperties: { type: 'integer' } },
                    processed: { type: 'object', additionalProperties: { type: 'integer' } },
                    dmp: { type: 'object', description: 'DMP sendings by outcome (accepted, refused, gated, retry, dead-lettered)', additionalProperties: { type: 'integer' } },
                    mssante: { type: 'object', description: 'MSSanté recipients by outcome (accepted, refused, dead-lettered, delivered, bounced, read, not-read, report-aside)', additionalProperties: { type: 'integer' } },
                  },
                },
                dmpQueue: { type: 'object', description: 'Jobs of the DMP delivery queue (failed = dead letters)', additionalProperties: { type: 'integer' } },
                mssanteQueue: { type: 'object', description: 'Jobs of the MSSanté delivery queue', additionalProperties: { type: 'integer' } },
                accept: { type: 'array', items: { type: 'object', properties: { type: { type: 'string' }, events: { type: 'array', items: { type: 'string' } }, versions: { type: 'array', items: { type: 'string' } } } } },
                destinations: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, type: { type: 'string' }, host: { type: 'string' }, port: { type: 'integer' } } } },
              },
            },
          },
        },
      },
    },
    async () =>
      Promise.all(
        channels.map(async (c) => ({
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
          accept: c.config.source.accept,
          destinations: c.config.destinations,
        })),
      ),
  );

  app.get<{ Params: { id: string } }>(
    '/messages/:id',
    {
      schema: {
        summary: 'One message of the journal with its status history',
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        response: { 200: entrySchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const e = await journal.get(req.params.id);
      return e ?? problem(reply, 404, 'Not found', `no message ${req.params.id} in the journal`);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/messages/:id/raw',
    {
      schema: {
        summary: 'The message exactly as received (bytes in its own charset)',
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
      },
    },
    async (req, reply) => {
      const raw = await journal.raw(req.params.id);
      if (!raw) return problem(reply, 404, 'Not found', `no raw message ${req.params.id}`);
      return reply.type('application/hl7-v2').send(raw);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/messages/:id/submission',
    {
      schema: {
        summary: 'What the transmission flow understood of a request: documents, XDS metadata, routes',
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
      },
    },
    async (req, reply) => {
      const sub = await journal.result(req.params.id, 'submission');
      return sub ?? problem(reply, 404, 'Not found', `no submission for message ${req.params.id} (not a transmission request, not processed yet, or refused: see GET /messages/${req.params.id})`);
    },
  );

  app.get<{ Querystring: { controlId?: string; sender?: string; documentId?: string; patientId?: string; channel?: string; status?: MessageStatus; from?: string; to?: string; limit?: number } }>(
    '/messages',
    {
      schema: {
        summary: 'Search the journal (newest first) by MSH-10 (or a mail’s Message-ID), sender, document id, patient identifier, channel, status, time',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            controlId: { type: 'string', description: 'MSH-10, or the Message-ID of a received mail (with its <>)' },
            sender: { type: 'string', description: 'MSH-3, or the From address of a received mail' },
            documentId: { type: 'string', description: 'TXA-12 document unique id (a received mail: the XDM documents’ uniqueIds)' },
            patientId: { type: 'string', description: 'PID-3 identifier (IPP, INS; a received mail: the INS of its documents)' },
            channel: { type: 'string' },
            status: { type: 'string', enum: STATUSES },
            from: { type: 'string', format: 'date-time' },
            to: { type: 'string', format: 'date-time' },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
          },
        },
        response: { 200: { type: 'object', properties: { count: { type: 'integer' }, messages: { type: 'array', items: entrySchema } } } },
      },
    },
    async (req) => {
      const q = req.query;
      const messages = await journal.search({ ...q, from: q.from ? new Date(q.from) : undefined, to: q.to ? new Date(q.to) : undefined });
      return { count: messages.length, messages };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/messages/:id/replay',
    {
      schema: {
        summary: 'Process an accepted message again (all destinations are served again)',
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        response: { 202: { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string' } } }, 404: problemSchema, 409: problemSchema },
      },
    },
    async (req, reply) => {
      const e = await journal.get(req.params.id);
      if (!e) return problem(reply, 404, 'Not found', `no message ${req.params.id} in the journal`);
      const channel = byId.get(e.channel);
      if (!channel) return problem(reply, 409, 'Conflict', `channel ${e.channel} is not configured any more`);
      if (!e.events.some((ev) => ev.status === 'received')) {
        return problem(reply, 409, 'Conflict', `message was ${e.status} at ingest and never accepted; the sender must send it again`);
      }
      await channel.replay(e.id);
      return reply.code(202).send({ id: e.id, status: 'replayed' });
    },
  );

  // DMP sending of a transmission request: state, and the operator's hand on a deferred send
  // (Ségur SC.DMP/ALI/PROG.02-03): cancel or hold it during the delay, release a held one.
  const dmpOf = async (id: string) => {
    const e = await journal.get(id);
    const delivery = e && byId.get(e.channel)?.dmp;
    return { e, delivery };
  };
  app.get<{ Params: { id: string } }>(
    '/submissions/:id',
    {
      schema: {
        summary: 'DMP sending of a transmission request (the message id): state, entryUUIDs, error, ZAM',
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        response: { 200: dmpStatusSchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const { e, delivery } = await dmpOf(req.params.id);
      const s = delivery && (await delivery.status(req.params.id));
      if (!s) return problem(reply, 404, 'Not found', e ? `message ${req.params.id} has no DMP sending` : `no message ${req.params.id} in the journal`);
      return s;
    },
  );
  app.get<{ Params: { id: string } }>(
    '/submissions/:id/mssante',
    {
      schema: {
        summary: 'MSSanté sending of a transmission request: per recipient, the mail server’s answer (rcpt:<address>) and the ZAM sent (z2:/z3:<address>)',
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        response: { 200: { type: 'object', additionalProperties: { type: 'string' } }, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const e = await journal.get(req.params.id);
      const s = e && (await byId.get(e.channel)?.mssante?.status(req.params.id));
      if (!s) return problem(reply, 404, 'Not found', e ? `message ${req.params.id} has no MSSanté sending` : `no message ${req.params.id} in the journal`);
      return s;
    },
  );

  for (const action of ['cancel', 'hold', 'release', 'retry'] as const) {
    app.post<{ Params: { id: string } }>(
      `/submissions/:id/${action}`,
      {
        schema: {
          summary: {
            cancel: 'Cancel a DMP sending not yet made (during the delay, or held): nothing is sent',
            hold: 'Hold a DMP sending still in its delay, until released',
            release: 'Send a held DMP sending now (e.g. historical documents)',
            retry: 'Send again a DMP sending that ended refused or dead-lettered (new outcome, new ZAM)',
          }[action],
          params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
          response: { 200: dmpStatusSchema, 404: problemSchema, 409: problemSchema },
        },
      },
      async (req, reply) => {
        const { e, delivery } = await dmpOf(req.params.id);
        if (!e) return problem(reply, 404, 'Not found', `no message ${req.params.id} in the journal`);
        if (!delivery) return problem(reply, 404, 'Not found', `channel ${e.channel} has no DMP delivery`);
        const r = await delivery[action](req.params.id);
        return typeof r === 'string' ? problem(reply, 409, 'Conflict', r) : r;
      },
    );
  }

  const withHistory = async (p: Patient) => ({ ...p, history: await deps.identity.history(p.id) });

  app.get<{ Params: { id: string } }>(
    '/patients/:id',
    {
      schema: {
        summary: 'A patient of the identity store (PAM feed): identifiers, INS, traits, reliability, consent, stays, history',
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
      },
    },
    async (req, reply) => {
      const p = await deps.identity.get(req.params.id);
      return p ? withHistory(p) : problem(reply, 404, 'Not found', `no patient ${req.params.id}`);
    },
  );

  app.get<{ Querystring: { id: string; authority: string } }>(
    '/patients',
    {
      schema: {
        summary: 'Find a patient by one of its identifiers (IPP, INS...), following merges',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'authority'],
          properties: { id: { type: 'string', description: 'CX-1' }, authority: { type: 'string', description: 'assigning authority OID (CX-4.2)' } },
        },
      },
    },
    async (req, reply) => {
      const p = await deps.identity.find(req.query);
      return p ? withHistory(p) : problem(reply, 404, 'Not found', `no patient with identifier ${req.query.id} (${req.query.authority})`);
    },
  );

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
