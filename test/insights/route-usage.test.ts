/**
 * Usage's route dimension (issue 10, step 1): through a real gateway, every call is summed per minute under the
 * mapping rule that matched, its status class and a latency bucket, and the call patterns insights read (reads
 * after a create, calls before Retry-After) are counted — written by the usage flush, never per call.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/kernel/index.js';
import { CallPatterns } from '../../src/usage/call-patterns.js';
import { LATENCY_BUCKETS, latencyBucket, latencyOfBucket } from '../../src/usage/index.js';
import { percentile, emptyHistogram, PERCENTILE_ERROR } from '../../src/insights/index.js';
import {
  call,
  Fixtures,
  startGateway,
  startUpstream,
  testConfig,
  type Upstream,
} from '../gateway/fixtures.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';

describe('latency buckets', () => {
  it('puts every latency in a bucket whose middle is within the stated error', () => {
    for (let ms = 1.01; ms < 200_000; ms *= 1.037) {
      const i = latencyBucket(ms);
      expect(i).toBeLessThan(LATENCY_BUCKETS - 1);
      expect(Math.abs(latencyOfBucket(i) - ms) / ms).toBeLessThanOrEqual(PERCENTILE_ERROR + 1e-9);
    }
    expect(latencyBucket(0.3)).toBe(0);
    expect(latencyBucket(10 ** 9)).toBe(LATENCY_BUCKETS - 1);
  });

  it('reads percentiles from a histogram within the stated error', () => {
    const h = emptyHistogram();
    const values: number[] = [];
    for (let i = 1; i <= 1000; i++) values.push(i < 900 ? 5 + (i % 20) : 200 + i);
    for (const v of values) h[latencyBucket(v)]! += 1;
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.95, 0.99]) {
      const exact = values[Math.ceil(q * values.length) - 1]!;
      const got = percentile(h, q)!;
      expect(Math.abs(got - exact) / exact).toBeLessThanOrEqual(PERCENTILE_ERROR + 0.001);
    }
  });
});

describe('route sums', () => {
  it('puts the sums of a failed flush back in front of what came since', () => {
    const p = new CallPatterns();
    const c = {
      at: 0,
      serviceId: 's',
      applicationId: 'a',
      method: 'GET',
      route: 'r',
      status: 200,
      latencyMs: 3,
      retryAfterS: 0,
    };
    p.record(c, 'm0');
    p.record(c, 'm0');
    const failed = p.take();
    p.record(c, 'm0');
    p.record({ ...c, status: 503 }, 'm0');
    p.restore(failed);
    const batch = p.take();
    expect(batch.routeRows.map((r) => `${r.status_class}:${r.calls}`).sort()).toEqual(['2xx:3', '5xx:1']);
    expect(p.take().routeRows).toEqual([]);
  });
});

describe.each(dialects)('usage by route (%s)', (dialect) => {
  let store: TestStore;
  let f: Fixtures;
  let upstream: Upstream;
  beforeAll(async () => {
    store = await freshStore(dialect);
    f = new Fixtures(store);
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream.close();
    await store.cleanup();
  });

  it('sums calls per route, status class and latency bucket, and counts reads after creates and early retries', async () => {
    const t0 = Date.UTC(2026, 5, 1, 10, 0, 0);
    const clock = new ManualClock(t0);
    const service = await f.service({ upstream: upstream.url, defaultRule: false });
    const create = await f.rule(service.id, {
      method: 'POST',
      pattern: '/things$',
      metricId: service.hitsId,
    });
    const read = await f.rule(service.id, {
      method: 'GET',
      pattern: '/things/{id}',
      metricId: service.hitsId,
    });
    const planId = await f.plan(service.id);
    await f.limit(planId, service.hitsId, 'minute', 6);
    const app = await f.application(service.id, planId);
    const { secret } = await f.key(app.id);
    const gw = await startGateway({ store, clock });
    const base = `${gw.url}/things`;
    const headers = { 'X-User-Key': secret };
    try {
      // one create, two reads 0.5 s and 3 s after it, one read 90 s later (next minute)
      expect((await call(base, { method: 'POST', headers, body: '{}' })).status).toBe(200);
      clock.advance(500);
      expect((await call(`${base}/1`, { headers })).status).toBe(200);
      clock.advance(2500);
      expect((await call(`${base}/1`, { headers })).status).toBe(200);
      // the minute limit (6) is reached after three more; then two calls before Retry-After
      for (let i = 0; i < 3; i++) await call(`${base}/1`, { headers });
      const refused = await call(`${base}/1`, { headers });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      clock.advance(1000);
      expect((await call(`${base}/1`, { headers })).status).toBe(429);
      // the next minute: the window reset and Retry-After passed; a read long after the create
      clock.set(t0 + 90_000);
      expect((await call(`${base}/2`, { headers })).status).toBe(200);
      // no rule matched: counted under route ''
      expect((await call(`${gw.url}/other`, { headers })).status).toBe(404);
    } finally {
      await gw.close();
    }
    const routes = await sql<{ bucket: string; route: string; status_class: string; calls: number }>`
      select bucket, route, status_class, sum(calls) as calls from usage_route_calls
      where application_id = ${app.id} group by bucket, route, status_class order by bucket, route, status_class`.execute(
      store.db,
    );
    const m0 = new Date(t0).toISOString();
    const m1 = new Date(t0 + 60_000).toISOString();
    const key = (r: (string | number)[]) => r.join('|');
    expect(routes.rows.map((r) => key([r.bucket, r.route, r.status_class, Number(r.calls)])).sort()).toEqual(
      [
        [m0, create, '2xx', 1],
        [m0, read, '2xx', 5],
        [m0, read, '429', 2],
        [m1, '', '4xx', 1],
        [m1, read, '2xx', 1],
      ]
        .map(key)
        .sort(),
    );
    const patterns = await sql<{
      kind: string;
      route: string;
      prior_route: string;
      lag: number;
      calls: number;
    }>`
      select kind, route, prior_route, lag, sum(calls) as calls from usage_call_patterns
      where application_id = ${app.id} group by kind, route, prior_route, lag order by kind, lag`.execute(
      store.db,
    );
    expect(
      patterns.rows.map((r) => [r.kind, r.route, r.prior_route, Number(r.lag), Number(r.calls)]),
    ).toEqual([
      // the refused call right after the first 429 came before its Retry-After
      ['after_create', read, create, 1, 1],
      ['after_create', read, create, 5, 6],
      ['early_retry', read, '', 0, 1],
    ]);
  });

  it('records no routes or patterns with TRELLIS_INSIGHTS_RECORDING=false, and usage as before', async () => {
    const { app, key } = await f.keyed({ upstream: upstream.url, prefix: '/off' });
    const gw = await startGateway({ store, config: testConfig({ insightsRecording: false }) });
    try {
      expect((await call(`${gw.url}/off/x`, { headers: { 'X-User-Key': key } })).status).toBe(200);
    } finally {
      await gw.close();
    }
    const count = async (table: string) =>
      Number(
        (
          await sql<{
            n: number;
          }>`select count(*) as n from ${sql.table(table)} where application_id = ${app.id}`.execute(store.db)
        ).rows[0]?.n,
      );
    expect(await count('usage_calls')).toBe(1);
    expect(await count('usage_route_calls')).toBe(0);
  });
});
