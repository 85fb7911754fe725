/**
 * Prometheus metrics of the webhook queue (issue 9): the worker role as `trellis worker` composes it, scraped on
 * its metrics listener. Depth and ages come from the database at scrape time; attempts by outcome and the
 * latency histogram from the worker that made them. Real receivers answer 200, 404, 429 and 500.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeWorkerRole, type WorkerRole } from '../../src/cli/roles.js';
import { startTrellis } from '../../src/cli/start.js';
import { loadConfig } from '../../src/config/index.js';
import { attemptKind } from '../../src/webhooks/worker.js';
import { dialects } from '../support/stores.js';
import { type HooksHarness, type Receiver, startHooks, startReceiver } from './harness.js';

/** The value of one series in a Prometheus text exposition (undefined when absent). */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    if (line.slice(0, at) === series) return Number(line.slice(at + 1));
  }
  return undefined;
}

describe('attemptKind', () => {
  it('names each outcome', () => {
    expect(attemptKind(200, null)).toBe('success');
    expect(attemptKind(204, null)).toBe('success');
    expect(attemptKind(404, null)).toBe('http_4xx');
    expect(attemptKind(410, null)).toBe('http_4xx');
    expect(attemptKind(429, null)).toBe('http_429');
    expect(attemptKind(503, null)).toBe('http_5xx');
    expect(attemptKind(302, null)).toBe('http_other');
    expect(attemptKind(null, 'outbound_timeout')).toBe('timeout');
    expect(attemptKind(null, 'outbound_address_refused')).toBe('refused');
    expect(attemptKind(null, 'outbound_redirect_refused')).toBe('redirect');
    expect(attemptKind(null, 'outbound_too_large')).toBe('too_large');
    expect(attemptKind(null, 'outbound_failed')).toBe('network');
    expect(attemptKind(null, null)).toBe('network');
  });
});

