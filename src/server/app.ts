import { timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import type { Redis } from 'ioredis';
import type { ChannelRuntime } from '../channels/runtime.js';
import type { IdentityStore } from '../identity/store.js';
import type { Journal } from '../journal/journal.js';
import type { Settings } from '../settings.js';
import type { Logger } from '../util/log.js';
import { channelsPlugin } from './channels-plugin.js';
import { routes } from './routes.js';

export interface AppDeps {
  settings: Settings;
  channels: ChannelRuntime[];
  journal: Journal;
  redis: Redis;
  identity: IdentityStore;
  log: Logger;
}

/** RFC 9457 problem details: the admin API's way of saying what went wrong. */
export function problem(reply: FastifyReply, status: number, title: string, detail?: string) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: 'about:blank', title, status, ...(detail ? { detail } : {}) });
}

export async function buildAdminApp(deps: AppDeps): Promise<FastifyInstance> {
  // Request logs would carry query strings (patient identifiers): off.
  const app = Fastify({
    loggerInstance: deps.log.child({ part: 'admin' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'PFI engine admin API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  const expected = Buffer.from(deps.settings.admin.token);
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config && (req.routeOptions.config as { public?: boolean }).public) return;
    const given = Buffer.from((req.headers.authorization ?? '').replace(/^Bearer\s+/i, ''));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return problem(reply, 401, 'Unauthorized', 'a valid bearer token is required (PFI_ADMIN_TOKEN or var/admin-token)');
    }
  });
  app.setErrorHandler((err: { statusCode?: number; validation?: unknown; message: string }, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) deps.log.error({ err: err.message }, 'admin API error');
    return problem(reply, status, status >= 500 ? 'Internal error' : 'Bad request', err.message);
  });
  app.setNotFoundHandler((req, reply) => problem(reply, 404, 'Not found', `${req.method} ${req.url}`));

  await app.register(channelsPlugin, { channels: deps.channels, role: deps.settings.role, log: deps.log });
  await app.register(routes, deps);
  return app;
}
