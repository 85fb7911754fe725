/**
 * Prometheus metrics of one gateway, on a registry of its own (no global default registry), served at
 * `/__trellis/metrics`. Label children are cached per label set so the hot path does not build label keys.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CredentialCacheStats } from './credential-cache.js';

export interface MetricSources {
  cache(): CredentialCacheStats;
  usage(): { pendingRecords: number; oldestPendingAt: number | null; failedFlushes: number } | null;
  now(): number;
  snapshotLoadedAt(): number;
}

type Inc = { inc(n?: number): void };

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'service' | 'status'>;
  private readonly duration: Histogram;
  private readonly denials: Counter<'code'>;
  private readonly upstreamErrors: Counter<'service' | 'kind'>;
  private readonly limiterFailures: Counter<'mode' | 'failure_mode'>;
  private readonly snapshotReloads: Counter<'outcome'>;
  private readonly requestChildren = new Map<string, Inc>();
  private readonly denialChildren = new Map<string, Inc>();

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'trellis_gateway_requests_total',
      help: 'Requests answered, by service and status class.',
      labelNames: ['service', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'trellis_gateway_request_duration_seconds',
      // no labels: prom-client hashes label sets on every observation, a cost the hot path does not need
      help: 'Time from request to the end of the response.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.denials = new Counter({
      name: 'trellis_gateway_denials_total',
      help: 'Requests the gateway answered itself instead of the upstream, by error code.',
      labelNames: ['code'],
      registers,
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
  }

  request(service: string, status: number, seconds: number): void {
    const statusClass = status >= 500 ? '5xx' : status >= 400 ? '4xx' : status >= 300 ? '3xx' : '2xx';
    const key = `${service}\u0000${statusClass}`;
    let inc = this.requestChildren.get(key);
    if (!inc) {
      inc = this.requests.labels({ service, status: statusClass });
      this.requestChildren.set(key, inc);
    }
    inc.inc();
    this.duration.observe(seconds);
  }

  denial(code: string): void {
    let inc = this.denialChildren.get(code);
    if (!inc) {
      inc = this.denials.labels({ code });
      this.denialChildren.set(code, inc);
    }
    inc.inc();
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
