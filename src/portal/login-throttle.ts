/**
 * Login attempts slowed by growing delays, never locked out (issue 8, item 18). Failures are counted per
 * (e-mail, client address) pair: after a few, each further attempt of that pair waits 1 s, 2 s, 4 s … up to a
 * quarter of an hour, and within the wait the password is not even checked. Once the wait passed the right password
 * signs in, and a success clears the pair. Two looser counters slow what the pair cannot see: one per address across
 * e-mails (credential stuffing from one place) and one per e-mail across addresses (guessing spread over many
 * places), with short delays, so an attacker's failures never keep the owner of an e-mail out for long.
 * Attempts are rows of `login_attempts`, so the counts hold across control processes; rows older than the longest
 * memory are deleted as failures come in, which bounds the table by what the delays let through.
 */
import { type Clock, isoNow } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import {
  deleteLoginAttempts,
  deleteOldLoginAttempts,
  insertLoginAttempt,
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
  /** Neither: the check could not be made (an error); only frees the pair for the next attempt. */
  abandon(): void;
}

export type LoginClaim = LoginAttempt | { allowed: false; retryAfterSeconds: number };

export interface LoginThrottle {
  /**
   * Asks to try a password for `email` from `address`: an attempt to settle with its outcome, or the seconds to
   * wait. Attempts being checked count as failures until settled, and past a counter's free failures one attempt
   * is checked at a time (in this process), so a burst of concurrent requests is not a burst of guesses.
   */
  claim(email: string, address: string): Promise<LoginClaim>;
}

/** The wait (ms) a counter with `count` failures, the latest at `last`, imposes at `now`. */
function waitOf(rule: DelayRule, count: number, last: number, now: number): number {
  if (count < rule.free) return 0;
  const delay = Math.min(rule.firstDelayMs * 2 ** (count - rule.free), rule.maxDelayMs);
  return Math.max(0, last + delay - now);
}

export function createLoginThrottle(
  deps: { db: Executor; clock: Clock },
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
  /** Attempts being checked now, per counter key: they count as failures until settled. */
  const inFlight = new Map<string, number>();
  let lastForgot = Number.NEGATIVE_INFINITY;
  const settle = (keys: readonly string[]) => {
    for (const key of keys) {
      const n = (inFlight.get(key) ?? 1) - 1;
      if (n <= 0) inFlight.delete(key);
      else inFlight.set(key, n);
    }
  };

  return {
    async claim(email, address) {
      const keys = keysOf(email, address);
      const now = deps.clock.now();
      const counts = await summarizeLoginAttempts(
        deps.db,
        keys.map((key, i) => ({ key, since: new Date(now - rules[i]!.memoryMs).toISOString() })),
      );
      let waitMs = 0;
      keys.forEach((key, i) => {
        const rule = rules[i]!;
        const c = counts.get(key);
        const checking = inFlight.get(key) ?? 0;
        if ((c?.count ?? 0) + checking < rule.free) return;
        // past the free failures, one attempt at a time: a burst sent as a delay ends is one guess, not many
        const wait = c ? waitOf(rule, c.count, Date.parse(c.last), now) : 0;
        waitMs = Math.max(waitMs, wait, checking > 0 ? 1000 : 0);
      });
      if (waitMs > 0) return { allowed: false, retryAfterSeconds: Math.ceil(waitMs / 1000) };
      for (const key of keys) inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      const pair = keys[0];
      let settled = false;
      const done = () => {
        if (!settled) settle(keys);
        settled = true;
      };
      return {
        allowed: true,
        async failed() {
          try {
            const at = isoNow(deps.clock);
            for (const key of keys) await insertLoginAttempt(deps.db, key, at);
            // forgetting is a scan of the table: at most once a minute per process
            if (deps.clock.now() - lastForgot >= 60_000) {
              lastForgot = deps.clock.now();
              await deleteOldLoginAttempts(deps.db, new Date(lastForgot - memoryMs).toISOString());
            }
          } finally {
            done();
          }
        },
        async succeeded() {
          // only the pair: an address's or an e-mail's count is not the signed-in user's to clear
          try {
            await deleteLoginAttempts(deps.db, pair);
          } finally {
            done();
          }
        },
        abandon: done,
      };
    },
  };
}
