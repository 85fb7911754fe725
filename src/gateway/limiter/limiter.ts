/**
 * The one interface over every counter backend (in-memory, Redis). A request's limits are checked and counted
 * together: either every counter has room and all are incremented, or none is (a denied request does not count).
 */
import type { Period } from './periods.js';

/** `strict`: an atomic check-and-increment on the shared store. `batched`: local counting, synced in the background. */
export type ConsistencyMode = 'strict' | 'batched';
/** What to do when the shared counters cannot be reached: keep serving on local counts, or refuse with 503. */
export type FailureMode = 'open' | 'closed';

/** What a counter counts, so a limiter can look up usage recorded for it (never parsed back out of `key`). */
export interface CounterSubject {
  readonly applicationId: string;
  readonly metricId: string;
  readonly period: Period;
  /** A counter per end user: recorded usage does not say which end user used a metric. */
  readonly endUser: boolean;
}

/** One counter a request wants to add to. */
export interface CounterCheck {
  /** The counter apart from its window: scope (application or end user), metric and period. */
  readonly key: string;
  readonly windowStart: number;
  /** End of the window (epoch ms); `Infinity` for counters that never reset. */
  readonly windowEnd: number;
  readonly limit: number;
  readonly delta: number;
  readonly subject?: CounterSubject;
}

export interface ConsumeOptions {
  readonly mode: ConsistencyMode;
  readonly failureMode: FailureMode;
  /** The injected clock's time, for counter expiry. */
  readonly now: number;
}

export type LimiterOutcome =
  /** `used[i]` is the count of `checks[i]` after this request. */
  | { readonly kind: 'allowed'; readonly used: readonly number[] }
  /** `used[i]` is the count before this request; `exceeded` lists the indexes of counters without room. */
  | { readonly kind: 'exceeded'; readonly used: readonly number[]; readonly exceeded: readonly number[] }
  /** The shared counters are unreachable and the service fails closed. */
  | { readonly kind: 'unavailable' };

/** Why a limiter fell back to local counts or refused: reported to logs and metrics. */
export interface LimiterFailure {
  readonly mode: ConsistencyMode;
  readonly failureMode: FailureMode;
  readonly error: Error;
}

export interface Limiter {
  /** Checks every counter and, when all have room, adds every delta. */
  consume(checks: readonly CounterCheck[], options: ConsumeOptions): LimiterOutcome | Promise<LimiterOutcome>;
  /** Stops background work and pushes what is still local. */
  close(): Promise<void>;
}
