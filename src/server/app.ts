import { timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { channelsPlugin } from './channels-plugin.js';
import type { AppDeps } from './deps.js';
import { messageRoutes } from './messages.js';
import { opsRoutes } from './ops.js';
import { patientRoutes } from './patients.js';
import { problem } from './problem.js';
import { submissionRoutes } from './submissions.js';

export type { AppDeps } from './deps.js';

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
    // RFC 6750: `Authorization: Bearer <token>`; the bare token alone is not a credential.
    const bearer = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
    const given = Buffer.from(bearer?.[1] ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      const detail = 'a valid bearer token is required (PFI_ADMIN_TOKEN or var/admin-token)';
      return problem(reply, 401, 'Unauthorized', detail);
    }
  });
  app.setErrorHandler((err: { statusCode?: number; validation?: unknown; message: string }, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) deps.log.error({ err: err.message }, 'admin API error');
    return problem(reply, status, status >= 500 ? 'Internal error' : 'Bad request', err.message);
  });
  app.setNotFoundHandler((req, reply) => problem(reply, 404, 'Not found', `${req.method} ${req.url}`));

  await app.register(channelsPlugin, { channels: deps.channels, role: deps.settings.role, log: deps.log });
  // Registration order is the order of the paths in the OpenAPI document.
  await app.register(opsRoutes, deps);
  await app.register(messageRoutes, deps);
  await app.register(submissionRoutes, deps);
  await app.register(patientRoutes, deps);
  return app;
}
