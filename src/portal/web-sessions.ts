/**
 * Browser sessions of the portal (developers) and the console (admin users). The cookie carries an opaque
 * random token (256 bits); the database keeps only its SHA-256, the subject and the expiry. Cookies are
 * `HttpOnly`, `SameSite=Lax`, and `Secure` when the control server is reached over TLS.
 */
import { randomBytes } from 'node:crypto';
import type {} from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Clock, hashSecret, isoNow } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import {
  deleteExpiredSessions,
  deleteSession,
  deleteSessionsOf,
  findSession,
  insertSession,
  touchSession,
} from './portal.store.js';

export interface SessionOptions {
  kind: 'developer' | 'admin';
  cookieName: string;
  /** The cookie's path: `/` for the portal, `/admin` for the console. */
  path: string;
  /** A session ends this long after sign-in, whatever happens. */
  absoluteMs: number;
  /** … and this long after it was last used. */
  idleMs: number;
}

export interface SessionDeps {
  db: Executor;
  clock: Clock;
  /** The control server's public URL: an `https:` one makes cookies `Secure` even behind a TLS proxy. */
  publicUrl: string;
}

export interface WebSession {
  tokenHash: string;
  subjectId: string;
}

export interface Sessions {
  readonly kind: SessionOptions['kind'];
  /** Signs in: a new token each time, so a token planted before sign-in is worthless after it. */
  start(req: FastifyRequest, reply: FastifyReply, subjectId: string): Promise<WebSession>;
  /** The session of the request, if its cookie names a live one. */
  read(req: FastifyRequest): Promise<WebSession | undefined>;
  end(req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** Ends every session of a subject (password reset, removal). */
  endAllOf(subjectId: string): Promise<void>;
}

/** Whether cookies must be `Secure`: the request came over TLS, or the public URL says the site is HTTPS. */
export function isSecure(req: FastifyRequest, publicUrl: string): boolean {
  return req.protocol === 'https' || publicUrl.startsWith('https:');
}

export function createSessions(deps: SessionDeps, options: SessionOptions): Sessions {
  const cookie = (req: FastifyRequest) => ({
    path: options.path,
    httpOnly: true,
    sameSite: 'lax' as const,
    secure: isSecure(req, deps.publicUrl),
  });

  return {
    kind: options.kind,

    async start(req, reply, subjectId) {
      await this.end(req, reply);
      const token = randomBytes(32).toString('base64url');
      const now = deps.clock.now();
      const row = {
        token_hash: hashSecret(token),
        kind: options.kind,
        subject_id: subjectId,
        created_at: isoNow(deps.clock),
        last_seen_at: isoNow(deps.clock),
        expires_at: new Date(now + Math.min(options.idleMs, options.absoluteMs)).toISOString(),
      };
      await insertSession(deps.db, row);
      // Expired sessions are swept at sign-in: often enough to keep the table small, never on a hot path.
      await deleteExpiredSessions(deps.db, isoNow(deps.clock));
      reply.setCookie(options.cookieName, token, cookie(req));
      return { tokenHash: row.token_hash, subjectId };
    },

    async read(req) {
      const token = req.cookies[options.cookieName];
      if (!token || token.length > 100) return undefined;
      const tokenHash = hashSecret(token);
      const row = await findSession(deps.db, tokenHash, options.kind);
      if (!row) return undefined;
      const now = deps.clock.now();
      if (Date.parse(row.expires_at) <= now) return undefined;
      const absoluteEnd = Date.parse(row.created_at) + options.absoluteMs;
      if (absoluteEnd <= now) return undefined;
      // Sliding expiry, written at most once a minute per session rather than on every page.
      if (now - Date.parse(row.last_seen_at) > 60_000) {
        const expires = Math.min(now + options.idleMs, absoluteEnd);
        await touchSession(deps.db, tokenHash, isoNow(deps.clock), new Date(expires).toISOString());
      }
      return { tokenHash, subjectId: row.subject_id };
    },

    async end(req, reply) {
      const token = req.cookies[options.cookieName];
      if (token && token.length <= 100) await deleteSession(deps.db, hashSecret(token));
      if (token !== undefined) reply.clearCookie(options.cookieName, cookie(req));
    },

    async endAllOf(subjectId) {
      await deleteSessionsOf(deps.db, options.kind, subjectId);
    },
  };
}
