/**
 * The control server's app: the management API under `/admin/api` (OpenAPI at `/admin/api/openapi.json`, an
 * interactive reference at `/admin/api/docs`). The console, the portal and the OAuth server mount here too.
 * Built by a factory; only the CLI listens.
 */
import { randomBytes } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyServerOptions, type RouteOptions } from 'fastify';
import { compileTrustedProxies } from '../kernel/index.js';
import { adminTokenGuard } from './auth.js';
import { installClientIp, trustProxyOption } from './client-ip.js';
import { type ControlApp, type ControlDeps, ErrorResponse } from './context.js';
import { clientErrorHandler, frameworkErrorHandler, installErrorHandling } from './errors.js';
import { installInputGuard } from './input-guard.js';
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
  /** Sees every route as it is registered, the server's whole surface (tests compare it with the OpenAPI document). */
  onRoute?: (route: RouteOptions) => void;
}

const requestIdPattern = /^[A-Za-z0-9._-]{8,64}$/;

/** Swagger UI's colours raised to WCAG AA contrast for the management API reference (issue 13). */
const referenceCss = `
.swagger-ui .info .title small.version-stamp, .swagger-ui .info .title small.version-stamp pre.version { background-color: #1f6f5c; color: #fff; }
.swagger-ui .info .url, .swagger-ui .info a.link { color: #1b4f8a; }
.swagger-ui .btn.authorize, .swagger-ui .btn.authorize span { color: #11643b; border-color: #11643b; }
.swagger-ui .btn.authorize svg { fill: #11643b; }
body .swagger-ui .opblock.opblock-get .opblock-summary-method { background: #1f5fa8; }
body .swagger-ui .opblock.opblock-post .opblock-summary-method { background: #11643b; }
body .swagger-ui .opblock.opblock-put .opblock-summary-method { background: #8a4b00; }
body .swagger-ui .opblock.opblock-delete .opblock-summary-method { background: #b3261e; }
body .swagger-ui .opblock.opblock-patch .opblock-summary-method { background: #0f6e5c; }
.swagger-ui .parameter__in, .swagger-ui .json-schema-2020-12-expand-deep-button { color: #4b5563; }
`;

/** Labels Swagger UI's server select and lets the keyboard scroll its code examples, as they are drawn. */
const referenceJs = `
new MutationObserver(() => {
  for (const s of document.querySelectorAll('select#servers')) s.setAttribute('aria-label', 'Server');
  for (const pre of document.querySelectorAll('.highlight-code > .microlight')) pre.setAttribute('tabindex', '0');
}).observe(document.documentElement, { childList: true, subtree: true });
`;

export async function buildControlApp(
  deps: ControlDeps,
  options: ControlAppOptions = {},
): Promise<ControlApp> {
  const trustedProxies = compileTrustedProxies(deps.config.trustedProxies);
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
    trustProxy: trustProxyOption(trustedProxies),
    ajv: { customOptions: { removeAdditional: false } },
    // whatever refuses a request, the router or node's HTTP parser, the answer has the one error shape
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>();

  if (options.onRoute) app.addHook('onRoute', options.onRoute);
  installValidation(app);
  installErrorHandling(app);
  installInputGuard(app);
  installClientIp(app, trustedProxies);
  app.addHook('onSend', async (req, reply) => {
    reply.header('X-Request-Id', req.id);
  });
  app.addSchema(ErrorResponse);

  await app.register(
    async (api) => {
      // registered in this scope, the document sees the management API's routes alone, not the faces' pages
      await api.register(swagger, {
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
      api.get('/openapi.json', { schema: { hide: true } }, async () => api.swagger());
      // indexPrefix: the page's asset links are absolute, and this plugin's own prefix is not visible to swagger-ui
      // (without it `/admin/api/docs` linked `/docs/static/…`: a blank page, issue 13)
      await api.register(swaggerUi, {
        routePrefix: '/docs',
        indexPrefix: '/admin/api',
        staticCSP: true,
        // no top bar (an unlabelled URL box and logo) and no deep link inside each operation's button, so the page
        // passes axe's WCAG AA checks; the theme lifts the vendor's low-contrast colours (issue 13)
        uiConfig: { layout: 'BaseLayout', deepLinking: false },
        theme: {
          title: 'Trellis management API',
          css: [{ filename: 'trellis.css', content: referenceCss }],
          js: [{ filename: 'trellis.js', content: referenceJs }],
        },
      });
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
