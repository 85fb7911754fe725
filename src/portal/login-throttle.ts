/**
 * Login attempts slowed by growing delays, never locked out (issue 8, item 18). Failures are counted per
 * (e-mail, client address) pair: after a few, each further attempt of that pair waits 1 s, 2 s, 4 s … up to a
 * quarter of an hour, and within the wait the password is not even checked. Once the wait passed the right password
 * signs in, and a success clears the pair. Two looser counters slow what the pair cannot see: one per address across
 * e-mails (credential stuffing from one place) and one per e-mail across addresses (guessing spread over many
 * places), with short delays, so an attacker's failures never keep the owner of an e-mail out for long.
 * Attempts are rows of `login_attempts`, written when an attempt is let through and taken back if it succeeds, so
 * the counts hold across control processes, attempts being checked included (a process killed mid-check leaves its
 * attempt counted as a failure); rows older than the longest memory are deleted as failures come in, which bounds
 * the table by what the delays let through.
 */
import { type Clock, hashSecret, isoNow } from '../kernel/index.js';
import { type Db, lockKey } from '../store/index.js';
import {
  dateLoginAttempts,
  deleteLoginAttempts,
  deleteLoginAttemptsById,
  deleteOldLoginAttempts,
  insertLoginAttempts,
  summarizeLoginAttempts,
} from './portal.store.js';

/** One counter: how many failures are free, then delays doubling from `firstDelayMs` up to `maxDelayMs`. */
export interface DelayRule {
  /** Failures without any delay. */
  free: number;
  /** The wait after the `free`-th failure; each further failure doubles it. */
  firstDelayMs: number;
  maxDelayMs: number;
  /** How long a failure counts. */
  memoryMs: number;
}

export interface ThrottleOptions {
  /** One e-mail from one client address: the counter a user meets. */
  perPair: DelayRule;
  /** One client address across e-mails (generous: many users can share one address). */
  perAddress: DelayRule;
  /** One e-mail across addresses (loose: short delays only, so others' failures cannot keep its owner out). */
  perEmail: DelayRule;
}

export const defaultThrottle: ThrottleOptions = {
  perPair: { free: 5, firstDelayMs: 1000, maxDelayMs: 15 * 60_000, memoryMs: 24 * 3600_000 },
  perAddress: { free: 100, firstDelayMs: 1000, maxDelayMs: 60_000, memoryMs: 3600_000 },
  perEmail: { free: 50, firstDelayMs: 1000, maxDelayMs: 30_000, memoryMs: 3600_000 },
};

/** An attempt that may be made: settle it exactly once. */
export interface LoginAttempt {
  allowed: true;
  failed(): Promise<void>;
  succeeded(): Promise<void>;
  /** Neither: the check could not be made (an error); the attempt counts nothing. */
  abandon(): Promise<void>;
}

export type LoginClaim = LoginAttempt | { allowed: false; retryAfterSeconds: number };

export interface LoginThrottle {
  /**
   * Asks to try a password for `email` from `address`: an attempt to settle with its outcome, or the seconds to
   * wait. Attempts being checked count as failures until settled, in every process sharing the database, so past a
   * counter's free failures a burst of concurrent requests is one guess, not many.
   */
  claim(email: string, address: string): Promise<LoginClaim>;
}

/** The wait (ms) a counter with `count` failures, the latest at `last`, imposes at `now`. */
function waitOf(rule: DelayRule, count: number, last: number, now: number): number {
  if (count < rule.free) return 0;
  const delay = Math.min(rule.firstDelayMs * 2 ** (count - rule.free), rule.maxDelayMs);
  return Math.max(0, last + delay - now);
}

/** The advisory lock of a counter key on PostgreSQL: 48 bits of its SHA-256. */
function lockOf(key: string): number {
  return Number.parseInt(hashSecret(key).slice(0, 12), 16);
}

export function createLoginThrottle(
  deps: { db: Db; clock: Clock },
  scope: 'developer' | 'admin',
  options: ThrottleOptions = defaultThrottle,
): LoginThrottle {
  const rules = [options.perPair, options.perAddress, options.perEmail] as const;
  const memoryMs = Math.max(...rules.map((r) => r.memoryMs));
  const keysOf = (email: string, address: string) => {
    const e = email.trim().toLowerCase().slice(0, 320);
    const a = address.slice(0, 45);
    return [`${scope}:pair:${a}:${e}`, `${scope}:ip:${a}`, `${scope}:email:${e}`] as const;
  };
  let lastForgot = Number.NEGATIVE_INFINITY;

  return {
    async claim(email, address) {
      const keys = keysOf(email, address);
      // An attempt is written as a failure when it is claimed, in the transaction that counted the ones before it,
      // and undone if it succeeds or is abandoned: attempts being checked count in every process, and claims of one
      // e-mail or address are decided one after another (PostgreSQL: advisory locks, the e-mail's then the
      // address's, always in that order; SQLite: one writer at a time).
      const claimed = await deps.db.transaction().execute(async (tx) => {
        await lockKey(tx, lockOf(keys[2]));
        await lockKey(tx, lockOf(keys[1]));
        const now = deps.clock.now();
        const counts = await summarizeLoginAttempts(
          tx,
          keys.map((key, i) => ({ key, since: new Date(now - rules[i]!.memoryMs).toISOString() })),
        );
        let waitMs = 0;
        keys.forEach((key, i) => {
          const c = counts.get(key);
          if (c !== undefined) waitMs = Math.max(waitMs, waitOf(rules[i]!, c.count, Date.parse(c.last), now));
        });
        if (waitMs > 0) return { allowed: false as const, retryAfterSeconds: Math.ceil(waitMs / 1000) };
        return {
          allowed: true as const,
          ids: await insertLoginAttempts(tx, keys, new Date(now).toISOString()),
        };
      });
      if (!claimed.allowed) return claimed;
      const ids = claimed.ids;
      return {
        allowed: true,
        async failed() {
          await dateLoginAttempts(deps.db, ids, isoNow(deps.clock));
          // forgetting is a scan of the table: at most once a minute per process
          if (deps.clock.now() - lastForgot >= 60_000) {
            lastForgot = deps.clock.now();
            await deleteOldLoginAttempts(deps.db, new Date(lastForgot - memoryMs).toISOString());
          }
        },
        async succeeded() {
          // the pair is cleared; of the address's and the e-mail's counts only this attempt is taken back
          await deleteLoginAttempts(deps.db, keys[0]);
          await deleteLoginAttemptsById(deps.db, ids);
        },
        async abandon() {
          await deleteLoginAttemptsById(deps.db, ids);
        },
      };
    },
  };
}
