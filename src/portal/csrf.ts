/**
 * CSRF protection for every form of the portal and the console: a synchronizer token that is an HMAC, under a
 * server key, of what the request is bound to — the signed-in session, or (before sign-in: login, signup, reset)
 * a random `HttpOnly` cookie. A forged cross-site request can send the cookies but cannot know the token.
 * The `Origin` header, when a browser sends one, must also name this site.
 * See OWASP's CSRF Prevention Cheat Sheet ("signed double-submit cookie", "synchronizer token").
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type {} from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isSecure } from './web-sessions.js';

export const csrfFieldName = '_csrf';
export const csrfHeaderName = 'x-csrf-token';
const anonCookie = 'trellis_csrf';

export interface Csrf {
  /** The token to put in a form, for a request with or without a session. */
  token(req: FastifyRequest, reply: FastifyReply, sessionHash: string | undefined): string;
  /** Whether a state-changing request carries a valid token (and, if it has one, a same-site Origin). */
  verify(req: FastifyRequest, presented: string | undefined, sessionHash: string | undefined): boolean;
}

function mac(key: string, binding: string): string {
  return createHmac('sha256', key).update(binding).digest('base64url');
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether the Origin header (when present) names the host the request was sent to. */
export function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

export function createCsrf(key: string, publicUrl: string): Csrf {
  return {
    token(req, reply, sessionHash) {
      if (sessionHash) return mac(key, `session:${sessionHash}`);
      let anon = req.cookies[anonCookie];
      if (!anon || anon.length > 100) {
        anon = randomBytes(24).toString('base64url');
        reply.setCookie(anonCookie, anon, {
          path: '/',
          httpOnly: true,
          sameSite: 'lax',
          secure: isSecure(req, publicUrl),
        });
        // The cookie is read back within the same request if a second form is rendered.
        req.cookies[anonCookie] = anon;
      }
      return mac(key, `anon:${anon}`);
    },

    verify(req, presented, sessionHash) {
      if (!presented || presented.length > 200 || !sameOrigin(req)) return false;
      const candidates: string[] = [];
      if (sessionHash) candidates.push(mac(key, `session:${sessionHash}`));
      const anon = req.cookies[anonCookie];
      if (anon && anon.length <= 100) candidates.push(mac(key, `anon:${anon}`));
      return candidates.some((c) => same(c, presented));
    },
  };
}
