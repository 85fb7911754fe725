/**
 * Prometheus metrics of the webhook queue (issue 9), on a registry of its own (no global default registry).
 *
 * - Queue depth and the age of the oldest pending message and of the oldest event not yet fanned out are read from
 *   the database when scraped, so they are right however many workers share it (any worker's scrape says the same).
 * - Attempts by outcome and the delivery latency are counted by the worker process that made them: sum them over
 *   the workers in Prometheus.
 *
 * `trellis start` serves them on the gateway's `/__trellis/metrics` (one gateway process) and `trellis worker` on
 * its own small listener when TRELLIS_WORKER_METRICS_PORT is set (see serveMetrics).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import type { AttemptOutcome } from './worker.js';
import { metricsFigures } from './webhooks.store.js';

/** The delivery latency histogram's upper bounds, in seconds. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15];

export interface WebhookMetrics {
  readonly registry: Registry;
  /** Counts one attempt (pass as the worker's `onAttempt`). */
  attempt(outcome: AttemptOutcome): void;
}

/**
 * @example const metrics = createWebhookMetrics({ db, clock }); createWebhookWorker({ …, onAttempt: metrics.attempt })
 */
export function createWebhookMetrics(deps: { db: Executor; clock: Clock }): WebhookMetrics {
  const registry = new Registry();
  const registers = [registry];
  /** one read of the database per scrape, shared by the four gauges */
  let figures: ReturnType<typeof metricsFigures> | null = null;
  const read = () => {
    figures ??= metricsFigures(deps.db).finally(() => {
      // the next scrape reads again
      setImmediate(() => {
        figures = null;
      });
    });
    return figures;
  };
  const ageSeconds = (iso: string | null): number =>
    iso === null ? 0 : Math.max(0, (deps.clock.now() - Date.parse(iso)) / 1000);
  new Gauge({
    name: 'trellis_webhook_queue_depth',
    help: 'Messages pending delivery (due now or waiting for a retry), read from the database when scraped.',
    registers,
    async collect() {
      this.set((await read()).pending);
    },
  });
  new Gauge({
    name: 'trellis_webhook_oldest_pending_message_age_seconds',
    help: 'Age of the oldest pending message (since it was made); 0 when none is pending.',
    registers,
    async collect() {
      this.set(ageSeconds((await read()).oldestPendingAt));
    },
  });
  new Gauge({
    name: 'trellis_webhook_undispatched_events',
    help: 'Events in the outbox not yet fanned out into messages.',
    registers,
    async collect() {
      this.set((await read()).undispatched);
    },
  });
  new Gauge({
    name: 'trellis_webhook_oldest_pending_event_age_seconds',
    help: 'Age of the oldest event not yet fanned out (since it occurred); 0 when none waits.',
    registers,
    async collect() {
      this.set(ageSeconds((await read()).oldestUndispatchedAt));
    },
  });
  const attempts = new Counter({
    name: 'trellis_webhook_attempts_total',
    help:
      'Delivery attempts made by this process, by outcome: success (2xx), http_4xx, http_429, http_5xx, http_other, ' +
      'timeout, network, refused (SSRF guard or URL), redirect (not followed), too_large (answer past the limit).',
    labelNames: ['outcome'],
    registers,
  });
  const latency = new Histogram({
    name: 'trellis_webhook_delivery_duration_seconds',
    help: 'Time from sending a delivery to its answer (or failure), by this process.',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  return {
    registry,
    attempt(outcome) {
      attempts.inc({ outcome: outcome.kind });
      latency.observe(outcome.latencyMs / 1000);
    },
  };
}

/**
 * A small listener serving a registry at `/metrics` (nothing else): the metrics of `trellis worker`, which has
 * no other HTTP server.
 */
export async function serveMetrics(
  registry: Registry,
  port: number,
  host: string,
): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
