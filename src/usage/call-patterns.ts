/**
 * What insights need of every call, summed in memory per minute next to the usage sums and flushed in the same
 * transaction (no write per call):
 * - calls per route (the first mapping rule that matched), status class and latency bucket — the route dimension
 *   of usage and the histogram percentiles come from;
 * - call patterns: reads (GET/HEAD) that follow the application's last create (POST) within a minute, by lag;
 *   calls made after a 429 before its Retry-After passed; the same request (route and method) again within 5 s
 *   of its failure (`repeat_failure`, prior route = the failure's class, 4xx or 5xx).
 * The gateway's memory of "last create" and "last 429" per application is bounded (`MAX_TRACKED` applications).
 */
import type { UsageCallPatternTable, UsageRouteCallTable } from './usage-tables.js';

/** Latency buckets grow by this factor: bucket i holds (BASE^(i-1), BASE^i] ms, bucket 0 holds [0, 1] ms. */
export const LATENCY_BASE = 1.2;
/** The last bucket is open-ended (above BASE^(LATENCY_BUCKETS-2) ms, about 4 minutes). */
export const LATENCY_BUCKETS = 70;
const LOG_BASE = Math.log(LATENCY_BASE);

/** The histogram bucket of a latency. */
export function latencyBucket(ms: number): number {
  if (!(ms > 1)) return 0;
  const i = Math.ceil(Math.log(ms) / LOG_BASE - 1e-9);
  return Math.min(i, LATENCY_BUCKETS - 1);
}

/**
 * The value a bucket stands for: the geometric middle of its bounds, so any latency inside is within
 * sqrt(1.2) - 1 ≈ 9.6 % of it (bucket 0, [0, 1] ms, stands for 0.5 ms: within 0.5 ms).
 */
export function latencyOfBucket(i: number): number {
  if (i <= 0) return 0.5;
  return LATENCY_BASE ** (i - 0.5);
}

const CLASSES = ['5xx', '1xx', '2xx', '3xx', '4xx', '5xx'];
const CLASS_INDEX: Record<string, number> = { '2xx': 0, '3xx': 1, '4xx': 2, '429': 3, '5xx': 4, '1xx': 5 };

/** '2xx', '3xx', '4xx', '5xx', with 429 (refused by a limit) a class of its own. */
export function statusClass(status: number): string {
  if (status === 429) return '429';
  return CLASSES[Math.floor(status / 100)] ?? '5xx';
}

/** A read this long after a create (ms) is no longer counted as following it. */
export const FOLLOW_WINDOW_MS = 60_000;
/** The lags reads after a create are counted by (upper bounds, seconds). */
export const FOLLOW_LAGS = [1, 2, 5, 10, 30, 60] as const;
/** A call repeating the application's last failed call (same route and method) this soon is counted (ms). */
export const REPEAT_WINDOW_MS = 5000;
/** The lags repeats are counted by (upper bounds, seconds). */
export const REPEAT_LAGS = [1, 2, 5] as const;
/** Applications whose last create and last 429 are remembered (oldest forgotten first). */
export const MAX_TRACKED = 10_000;

export interface PatternCall {
  at: number;
  serviceId: string;
  applicationId: string;
  method: string;
  route: string;
  status: number;
  latencyMs: number;
  retryAfterS: number;
}

/** An application's histogram rows in one minute: route → latency bucket × 8 + class index → row. */
export type RouteRows = Map<string, Map<number, UsageRouteCallTable>>;

export interface PatternBatch {
  routeRows: UsageRouteCallTable[];
  patternRows: UsageCallPatternTable[];
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_TRACKED) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}

export class CallPatterns {
  /** bucket → application → route → status class and latency bucket (one number) → row: lookups on strings the
   * gateway already holds (their hashes are cached), no key building per call */
  private routes = new Map<string, Map<string, RouteRows>>();
  private routeRows: UsageRouteCallTable[] = [];
  /** Sums handed over so far: an application's {@link RouteRows} from before a take are no longer the sums'. */
  private taken = 0;
  private patterns = new Map<string, UsageCallPatternTable>();
  /** application → its last create */
  private readonly lastCreate = new Map<string, { at: number; route: string }>();
  /** application → until when its last 429 asked it to wait (epoch ms) */
  private readonly waitUntil = new Map<string, number>();
  /** application → its last failed call (4xx but 429, or 5xx) */
  private readonly lastFailure = new Map<
    string,
    { at: number; route: string; method: string; cls: string }
  >();

  /** How many times the sums were handed over: a caller keeping an application's rows checks it did not change. */
  get takes(): number {
    return this.taken;
  }

  /** The rows of an application in a minute, made empty when new (kept by the recorder for the next calls). */
  routesOf(bucket: string, applicationId: string): RouteRows {
    let byApp = this.routes.get(bucket);
    if (byApp === undefined) {
      byApp = new Map();
      this.routes.set(bucket, byApp);
    }
    let byRoute = byApp.get(applicationId);
    if (byRoute === undefined) {
      byRoute = new Map();
      byApp.set(applicationId, byRoute);
    }
    return byRoute;
  }

