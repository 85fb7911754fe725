/**
 * Prometheus metrics of one gateway, on a registry of its own (no global default registry), served at
 * `/__trellis/metrics`. The per-request metrics (requests, latency, denials) are plain numbers on the hot path,
 * handed to prom-client only when the registry is scraped: prom-client hashes the label set on every `inc` and
 * `observe`, a cost paid here once per scrape instead of once per request.
 */
import {
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricType,
  type MetricValueWithName,
  Registry,
} from 'prom-client';
import type { CredentialCacheStats } from './credential-cache.js';

export interface MetricSources {
  cache(): CredentialCacheStats;
  usage(): {
    pendingRecords: number;
    oldestPendingAt: number | null;
    failedFlushes: number;
    failedCompactions: number;
  } | null;
  now(): number;
  snapshotLoadedAt(): number;
}

const STATUS_CLASSES = ['2xx', '3xx', '4xx', '5xx'] as const;

/** The latency histogram's upper bounds, in seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * A histogram without labels whose observations are plain counts, rendered in prom-client's format (cumulative
 * `_bucket{le}`, `+Inf`, `_sum`, `_count`) when scraped.
 */
class CountingHistogram extends Histogram {
  private readonly bounds: readonly number[];
  private readonly counts: number[];
  private sum = 0;
  private total = 0;

  constructor(name: string, help: string, buckets: readonly number[], registers: Registry[]) {
    super({ name, help, buckets: [...buckets], registers });
    this.bounds = buckets;
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  record(value: number): void {
    this.sum += value;
    this.total++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    // set by prom-client's constructor; not in its type declarations
    const { name, help, type } = this as unknown as { name: string; help: string; type: MetricType };
    const values: MetricValueWithName<string>[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      values.push({ labels: { le: this.bounds[i]! }, value: cumulative, metricName: `${name}_bucket` });
    }
    values.push({ labels: { le: '+Inf' }, value: this.total, metricName: `${name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${name}_sum` });
    values.push({ labels: {}, value: this.total, metricName: `${name}_count` });
    return { name, help, type, values, aggregator: 'sum', collect: () => {} };
  }

  /** The registry renders through this when it exists (prom-client's own histogram defines it). */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return this.get();
  }
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly duration: CountingHistogram;
  private readonly upstreamErrors: Counter<'service' | 'kind'>;
  private readonly limiterFailures: Counter<'mode' | 'failure_mode'>;
  private readonly snapshotReloads: Counter<'outcome'>;
  /** Requests by service: counts per status class, in the order of STATUS_CLASSES. */
  private readonly requestCounts = new Map<string, number[]>();
  private readonly denialCounts = new Map<string, number>();

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    const requestCounts = this.requestCounts;
    new Counter({
      name: 'trellis_gateway_requests_total',
      help: 'Requests answered, by service and status class.',
      labelNames: ['service', 'status'],
      registers,
      collect() {
        this.reset();
        for (const [service, counts] of requestCounts)
          for (let i = 0; i < counts.length; i++)
            if (counts[i]! > 0) this.inc({ service, status: STATUS_CLASSES[i]! }, counts[i]!);
      },
    });
    // no labels: one histogram for every request
    this.duration = new CountingHistogram(
      'trellis_gateway_request_duration_seconds',
      'Time from request to the end of the response.',
      LATENCY_BUCKETS,
      registers,
    );
    const denialCounts = this.denialCounts;
    new Counter({
      name: 'trellis_gateway_denials_total',
      help: 'Requests the gateway answered itself instead of the upstream, by error code.',
      labelNames: ['code'],
      registers,
      collect() {
        this.reset();
        for (const [code, count] of denialCounts) this.inc({ code }, count);
      },
    });
    this.upstreamErrors = new Counter({
      name: 'trellis_gateway_upstream_errors_total',
      help: 'Upstream failures: unreachable, timeout, aborted.',
      labelNames: ['service', 'kind'],
      registers,
    });
    this.limiterFailures = new Counter({
      name: 'trellis_gateway_limiter_failures_total',
      help: 'Times the shared counters could not be used, by consistency mode and what the gateway did.',
      labelNames: ['mode', 'failure_mode'],
      registers,
    });
    this.snapshotReloads = new Counter({
      name: 'trellis_gateway_snapshot_reloads_total',
      help: 'Configuration snapshot rebuilds after changes.',
      labelNames: ['outcome'],
      registers,
    });
    new Gauge({
      name: 'trellis_gateway_snapshot_age_seconds',
      help: 'Time since the configuration snapshot was built.',
      registers,
      collect() {
        this.set((sources.now() - sources.snapshotLoadedAt()) / 1000);
      },
    });
    new Gauge({
      name: 'trellis_gateway_credential_cache_entries',
      help: 'Credentials cached, known and unknown.',
      labelNames: ['kind'],
      registers,
      collect() {
        const s = sources.cache();
        this.set({ kind: 'known' }, s.size);
        this.set({ kind: 'unknown' }, s.negativeSize);
      },
    });
    new Gauge({
      name: 'trellis_gateway_credential_cache_lookups',
      help: 'Credential lookups answered from the cache (hit) or the database (miss), since start.',
      labelNames: ['result'],
      registers,
      collect() {
        const s = sources.cache();
        this.set({ result: 'hit' }, s.hits);
        this.set({ result: 'miss' }, s.misses);
      },
    });
    new Gauge({
      name: 'trellis_usage_flush_lag_seconds',
      help: 'Age of the oldest usage not yet written to the database.',
      registers,
      collect() {
        const u = sources.usage();
        this.set(u?.oldestPendingAt == null ? 0 : (sources.now() - u.oldestPendingAt) / 1000);
      },
    });
    new Gauge({
      name: 'trellis_usage_pending_records',
      help: 'Usage records summed in memory, not yet written.',
      registers,
      collect() {
        this.set(sources.usage()?.pendingRecords ?? 0);
      },
    });
    new Gauge({
      name: 'trellis_usage_failed_flushes',
      help: 'Usage flushes that failed (and were retried) since start.',
      registers,
      collect() {
        this.set(sources.usage()?.failedFlushes ?? 0);
      },
    });
    new Gauge({
      name: 'trellis_usage_failed_compactions',
      help: 'Compactions of the usage journal into the usage tables that failed (the journal kept for the next) since start.',
      registers,
      collect() {
        this.set(sources.usage()?.failedCompactions ?? 0);
      },
    });
  }

  request(service: string, status: number, seconds: number): void {
    let counts = this.requestCounts.get(service);
    if (counts === undefined) {
      counts = [0, 0, 0, 0];
      this.requestCounts.set(service, counts);
    }
    // 1xx cannot end a request; anything under 300 is a success
    counts[status >= 500 ? 3 : status >= 400 ? 2 : status >= 300 ? 1 : 0]!++;
    this.duration.record(seconds);
  }

  denial(code: string): void {
    this.denialCounts.set(code, (this.denialCounts.get(code) ?? 0) + 1);
  }

  upstreamError(service: string, kind: string): void {
    this.upstreamErrors.inc({ service, kind });
  }

  limiterFailure(mode: string, failureMode: string): void {
    this.limiterFailures.inc({ mode, failure_mode: failureMode });
  }

  snapshotReload(outcome: 'ok' | 'failed'): void {
    this.snapshotReloads.inc({ outcome });
  }
}
