import type { Executor } from '../store/index.js';
import { selectCalls, selectMetricCounts } from './usage.store.js';
import type { Granularity } from './usage-tables.js';

const STEP: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
/** Series longer than this are returned without zero-filling. */
const MAX_FILLED_POINTS = 10_000;

export interface UsageQuery {
  granularity: Granularity;
  /** Start (inclusive) and end (exclusive); rounded down to the granularity. */
  from: Date | string;
  to: Date | string;
  serviceId?: string | undefined;
  applicationId?: string | undefined;
  accountId?: string | undefined;
  metricId?: string | undefined;
}

export interface UsagePoint {
  /** ISO 8601 start of the bucket. */
  at: string;
  value: number;
}

export interface UsageSeries {
  metricId: string;
  total: number;
  /** One point per bucket of the range, zero where nothing was recorded. */
  points: UsagePoint[];
}

/** The start of the bucket `at` falls in (ms); every range query of usage-like series floors `from` with it. */
export function floorTo(at: Date | string, granularity: Granularity): number {
  const ms = typeof at === 'string' ? Date.parse(at) : at.getTime();
  if (Number.isNaN(ms)) throw new RangeError(`not a timestamp: ${String(at)}`);
  return ms - (ms % STEP[granularity]);
}

/** The end of the bucket `at` falls in, or `at` itself on a bucket boundary (ms). */
export function ceilTo(at: Date | string, granularity: Granularity): number {
  const ms = typeof at === 'string' ? Date.parse(at) : at.getTime();
  const floor = floorTo(at, granularity);
  return floor === ms ? ms : floor + STEP[granularity];
}

/** The ISO start of a bucket from its ISO prefix (`2026-01-01T10` for an hour). */
function prefixToIso(prefix: string): string {
  return `${prefix}${'0000-00-00T00:00:00.000Z'.slice(prefix.length)}`;
}

function bucketsOf(from: number, to: number, granularity: Granularity): string[] | null {
  const step = STEP[granularity];
  if ((to - from) / step > MAX_FILLED_POINTS) return null;
  const out: string[] = [];
  for (let t = from; t < to; t += step) out.push(new Date(t).toISOString());
  return out;
}

/**
 * Usage per metric over a range, one series per metric, for charts.
 * @example await queryUsage(db, { applicationId: 'app_…', granularity: 'hour', from: '2026-01-01', to: '2026-01-02' })
 */
export async function queryUsage(db: Executor, q: UsageQuery): Promise<UsageSeries[]> {
  const from = floorTo(q.from, q.granularity);
  const to = ceilTo(q.to, q.granularity);
  const rows = await selectMetricCounts(db, {
    granularity: q.granularity,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    serviceId: q.serviceId,
    applicationId: q.applicationId,
    accountId: q.accountId,
    metricId: q.metricId,
  });
  const byMetric = new Map<string, Map<string, number>>();
  for (const r of rows) {
    const m = byMetric.get(r.metric_id) ?? new Map<string, number>();
    m.set(r.bucket, (m.get(r.bucket) ?? 0) + r.value);
    byMetric.set(r.metric_id, m);
  }
  if (q.metricId && !byMetric.has(q.metricId)) byMetric.set(q.metricId, new Map());
  const buckets = bucketsOf(from, to, q.granularity);
  return [...byMetric.entries()].map(([metricId, values]) => {
    const points = buckets
      ? buckets.map((at) => ({ at, value: values.get(at) ?? 0 }))
      : [...values.entries()].map(([at, value]) => ({ at, value }));
    return { metricId, total: points.reduce((s, p) => s + p.value, 0), points };
  });
}

export interface TrafficQuery {
  granularity: Granularity;
  from: Date | string;
  to: Date | string;
  serviceId?: string | undefined;
  applicationId?: string | undefined;
}

export interface TrafficPoint {
  at: string;
  calls: number;
  clientErrors: number;
  serverErrors: number;
  latencyMsAvg: number;
  latencyMsMax: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * Calls, errors, latency and bytes per bucket (every call, refused ones too), for monitoring charts.
 * @example await queryTraffic(db, { serviceId: 'svc_…', granularity: 'minute', from, to })
 */
export async function queryTraffic(db: Executor, q: TrafficQuery): Promise<TrafficPoint[]> {
  const from = floorTo(q.from, q.granularity);
  const to = ceilTo(q.to, q.granularity);
  const rows = await selectCalls(db, {
    granularity: q.granularity,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    serviceId: q.serviceId,
    applicationId: q.applicationId,
  });
  const byBucket = new Map(rows.map((r) => [r.bucket, r]));
  const width = q.granularity === 'minute' ? 16 : q.granularity === 'hour' ? 13 : 10;
  const buckets = bucketsOf(from, to, q.granularity) ?? rows.map((r) => prefixToIso(r.bucket));
  return buckets.map((at) => {
    const r = byBucket.get(at.slice(0, width));
    return {
      at,
      calls: r?.calls ?? 0,
      clientErrors: r?.client_errors ?? 0,
      serverErrors: r?.server_errors ?? 0,
      latencyMsAvg: r && r.calls > 0 ? r.latency_ms_sum / r.calls : 0,
      latencyMsMax: r?.latency_ms_max ?? 0,
      bytesIn: r?.bytes_in ?? 0,
      bytesOut: r?.bytes_out ?? 0,
    };
  });
}
