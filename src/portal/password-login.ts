/**
 * Signing in with an e-mail and a password, and signing out: one implementation for the portal (developers) and
 * the console (the provider's admins), so throttling, the session start and the redirect rules are the same in both.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebFace } from './web-face.js';
import { Redirect, formOf, safeNext } from './web-pages.js';

/** What a face gives the login routes. */
export type PasswordLoginFace = Pick<WebFace, 'sessions' | 'throttle' | 'page'>;

export interface PasswordLoginOptions {
  /** Whether the request already has a signed-in user (who is sent on instead of shown the form). */
  signedIn(req: FastifyRequest): Promise<boolean>;
  /** The user id to start a session for, or the message to show. */
  verify(email: string, password: string): Promise<{ userId: string } | { error: string }>;
  /** Where a signed-in user goes when the login link named no page. */
  home: string;
  /** Pages this face may send a user back to after sign-in; others go `home`. */
  mayReturnTo?: (path: string) => boolean;
  /** Where signing out leads. */
  afterLogout: string;
  /** Shown when too many attempts were made. */
  tooManyAttempts: string;
}

/**
 * Registers `GET /login`, `POST /login` and `POST /logout` on a face's scope (its prefix applies).
 * @example passwordLoginRoutes(scope, face, { home: '/admin', afterLogout: '/admin/login', … })
 */
export function passwordLoginRoutes(
  scope: FastifyInstance,
  face: PasswordLoginFace,
  options: PasswordLoginOptions,
): void {
  const landing = (next: string) =>
    next !== '' && (options.mayReturnTo?.(next) ?? true) ? next : options.home;

  scope.get('/login', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    if (await options.signedIn(req)) throw new Redirect(landing(safeNext(q.next, '')));
    return face.page(req, reply, 'login', {
      title: 'Sign in',
      next: safeNext(q.next, ''),
      email: '',
      error: '',
    });
  });

  scope.post('/login', async (req, reply) => {
    const form = formOf(req);
    const email = form.text('email', 320);
    const next = safeNext(form.text('next', 500), '');
    const wait = await face.throttle.retryAfter(email, req.ip);
    if (wait > 0) {
      reply.header('Retry-After', String(wait));
      const error = options.tooManyAttempts;
      return face.page(req, reply, 'login', { title: 'Sign in', next, email, error }, 429);
    }
    const outcome = await options.verify(email, form.raw('password', 200));
    if ('error' in outcome) {
      await face.throttle.failed(email, req.ip);
      return face.page(req, reply, 'login', { title: 'Sign in', next, email, error: outcome.error }, 401);
    }
    await face.throttle.succeeded(email);
    await face.sessions.start(req, reply, outcome.userId);
    throw new Redirect(landing(next));
  });

  scope.post('/logout', async (req, reply) => {
    await face.sessions.end(req, reply);
    throw new Redirect(options.afterLogout);
  });
}
