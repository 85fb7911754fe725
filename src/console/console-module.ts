/**
 * The admin console at `/admin`: a control module in a scope of its own (cookies on path `/admin`, form parsing,
 * the CSRF check, HTML errors), next to the management API under `/admin/api`, which keeps its bearer tokens
 * and JSON errors.
 */
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import { verifyAdminLogin } from '../access/index.js';
import type { ControlDeps, ControlModule } from '../control/index.js';
import {
  type ThrottleOptions,
  createCsrf,
  createLoginThrottle,
  createSessions,
  createViews,
  csrfGuard,
  defaultThrottle,
  htmlNotFoundRoute,
  installHtmlErrors,
  passwordLoginRoutes,
  registerAssets,
  vendorAssets,
  webKey,
} from '../portal/index.js';
import { accountRoutes } from './console-accounts.js';
import { dashboardRoutes } from './console-dashboard.js';
import { insightsRoutes } from './console-insights.js';
import { goliveRoutes } from './console-golive.js';
import { certificationRoutes } from './console-certification.js';
import { type ConsoleFace, createConsoleFace } from './console-face.js';
import { brandRoutes } from './console-brand.js';
import { providerRoutes } from './console-provider.js';
import { serviceRoutes } from './console-services.js';
import { webhookRoutes } from './console-webhooks.js';

export interface ConsoleOptions {
  throttle?: ThrottleOptions;
  /** Rows per page of the console's lists; default 200. */
  pageSize?: number;
}

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * @example controlModules.push(consoleModule())
 */
export function consoleModule(options: ConsoleOptions = {}): ControlModule {
  return async function mountConsole(app, deps: ControlDeps) {
    const db = deps.store.db;
    const csrf = createCsrf(await webKey(db, deps.clock, 'csrf'), deps.config.publicUrl);
    const face: ConsoleFace = createConsoleFace({
      deps,
      views: createViews(here('./views')),
      // Admin sessions are shorter than developers': they can change everything.
      sessions: createSessions(
        { db, clock: deps.clock, publicUrl: deps.config.publicUrl },
        {
          kind: 'admin',
          cookieName: 'trellis_console',
          path: '/admin',
          absoluteMs: 12 * 3600_000,
          idleMs: 2 * 3600_000,
        },
      ),
      csrf,
      throttle: createLoginThrottle({ db, clock: deps.clock }, 'admin', options.throttle ?? defaultThrottle),
      pageSize: options.pageSize ?? 200,
    });

    await app.register(
      async (scope: FastifyInstance) => {
        await scope.register(cookie);
        await scope.register(formbody, { bodyLimit: deps.config.bodyLimit });
        installHtmlErrors(scope, (req, reply, page) =>
          face.page(req, reply, 'error', { title: page.title, error: page }, page.status),
        );
        scope.addHook(
          'preHandler',
          csrfGuard(csrf, async (req) => (await face.admin(req))?.session.tokenHash),
        );
        registerAssets(scope, '/assets', {
          'portal.css': here('../portal/assets/portal.css'),
          'console.css': here('./assets/console.css'),
          'portal.js': here('../portal/assets/portal.js'),
          'usage.js': here('../portal/assets/usage.js'),
          ...vendorAssets(),
        });
        loginRoutes(scope, face);
        dashboardRoutes(scope, face);
        insightsRoutes(scope, face);
        goliveRoutes(scope, face);
        certificationRoutes(scope, face);
        serviceRoutes(scope, face);
        accountRoutes(scope, face);
        providerRoutes(scope, face);
        brandRoutes(scope, face);
        webhookRoutes(scope, face);
        // Unknown console pages: an HTML 404 for browsers; the management API keeps its JSON errors.
        htmlNotFoundRoute(scope, ['/admin/api'], (req, reply, page) =>
          face.page(req, reply, 'error', { title: page.title, error: page }, page.status),
        );
      },
      { prefix: '/admin' },
    );
  };
}

function loginRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  passwordLoginRoutes(scope, face, {
    signedIn: async (req) => (await face.admin(req)) !== undefined,
    verify: async (email, password) => {
      const admin = await verifyAdminLogin(face.db, email, password);
      return admin ? { userId: admin.id } : { error: 'Wrong e-mail or password.' };
    },
    home: '/admin',
    mayReturnTo: (path) => path.startsWith('/admin'),
    afterLogout: '/admin/login',
    tooManyAttempts: 'Too many attempts.',
  });
}
