import type { FastifyInstance } from 'fastify';
import type { MessageStatus } from '../journal/journal.js';
import { channelsById, idParams, type ById, type JournalDeps } from './deps.js';
import { problem, problemSchema } from './problem.js';

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

const STATUSES: MessageStatus[] = [
  'received',
  'acknowledged',
  'rejected',
  'duplicate',
  'queued',
  'processing',
  'delivered',
  'processed',
  'failed',
  'dead-lettered',
  'discarded',
  'replayed',
];

interface SearchQuery {
  controlId?: string;
  sender?: string;
  documentId?: string;
  patientId?: string;
  channel?: string;
  status?: MessageStatus;
  from?: string;
  to?: string;
  limit?: number;
}

const searchSchema = {
  summary:
    'Search the journal (newest first) by MSH-10 (or a mail’s Message-ID), sender, document id, patient identifier, ' +
    'channel, status, time',
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      controlId: { type: 'string', description: 'MSH-10, or the Message-ID of a received mail (with its <>)' },
      sender: { type: 'string', description: 'MSH-3, or the From address of a received mail' },
      documentId: {
        type: 'string',
        description: 'TXA-12 document unique id (a received mail: the XDM documents’ uniqueIds)',
      },
      patientId: {
        type: 'string',
        description: 'PID-3 identifier (IPP, INS; a received mail: the INS of its documents)',
      },
      channel: { type: 'string' },
      status: { type: 'string', enum: STATUSES },
      from: { type: 'string', format: 'date-time' },
      to: { type: 'string', format: 'date-time' },
      limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: { count: { type: 'integer' }, messages: { type: 'array', items: entrySchema } },
    },
  },
};

/** The journal: search, one message, its bytes, what the flow made of it, and replaying it. */
export async function messageRoutes(app: FastifyInstance, { journal, channels }: JournalDeps) {
  const byId = channelsById(channels);

  app.get<ById>(
    '/messages/:id',
    {
      schema: {
        summary: 'One message of the journal with its status history',
        params: idParams,
        response: { 200: entrySchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const e = await journal.get(req.params.id);
      return e ?? problem(reply, 404, 'Not found', `no message ${req.params.id} in the journal`);
    },
  );

  app.get<ById>(
    '/messages/:id/raw',
    { schema: { summary: 'The message exactly as received (bytes in its own charset)', params: idParams } },
    async (req, reply) => {
      const raw = await journal.raw(req.params.id);
      if (!raw) return problem(reply, 404, 'Not found', `no raw message ${req.params.id}`);
      return reply.type('application/hl7-v2').send(raw);
    },
  );

  app.get<ById>(
    '/messages/:id/submission',
    {
      schema: {
        summary: 'What the transmission flow understood of a request: documents, XDS metadata, routes',
        params: idParams,
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const sub = await journal.result(id, 'submission');
      const why = `not a transmission request, not processed yet, or refused: see GET /messages/${id}`;
      return sub ?? problem(reply, 404, 'Not found', `no submission for message ${id} (${why})`);
    },
  );

  app.get<{ Querystring: SearchQuery }>('/messages', { schema: searchSchema }, async (req) => {
    const q = req.query;
    const from = q.from ? new Date(q.from) : undefined;
    const messages = await journal.search({ ...q, from, to: q.to ? new Date(q.to) : undefined });
    return { count: messages.length, messages };
  });

  app.post<ById>(
    '/messages/:id/replay',
    {
      schema: {
        summary: 'Process an accepted message again (all destinations are served again)',
        params: idParams,
        response: {
          202: { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string' } } },
          404: problemSchema,
          409: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const e = await journal.get(req.params.id);
      if (!e) return problem(reply, 404, 'Not found', `no message ${req.params.id} in the journal`);
      const channel = byId.get(e.channel);
      if (!channel) return problem(reply, 409, 'Conflict', `channel ${e.channel} is not configured any more`);
      if (!e.events.some((ev) => ev.status === 'received')) {
        const detail = `message was ${e.status} at ingest and never accepted; the sender must send it again`;
        return problem(reply, 409, 'Conflict', detail);
      }
      await channel.replay(e.id);
      return reply.code(202).send({ id: e.id, status: 'replayed' });
    },
  );
}
