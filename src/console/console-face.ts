/**
 * What every console route gets: the domain's dependencies, templates, the admin session, CSRF, and the
 * signed-in admin user of a request. Every console route but the login page starts from `requireAdmin`.
 */
import type { FastifyRequest } from 'fastify';
import { type AdminUser, getAdminUser } from '../access/index.js';
import { type ControlDeps, changeDeps } from '../control/index.js';
import type { Actor } from '../events/index.js';
import { TrellisError } from '../kernel/index.js';
import {
  type Csrf,
  type LoginThrottle,
  Redirect,
  type Sessions,
  type Views,
  type WebFace,
  type WebSession,
  sendHtml,
} from '../portal/index.js';

export interface Admin {
  session: WebSession;
  user: AdminUser;
}

export interface ConsoleFace extends WebFace {
  /** Rows per page of the console's lists (services, accounts, applications). */
  pageSize: number;
  admin(req: FastifyRequest): Promise<Admin | undefined>;
  requireAdmin(req: FastifyRequest): Promise<Admin>;
}

export function adminActor(admin: Admin): Actor {
  return { type: 'admin_user', id: admin.user.id };
}

/**
 * The `cursor` of a list page's query string: an id, as the domain's `nextCursor` gave it; anything else starts
 * from the beginning.
 */
export function cursorOf(query: unknown): string | undefined {
  const raw =
    typeof query === 'object' && query !== null ? (query as Record<string, unknown>).cursor : undefined;
  return typeof raw === 'string' && /^[a-z]{1,10}_[0-9A-Za-z]{1,60}$/.test(raw) ? raw : undefined;
}

/** The link to the next page of a list, keeping its filters; '' on the last page. */
export function nextPageUrl(
  path: string,
  filters: Record<string, string>,
  nextCursor: string | null,
): string {
  if (nextCursor === null) return '';
  const params = new URLSearchParams({
    ...Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== '')),
    cursor: nextCursor,
  });
  return `${path}?${params}`;
}

/**
 * The message of a change the domain refused because of the state of things (a plan with applications, a
 * service with applications), shown on the page instead of an error page; undefined for any other error.
 */
export function refusalOf(err: unknown): string | undefined {
  return err instanceof TrellisError && (err.code === 'invalid_state' || err.code === 'conflict')
    ? err.message
    : undefined;
}

export function createConsoleFace(parts: {
  deps: ControlDeps;
  views: Views;
  sessions: Sessions;
  csrf: Csrf;
  throttle: LoginThrottle;
  pageSize: number;
}): ConsoleFace {
  const db = parts.deps.store.db;
  const lookups = new WeakMap<FastifyRequest, Promise<Admin | undefined>>();

  async function lookup(req: FastifyRequest): Promise<Admin | undefined> {
    const session = await parts.sessions.read(req);
    if (!session) return undefined;
    const user = await getAdminUser(db, session.subjectId).catch(() => undefined);
    return user ? { session, user } : undefined;
  }

  const face: ConsoleFace = {
    ...parts,
    db,
    cd: changeDeps(parts.deps),
    admin(req) {
      let p = lookups.get(req);
      if (!p) {
        p = lookup(req);
        lookups.set(req, p);
      }
      return p;
    },
    async requireAdmin(req) {
      const admin = await face.admin(req);
      if (!admin) throw new Redirect(`/admin/login?next=${encodeURIComponent(req.url)}`);
      return admin;
    },
    async page(req, reply, view, data, status = 200) {
      const admin = await face.admin(req);
      const html = parts.views.render(view, {
        ...data,
        admin,
        path: req.url.split('?')[0],
        csrf: parts.csrf.token(req, reply, admin?.session.tokenHash),
      });
      return sendHtml(reply, html, status);
    },
  };
  return face;
}
