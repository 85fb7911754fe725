/**
 * When a failed delivery is tried again. The published schedule (docs/webhooks.md) follows Svix's: at once,
 * then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after each failure — eight attempts over about 28 hours —
 * each delay stretched by up to 10 % of jitter so endpoints that failed together are not retried together. A
 * `Retry-After` on 429 or 503 replaces the delay (never shortened by jitter, at most the longest step).
 */

/** Delay before each attempt, in milliseconds: the first is immediate. */
export const retrySchedule: readonly number[] = Object.freeze([
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
]);

/** The largest share of a delay added as jitter. */
export const retryJitter = 0.1;

/**
 * The delay before the next attempt after `attemptsMade` attempts failed, or null when the schedule is done.
 * `random` is in [0, 1) (injected so tests know the jitter).
 */
export function nextRetryDelay(
  attemptsMade: number,
  retryAfterMs: number | null,
  random: () => number = Math.random,
  schedule: readonly number[] = retrySchedule,
): number | null {
  if (attemptsMade >= schedule.length) return null;
  const longest = Math.max(...schedule);
  if (retryAfterMs !== null) return Math.min(Math.max(0, retryAfterMs), longest);
  const base = schedule[attemptsMade] ?? longest;
  return Math.round(base * (1 + retryJitter * random()));
}

/**
 * A `Retry-After` header in milliseconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or
 * unreadable.
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return null;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs);
}
