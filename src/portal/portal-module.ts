/**
 * The developer portal at `/`: a control module. It registers, in a scope of its own, form parsing, cookies,
 * the CSRF check of every state-changing request, HTML error pages, the portal's assets and its routes.
 */
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getPortalSettings } from '../access/index.js';
import type { ControlDeps, ControlModule } from '../control/index.js';
import { TrellisError } from '../kernel/index.js';
import { type Mailer, createMailer } from '../mail/index.js';
import { registerAssets, vendorAssets } from './assets.js';
import { createCsrf, csrfFieldName } from './csrf.js';
import { createLoginThrottle, defaultThrottle, type ThrottleOptions } from './login-throttle.js';
import { applicationRoutes } from './portal-apps.js';
import { goliveRoutes } from './portal-golive.js';
import { certificationRoutes } from './portal-certification.js';
import { authRoutes } from './portal-auth.js';
import { catalogRoutes } from './portal-catalog.js';
import { contentRoutes } from './portal-content.js';
import { type PortalFace, createPortalFace } from './portal-face.js';
import { teamRoutes } from './portal-team.js';
import { webhookRoutes } from './portal-webhooks.js';
import { createViews, formOf, htmlNotFoundRoute, installHtmlErrors } from './web-pages.js';
import { createSessions } from './web-sessions.js';
import { webKey } from './web-keys.js';

export interface PortalOptions {
  /** Where mail goes (default: the outbox, and SMTP when `smtpUrl` is configured). */
  mailer?: Mailer;
  /** Where the "try it" relay sends calls (default: the configured gateway public URL). */
  gatewayUrl?: string;
  /** Login throttling (tests make it tighter). */
  throttle?: ThrottleOptions;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `header`: the route checks a CSRF header itself (the "try it" relay); default: the form field. */
    csrf?: 'header';
  }
}

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** The portal's own files and the vendor bundles it uses. */
function portalAssets(): Record<string, string> {
  return {
    'portal.css': here('./assets/portal.css'),
    'portal.js': here('./assets/portal.js'),
    'docs.js': here('./assets/docs.js'),
    'usage.js': here('./assets/usage.js'),
    ...vendorAssets(),
  };
}

/**
 * Refuses a state-changing request without a valid CSRF token. Runs before the handler, after the body is
 * parsed (the token is a form field).
 */
export function csrfGuard(
  csrf: ReturnType<typeof createCsrf>,
  sessionHashOf: (req: FastifyRequest) => Promise<string | undefined>,
) {
  return async function checkCsrf(req: FastifyRequest, _reply: FastifyReply) {
    if (req.method === 'GET' || req.method === 'HEAD' || req.routeOptions.config.csrf === 'header') return;
    const presented = formOf(req).raw(csrfFieldName, 200);
    if (!csrf.verify(req, presented, await sessionHashOf(req))) throw new TrellisError('csrf_invalid');
  };
}

/**
 * @example controlModules.push(portalModule())
 */
export function portalModule(options: PortalOptions = {}): ControlModule {
  return async function mountPortal(app, deps: ControlDeps) {
    const db = deps.store.db;
    const csrfKey = await webKey(db, deps.clock, 'csrf');
    const csrf = createCsrf(csrfKey, deps.config.publicUrl);
    const face: PortalFace = createPortalFace({
      deps,
      views: createViews(here('./views')),
      sessions: createSessions(
        { db, clock: deps.clock, publicUrl: deps.config.publicUrl },
        {
          kind: 'developer',
          cookieName: 'trellis_portal',
          path: '/',
          absoluteMs: 7 * 86_400_000,
          idleMs: 86_400_000,
        },
      ),
      csrf,
      throttle: createLoginThrottle(
        { db, clock: deps.clock },
        'developer',
        options.throttle ?? defaultThrottle,
      ),
      mailer:
        options.mailer ??
        createMailer({
          db,
          clock: deps.clock,
          smtpUrl: deps.config.smtpUrl,
          from: `portal@${new URL(deps.config.publicUrl).hostname}`,
        }),
      gatewayUrl: options.gatewayUrl ?? deps.config.gatewayPublicUrl,
    });

    await app.register(async (scope: FastifyInstance) => {
      await scope.register(cookie);
      await scope.register(formbody, { bodyLimit: 256 * 1024 });
      installHtmlErrors(scope, (req, reply, page) =>
        face.page(req, reply, 'error', { title: page.title, error: page }, page.status),
      );
      scope.addHook(
        'preHandler',
        csrfGuard(csrf, async (req) => (await face.developer(req))?.session.tokenHash),
      );
      registerAssets(scope, '/assets', portalAssets());
      scope.get('/theme.css', async (_req, reply) => {
        const s = await getPortalSettings(db);
        // Colours are checked as #rrggbb when saved; custom CSS is the provider's own.
        const css = `:root{--primary:${s.primaryColor};--accent:${s.accentColor};}\n${s.customCss}\n`;
        return reply.type('text/css; charset=utf-8').header('Cache-Control', 'no-cache').send(css);
      });
      catalogRoutes(scope, face);
      authRoutes(scope, face);
      applicationRoutes(scope, face);
      goliveRoutes(scope, face);
      webhookRoutes(scope, face);
      await certificationRoutes(scope, face);
      teamRoutes(scope, face);
      contentRoutes(scope, face);
      // Unknown pages: an HTML 404 for browsers; the management API, OAuth and discovery keep JSON.
      htmlNotFoundRoute(scope, ['/admin', '/oauth', '/.well-known'], (req, reply, page) =>
        face.page(req, reply, 'error', { title: page.title, error: page }, page.status),
      );
    });
  };
}