  /**
   * Sums one call; `routes` is the application's rows in `bucket` (`routesOf`) when the caller already holds them.
   * The last create, 429 and failure are looked up only while some application has one.
   */
  record(c: PatternCall, bucket: string, routes = this.routesOf(bucket, c.applicationId)): void {
    const cls = statusClass(c.status);
    const lb = latencyBucket(c.latencyMs);
    this.routeRow(routes, bucket, c.serviceId, c.applicationId, c.route, cls, lb).calls++;

    const until = this.waitUntil.size === 0 ? undefined : this.waitUntil.get(c.applicationId);
    if (until !== undefined) {
      if (c.at < until) this.pattern(bucket, c, 'early_retry', '', 0);
      else if (c.status !== 429) this.waitUntil.delete(c.applicationId);
    }
    if (c.status === 429 && c.retryAfterS > 0) {
      const next = c.at + c.retryAfterS * 1000;
      if (until === undefined || next > until) remember(this.waitUntil, c.applicationId, next);
    }

    // the same request again soon after it failed: a retry without backoff (5xx) or a repeated mistake (4xx)
    const failed = this.lastFailure.size === 0 ? undefined : this.lastFailure.get(c.applicationId);
    if (failed !== undefined) {
      const lag = c.at - failed.at;
      if (lag >= 0 && lag <= REPEAT_WINDOW_MS && failed.route === c.route && failed.method === c.method) {
        const bound = REPEAT_LAGS.find((s) => lag <= s * 1000) ?? 5;
        this.pattern(bucket, c, 'repeat_failure', failed.cls, bound);
      }
    }
    if ((cls === '4xx' || cls === '5xx') && c.route !== '') {
      remember(this.lastFailure, c.applicationId, { at: c.at, route: c.route, method: c.method, cls });
    } else if (failed !== undefined && cls !== '429') {
      this.lastFailure.delete(c.applicationId);
    }

    if (c.route === '') return;
    if (c.method === 'POST') {
      remember(this.lastCreate, c.applicationId, { at: c.at, route: c.route });
    } else if (c.method === 'GET' || c.method === 'HEAD') {
      const created = this.lastCreate.size === 0 ? undefined : this.lastCreate.get(c.applicationId);
      if (created === undefined) return;
      const lag = c.at - created.at;
      if (lag < 0 || lag > FOLLOW_WINDOW_MS) return;
      const bound = FOLLOW_LAGS.find((s) => lag <= s * 1000) ?? 60;
      this.pattern(bucket, c, 'after_create', created.route, bound);
    }
  }

  /**
   * The row of (bucket, application, route, class, latency bucket) in the application's `byRoute` rows of that
   * bucket, zero when new; a route has one service.
   */
  private routeRow(
    byRoute: RouteRows,
    bucket: string,
    serviceId: string,
    applicationId: string,
    route: string,
    cls: string,
    lb: number,
  ): UsageRouteCallTable {
    let rows = byRoute.get(route);
    if (rows === undefined) {
      rows = new Map();
      byRoute.set(route, rows);
    }
    const n = lb * 8 + CLASS_INDEX[cls]!;
    let row = rows.get(n);
    if (row === undefined) {
      row = {
        bucket,
        service_id: serviceId,
        application_id: applicationId,
        route,
        status_class: cls,
        latency_bucket: lb,
        calls: 0,
      };
      rows.set(n, row);
      this.routeRows.push(row);
    }
    return row;
  }

  private pattern(bucket: string, c: PatternCall, kind: string, prior: string, lag: number): void {
    const key = `${bucket}|${c.applicationId}|${c.serviceId}|${kind}|${c.route}|${prior}|${lag}`;
    const row = this.patterns.get(key);
    if (row) row.calls++;
    else
      this.patterns.set(key, {
        bucket,
        service_id: c.serviceId,
        application_id: c.applicationId,
        kind,
        route: c.route,
        prior_route: prior,
        lag,
        calls: 1,
      });
  }

  /** Whether there are sums not yet handed over. */
  pending(): boolean {
    return this.routeRows.length > 0 || this.patterns.size > 0;
  }

  /** The sums so far, handed over for a flush; the next calls start new sums. */
  take(): PatternBatch {
    const batch = { routeRows: this.routeRows, patternRows: [...this.patterns.values()] };
    this.taken++;
    this.routes = new Map();
    this.routeRows = [];
    this.patterns = new Map();
    return batch;
  }

  /** Adds back the sums of a flush that failed. */
  restore(batch: PatternBatch): void {
    for (const r of batch.routeRows) {
      this.routeRow(
        this.routesOf(r.bucket, r.application_id),
        r.bucket,
        r.service_id,
        r.application_id,
        r.route,
        r.status_class,
        r.latency_bucket,
      ).calls += r.calls;
    }
    for (const r of batch.patternRows) {
      const key = `${r.bucket}|${r.application_id}|${r.service_id}|${r.kind}|${r.route}|${r.prior_route}|${r.lag}`;
      const row = this.patterns.get(key);
      if (row) row.calls += r.calls;
      else this.patterns.set(key, r);
    }
  }
}
