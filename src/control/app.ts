/**
 * The control server's app: the management API under `/admin/api` (OpenAPI at `/admin/api/openapi.json`, an
 * interactive reference at `/admin/api/docs`). The console, the portal and the OAuth server mount here too.
 * Built by a factory; only the CLI listens.
 */
import { randomBytes } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { adminTokenGuard } from './auth.js';
import { type ControlApp, type ControlDeps, ErrorResponse } from './context.js';
import { installErrorHandling } from './errors.js';
import { accountRoutes } from './routes/accounts.js';
import { applicationRoutes } from './routes/applications.js';
import { planRoutes } from './routes/plans.js';
import { providerRoutes } from './routes/provider.js';
import { serviceRoutes } from './routes/services.js';
import { usageRoutes } from './routes/usage.js';
import { installValidation } from './validation.js';

/** A module that adds routes to the management API (other contexts, e.g. usage, plug in this way). */
export type AdminApiModule = (app: ControlApp, deps: ControlDeps) => void;

/** A module mounted on the control server at the root (console, portal, OAuth). */
export type ControlModule = (app: ControlApp, deps: ControlDeps) => Promise<void> | void;

export interface ControlAppOptions {
  /** Extra management API routes, registered under /admin/api with the same token guard. */
  adminApi?: AdminApiModule[];
  /** Modules mounted at the root. */
  modules?: ControlModule[];
  logger?: FastifyServerOptions['logger'];
}

const requestIdPattern = /^[A-Za-z0-9._-]{8,64}$/;

export async function buildControlApp(
  deps: ControlDeps,
  options: ControlAppOptions = {},
): Promise<ControlApp> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: deps.config.bodyLimit,
    // A caller's request id is kept when it is sane, so a request can be followed across systems.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given)
        ? given
        : `req_${randomBytes(12).toString('hex')}`;
    },
    trustProxy: false,
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  installValidation(app);
  installErrorHandling(app);
  app.addHook('onSend', async (req, reply) => {
    reply.header('X-Request-Id', req.id);
  });
  app.addSchema(ErrorResponse);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Trellis management API',
        version: '1',
        description:
          'Everything a provider configures in Trellis: services, metrics and methods, mapping rules, plans and limits, ' +
          'developer accounts, users, applications and their keys. Authenticate with an admin API token: ' +
          '`Authorization: Bearer trat_…`. Errors have one shape: `{"error": {"code", "message", "details", "requestId"}}`.',
      },
      servers: [{ url: deps.config.publicUrl }],
      components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } } },
      security: [{ adminToken: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });

  await app.register(
    async (api) => {
      api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
      await api.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
      await api.register(async (guarded) => {
        const g = guarded.withTypeProvider<TypeBoxTypeProvider>();
        g.addHook('onRequest', adminTokenGuard(deps));
        serviceRoutes(g, deps);
        planRoutes(g, deps);
        accountRoutes(g, deps);
        applicationRoutes(g, deps);
        providerRoutes(g, deps);
        usageRoutes(g, deps);
        for (const mod of options.adminApi ?? []) mod(g, deps);
      });
    },
    { prefix: '/admin/api' },
  );

  for (const mod of options.modules ?? []) await mod(app, deps);
  return app;
}
