/**
 * Login attempts are limited per e-mail and per client address: guessing passwords is slowed to a few tries a
 * quarter hour, and a success clears the e-mail's count. Attempts are kept in the database, so the limit holds
 * across control processes.
 */
import { type Clock, isoNow } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import {
  countLoginAttempts,
  deleteLoginAttempts,
  deleteOldLoginAttempts,
  insertLoginAttempt,
} from './portal.store.js';

export interface ThrottleOptions {
  /** The window failures are counted over. */
  windowMs: number;
  /** Failures allowed per e-mail in a window. */
  perEmail: number;
  /** Failures allowed per client address in a window. */
  perIp: number;
}

export const defaultThrottle: ThrottleOptions = { windowMs: 15 * 60_000, perEmail: 5, perIp: 50 };

export interface LoginThrottle {
  /** Seconds to wait before trying again, or 0 when an attempt may be made. */
  retryAfter(email: string, ip: string): Promise<number>;
  failed(email: string, ip: string): Promise<void>;
  succeeded(email: string): Promise<void>;
}

export function createLoginThrottle(
  deps: { db: Executor; clock: Clock },
  scope: 'developer' | 'admin',
  options: ThrottleOptions = defaultThrottle,
): LoginThrottle {
  const emailKey = (email: string) => `${scope}:email:${email.trim().toLowerCase().slice(0, 320)}`;
  const ipKey = (ip: string) => `${scope}:ip:${ip}`;
  const since = () => new Date(deps.clock.now() - options.windowMs).toISOString();
  return {
    async retryAfter(email, ip) {
      const [byEmail, byIp] = await Promise.all([
        countLoginAttempts(deps.db, emailKey(email), since()),
        countLoginAttempts(deps.db, ipKey(ip), since()),
      ]);
      return byEmail >= options.perEmail || byIp >= options.perIp ? Math.ceil(options.windowMs / 1000) : 0;
    },
    async failed(email, ip) {
      const at = isoNow(deps.clock);
      await insertLoginAttempt(deps.db, emailKey(email), at);
      await insertLoginAttempt(deps.db, ipKey(ip), at);
      await deleteOldLoginAttempts(deps.db, since());
    },
    async succeeded(email) {
      await deleteLoginAttempts(deps.db, emailKey(email));
    },
  };
}
