import type { FastifyInstance } from 'fastify';
import { channelsById, idParams, type ById, type JournalDeps } from './deps.js';
import { problem, problemSchema } from './problem.js';

const dmpStatusSchema = {
  type: 'object',
  properties: {
    state: {
      type: 'string',
      enum: ['scheduled', 'held', 'cancelled', 'sending', 'accepted', 'refused', 'dead-lettered'],
    },
    at: { type: 'string' },
    sendAt: { type: 'string' },
    entries: { type: 'array', items: { type: 'string' }, description: 'DMP entryUUIDs' },
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, text: { type: 'string' }, system: { type: 'string' } },
    },
    zam: { type: 'string', description: 'ACK code of the ZAM^Z01 sent to the CREATEUR' },
  },
} as const;

const ACTIONS = {
  cancel: 'Cancel a DMP sending not yet made (during the delay, or held): nothing is sent',
  hold: 'Hold a DMP sending still in its delay, until released',
  release: 'Send a held DMP sending now (e.g. historical documents)',
  retry: 'Send again a DMP sending that ended refused or dead-lettered (new outcome, new ZAM)',
} as const;

/**
 * Sendings of a transmission request (by its message id), to the DMP and by MSSanté, and the operator's hand
 * on a deferred DMP send (Ségur SC.DMP/ALI/PROG.02-03): cancel or hold it during the delay, release a held one.
 */
export async function submissionRoutes(app: FastifyInstance, { journal, channels }: JournalDeps) {
  const byId = channelsById(channels);
  const sendingsOf = async (id: string) => {
    const e = await journal.get(id);
    const channel = e && byId.get(e.channel);
    return { e, dmp: channel?.dmp, mssante: channel?.mssante };
  };
  const noMessage = (id: string) => `no message ${id} in the journal`;

  app.get<ById>(
    '/submissions/:id',
    {
      schema: {
        summary: 'DMP sending of a transmission request (the message id): state, entryUUIDs, error, ZAM',
        params: idParams,
        response: { 200: dmpStatusSchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const { e, dmp } = await sendingsOf(id);
      const s = dmp && (await dmp.status(id));
      return s || problem(reply, 404, 'Not found', e ? `message ${id} has no DMP sending` : noMessage(id));
    },
  );

  app.get<ById>(
    '/submissions/:id/mssante',
    {
      schema: {
        summary:
          'MSSanté sending of a transmission request: per recipient, the mail server’s answer (rcpt:<address>) ' +
          'and the ZAM sent (z2:/z3:<address>)',
        params: idParams,
        response: { 200: { type: 'object', additionalProperties: { type: 'string' } }, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const { e, mssante } = await sendingsOf(id);
      const s = mssante && (await mssante.status(id));
      return s || problem(reply, 404, 'Not found', e ? `message ${id} has no MSSanté sending` : noMessage(id));
    },
  );

  for (const [action, summary] of Object.entries(ACTIONS) as [keyof typeof ACTIONS, string][]) {
    app.post<ById>(
      `/submissions/:id/${action}`,
      {
        schema: {
          summary,
          params: idParams,
          response: { 200: dmpStatusSchema, 404: problemSchema, 409: problemSchema },
        },
      },
      async (req, reply) => {
        const { id } = req.params;
        const { e, dmp } = await sendingsOf(id);
        if (!e) return problem(reply, 404, 'Not found', noMessage(id));
        if (!dmp) return problem(reply, 404, 'Not found', `channel ${e.channel} has no DMP delivery`);
        const r = await dmp[action](id);
        return typeof r === 'string' ? problem(reply, 409, 'Conflict', r) : r;
      },
    );
  }
}
