import type { FastifyInstance } from 'fastify';
import type { Patient } from '../identity/store.js';
import { idParams, type AppDeps, type ById } from './deps.js';
import { problem } from './problem.js';

interface Identifier {
  id: string;
  authority: string;
}

const findSchema = {
  summary: 'Find a patient by one of its identifiers (IPP, INS...), following merges',
  querystring: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'authority'],
    properties: {
      id: { type: 'string', description: 'CX-1' },
      authority: { type: 'string', description: 'assigning authority OID (CX-4.2)' },
    },
  },
};

/** The identity store fed by PAM: a patient by its store id or by one of its identifiers. */
export async function patientRoutes(app: FastifyInstance, { identity }: Pick<AppDeps, 'identity'>) {
  const withHistory = async (p: Patient) => ({ ...p, history: await identity.history(p.id) });

  app.get<ById>(
    '/patients/:id',
    {
      schema: {
        summary:
          'A patient of the identity store (PAM feed): identifiers, INS, traits, reliability, consent, stays, history',
        params: idParams,
      },
    },
    async (req, reply) => {
      const p = await identity.get(req.params.id);
      return p ? withHistory(p) : problem(reply, 404, 'Not found', `no patient ${req.params.id}`);
    },
  );

  app.get<{ Querystring: Identifier }>('/patients', { schema: findSchema }, async (req, reply) => {
    const p = await identity.find(req.query);
    const { id, authority } = req.query;
    return p ? withHistory(p) : problem(reply, 404, 'Not found', `no patient with identifier ${id} (${authority})`);
  });
}
