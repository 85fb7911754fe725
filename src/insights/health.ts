/**
 * Integration health from the per-minute histograms: latency percentiles (within the stated error of the
 * log-spaced buckets: ±9.6 %, or ±0.5 ms under 1 ms) and error rates by class.
 */
import { LATENCY_BUCKETS, latencyOfBucket } from '../usage/index.js';
import type { RouteCallRow } from './insights.store.js';

/** The relative error of a percentile read from the histogram (sqrt(1.2) - 1). */
export const PERCENTILE_ERROR = Math.sqrt(1.2) - 1;

export interface Health {
  calls: number;
  /** Latency in ms as the partner sees it (gateway + upstream); null without calls. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  byClass: Record<string, number>;
  /** Shares of all calls: 4xx (the partner's doing, 429 apart), 429 (refused by a limit), 5xx (the provider's). */
  clientErrorRate: number;
  rateLimitedRate: number;
  serverErrorRate: number;
}

/** A histogram: counts per latency bucket. */
export type Histogram = number[];

export function emptyHistogram(): Histogram {
  return new Array<number>(LATENCY_BUCKETS).fill(0);
}

/** The value at quantile q (0 < q ≤ 1) of a histogram, as its bucket's middle; null when empty. */
export function percentile(h: Histogram, q: number): number | null {
  let total = 0;
  for (const c of h) total += c;
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < h.length; i++) {
    seen += h[i] ?? 0;
    if (seen >= rank) return Math.round(latencyOfBucket(i) * 100) / 100;
  }
  return Math.round(latencyOfBucket(h.length - 1) * 100) / 100;
}

/** Health of a set of route rows (one application's, or any). */
export function healthOf(rows: readonly RouteCallRow[]): Health {
  const h = emptyHistogram();
  const byClass: Record<string, number> = { '2xx': 0, '3xx': 0, '4xx': 0, '429': 0, '5xx': 0 };
  let calls = 0;
  for (const r of rows) {
    calls += r.calls;
    byClass[r.status_class] = (byClass[r.status_class] ?? 0) + r.calls;
    if (r.latency_bucket >= 0 && r.latency_bucket < h.length) h[r.latency_bucket]! += r.calls;
  }
  const share = (n: number) => (calls === 0 ? 0 : Math.round((n / calls) * 10_000) / 10_000);
  return {
    calls,
    p50: percentile(h, 0.5),
    p95: percentile(h, 0.95),
    p99: percentile(h, 0.99),
    byClass,
    clientErrorRate: share(byClass['4xx'] ?? 0),
    rateLimitedRate: share(byClass['429'] ?? 0),
    serverErrorRate: share(byClass['5xx'] ?? 0),
  };
}
