/**
 * What every portal route gets: the domain's dependencies, templates, sessions, CSRF, throttling and mail, and
 * the signed-in developer of a request. Every route that shows or changes account data starts from
 * `requireDeveloper`, and every lookup of an application goes through `ownApplication`, which answers "not
 * found" for another account's application exactly as for one that does not exist.
 */
import type { FastifyRequest } from 'fastify';
import {
  type Account,
  type Application,
  type PortalSettings,
  type User,
  getAccount,
  getApplication,
  getPortalSettings,
  getUser,
} from '../access/index.js';
import type { ControlDeps } from '../control/index.js';
import { changeDeps } from '../control/index.js';
import type { Actor } from '../events/index.js';
import { TrellisError, notFound } from '../kernel/index.js';
import type { Mailer } from '../mail/index.js';
import { navigationPages } from './content-pages.js';
import type { Csrf } from './csrf.js';
import type { LoginThrottle } from './login-throttle.js';
import { Redirect, type Views, sendHtml } from './web-pages.js';
import type { WebFace } from './web-face.js';
import type { Sessions, WebSession } from './web-sessions.js';

export interface Developer {
  session: WebSession;
  user: User;
  account: Account;
}

export interface PortalFace extends WebFace {
  mailer: Mailer;
  /** Where the "try it" relay sends calls: the gateway. */
  gatewayUrl: string;
  /** The signed-in developer, if any (looked up once per request). */
  developer(req: FastifyRequest): Promise<Developer | undefined>;
  /** The signed-in developer, or a redirect to the login page. */
  requireDeveloper(req: FastifyRequest): Promise<Developer>;
}

/** The actor of a developer's change, as written to the audit log. */
export function developerActor(me: Developer): Actor {
  return { type: 'developer', id: me.user.id };
}

/**
 * The developer's own application. Another account's application is "not found", the same answer as for an
 * id that does not exist, so ids cannot even be probed.
 */
export async function ownApplication(face: PortalFace, me: Developer, id: string): Promise<Application> {
  const app = await getApplication(face.db, id).catch(() => undefined);
  if (!app || app.accountId !== me.account.id) throw notFound('application', id);
  return app;
}

/** Only an account's admins manage its team. */
export function requireAccountAdmin(me: Developer): void {
  if (me.user.role !== 'admin') {
    throw new TrellisError('forbidden', 'Only an admin of your account may do that.');
  }
}

export interface FaceParts {
  deps: ControlDeps;
  views: Views;
  sessions: Sessions;
  csrf: Csrf;
  throttle: LoginThrottle;
  mailer: Mailer;
  gatewayUrl: string;
}

export function createPortalFace(parts: FaceParts): PortalFace {
  const db = parts.deps.store.db;
  const lookups = new WeakMap<FastifyRequest, Promise<Developer | undefined>>();

  async function lookup(req: FastifyRequest): Promise<Developer | undefined> {
    const session = await parts.sessions.read(req);
    if (!session) return undefined;
    const user = await getUser(db, session.subjectId).catch(() => undefined);
    if (!user) return undefined;
    const account = await getAccount(db, user.accountId);
    // A suspended account's developers are signed out: they see nothing until the provider resumes it.
    if (account.state === 'suspended') return undefined;
    return { session, user, account };
  }

  const face: PortalFace = {
    ...parts,
    db,
    cd: changeDeps(parts.deps),
    developer(req) {
      let p = lookups.get(req);
      if (!p) {
        p = lookup(req);
        lookups.set(req, p);
      }
      return p;
    },
    async requireDeveloper(req) {
      const me = await face.developer(req);
      if (!me) throw new Redirect(`/login?next=${encodeURIComponent(req.url)}`);
      return me;
    },
    async page(req, reply, view, data, status = 200) {
      const me = await face.developer(req);
      const brand: PortalSettings = await getPortalSettings(db);
      // the provider's content pages this visitor may see, in the navigation (issue 13)
      const navPages = await navigationPages(db, me && { accountId: me.account.id });
      const html = parts.views.render(view, {
        ...data,
        brand,
        navPages,
        me,
        path: req.url.split('?')[0],
        csrf: parts.csrf.token(req, reply, me?.session.tokenHash),
      });
      return sendHtml(reply, html, status);
    },
  };
  return face;
}
