/**
 * Signing in with an e-mail and a password, and signing out: one implementation for the portal (developers) and
 * the console (the provider's admins), so throttling, the session start and the redirect rules are the same in both.
 * The client address throttling counts by is `req.clientIp`, the one rule of `kernel/client-address.ts`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebFace } from './web-face.js';
import { Redirect, formOf, safeNext } from './web-pages.js';

/** `Retry-After` seconds in words: "1 second", "2 minutes" (rounded up). */
export function waitText(seconds: number): string {
  if (seconds < 60) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

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
  /** Shown when too many attempts were made (the wait is added). */
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
    const attempt = await face.throttle.claim(email, req.clientIp);
    if (!attempt.allowed) {
      // within the wait the password is not checked at all: a right guess then would tell nothing either
      reply.header('Retry-After', String(attempt.retryAfterSeconds));
      const error = `${options.tooManyAttempts} Try again in ${waitText(attempt.retryAfterSeconds)}.`;
      return face.page(req, reply, 'login', { title: 'Sign in', next, email, error }, 429);
    }
    let outcome: Awaited<ReturnType<PasswordLoginOptions['verify']>>;
    try {
      outcome = await options.verify(email, form.raw('password', 200));
    } catch (err) {
      // the error is what the caller hears; an attempt that cannot be taken back stays counted as a failure
      await attempt.abandon().catch(() => undefined);
      throw err;
    }
    if ('error' in outcome) {
      await attempt.failed();
      return face.page(req, reply, 'login', { title: 'Sign in', next, email, error: outcome.error }, 401);
    }
    await attempt.succeeded();
    await face.sessions.start(req, reply, outcome.userId);
    throw new Redirect(landing(next));
  });

  scope.post('/logout', async (req, reply) => {
    await face.sessions.end(req, reply);
    throw new Redirect(options.afterLogout);
  });
}