describe.each(dialects)('webhook metrics (%s)', (dialect) => {
  let h: HooksHarness;
  let role: WorkerRole;
  const receivers: Receiver[] = [];
  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${role.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };

  beforeAll(async () => {
    h = await startHooks(dialect);
    role = await composeWorkerRole({
      config: { ...h.config, insightsIntervalMs: 0 },
      store: h.store,
      logger: pino({ level: 'silent' }),
      clock: h.clock,
      options: { random: () => 0 },
      metricsPort: 0,
    });
  });
  afterAll(async () => {
    await role?.close();
    for (const r of receivers) await r.close();
    await h?.close();
  });

  it('serves depth, ages, attempts by outcome and latency after deliveries that succeed and fail', async () => {
    const empty = await scrape();
    expect(sample(empty, 'trellis_webhook_queue_depth')).toBe(0);
    expect(sample(empty, 'trellis_webhook_oldest_pending_message_age_seconds')).toBe(0);
    expect(sample(empty, 'trellis_webhook_delivery_duration_seconds_count')).toBe(0);

    for (const status of [200, 404, 429, 500]) {
      const receiver = await startReceiver(h.clock);
      receiver.respond = () => ({ status });
      receivers.push(receiver);
      const res = await h.call('POST', '/webhooks/endpoints', {
        url: receiver.url,
        eventTypes: ['account.created'],
      });
      expect(res.statusCode, res.body).toBe(201);
      receiver.secrets.push((res.json() as { secret: string }).secret);
    }
    // the endpoints' own events (webhook_endpoint.created) go to nobody: fan them out first
    await role.worker.fanOut();
    expect((await h.call('POST', '/accounts', { name: 'Metered' })).statusCode).toBe(201);
    h.clock.advance(30_000);

    const waiting = await scrape();
    expect(sample(waiting, 'trellis_webhook_undispatched_events')).toBe(1);
    expect(sample(waiting, 'trellis_webhook_oldest_pending_event_age_seconds')).toBe(30);
    expect(sample(waiting, 'trellis_webhook_queue_depth')).toBe(0);

    expect((await role.worker.fanOut()).messages).toBe(4);
    h.clock.advance(5000);
    const fanned = await scrape();
    expect(sample(fanned, 'trellis_webhook_undispatched_events')).toBe(0);
    expect(sample(fanned, 'trellis_webhook_oldest_pending_event_age_seconds')).toBe(0);
    expect(sample(fanned, 'trellis_webhook_queue_depth')).toBe(4);
    expect(sample(fanned, 'trellis_webhook_oldest_pending_message_age_seconds')).toBe(5);

    expect(await role.worker.deliverDue()).toBe(4);
    const delivered = await scrape();
    for (const outcome of ['success', 'http_4xx', 'http_429', 'http_5xx']) {
      expect(sample(delivered, `trellis_webhook_attempts_total{outcome="${outcome}"}`), outcome).toBe(1);
    }
    expect(sample(delivered, 'trellis_webhook_attempts_total{outcome="timeout"}')).toBeUndefined();
    expect(sample(delivered, 'trellis_webhook_delivery_duration_seconds_count')).toBe(4);
    expect(sample(delivered, 'trellis_webhook_delivery_duration_seconds_bucket{le="+Inf"}')).toBe(4);
    // the three that failed wait for their retry
    expect(sample(delivered, 'trellis_webhook_queue_depth')).toBe(3);
    expect(receivers.map((r) => r.received.length)).toEqual([1, 1, 1, 1]);

    // a retry that succeeds counts as one more success; nothing is pending any more
    for (const r of receivers) r.respond = () => ({ status: 200 });
    h.clock.advance(10 * 60_000);
    expect(await role.worker.deliverDue()).toBe(3);
    const settled = await scrape();
    expect(sample(settled, 'trellis_webhook_attempts_total{outcome="success"}')).toBe(4);
    expect(sample(settled, 'trellis_webhook_delivery_duration_seconds_count')).toBe(7);
    expect(sample(settled, 'trellis_webhook_queue_depth')).toBe(0);
    expect(sample(settled, 'trellis_webhook_oldest_pending_message_age_seconds')).toBe(0);
  });

  it('the running loop (claims the next batch while the last settles) has settled every batch when stop() returns', async () => {
    const before = sample(await scrape(), 'trellis_webhook_attempts_total{outcome="success"}') ?? 0;
    const worker = h.worker({ deliveryBatch: 3, pollMs: 10 });
    await worker.fanOut();
    for (let i = 0; i < 5; i++)
      expect((await h.call('POST', '/accounts', { name: `Looped ${i}` })).statusCode).toBe(201);
    const got = () => receivers.reduce((n, r) => n + r.received.length, 0);
    const already = got();
    // stopped the moment the last delivery arrives, before it is answered: its batch settles after the loop ends
    let stopping: Promise<void> | null = null;
    for (const r of receivers)
      r.respond = () => {
        if (got() === already + 20) stopping ??= worker.stop();
        return { status: 200 };
      };
    worker.start();
    const until = Date.now() + 20_000;
    while (stopping === null && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await stopping;
    expect(got()).toBe(already + 20);
    const after = await scrape();
    // every message of the 5 events × 4 endpoints settled as succeeded: none pending, none still leased
    expect(sample(after, 'trellis_webhook_queue_depth')).toBe(0);
    const { rows } = await sql<{ n: number | string }>`
      select count(*) as n from webhook_messages where locked_by is not null or state <> 'succeeded'`.execute(
      h.store.db,
    );
    expect(Number(rows[0]?.n)).toBe(0);
    // that worker is not the role's: the role counted none of these
    expect(sample(after, 'trellis_webhook_attempts_total{outcome="success"}')).toBe(before);
  });

  it('answers 404 beside /metrics', async () => {
    expect((await fetch(`http://127.0.0.1:${role.metricsPort}/other`)).status).toBe(404);
  });
});

describe('trellis start', () => {
  it("serves the in-process worker's webhook metrics on the gateway's /__trellis/metrics", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-webhook-metrics-'));
    const config = loadConfig(
      {},
      {
        databaseUrl: `sqlite:${join(dir, 'trellis.db')}`,
        gatewayPort: 0,
        controlPort: 0,
        demo: false,
        logLevel: 'silent',
        insightsIntervalMs: 0,
      },
    );
    const running = await startTrellis(config, () => {});
    try {
      const text = await (await fetch(`${running.gatewayUrl}/__trellis/metrics`)).text();
      expect(sample(text, 'trellis_webhook_queue_depth')).toBe(0);
      expect(text).toContain('# TYPE trellis_webhook_attempts_total counter');
      expect(text).toContain('# TYPE trellis_gateway_requests_total counter');
    } finally {
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
