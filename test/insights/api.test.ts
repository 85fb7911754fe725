/**
 * The management API of insights on both databases: findings per application (filtered, paged), acknowledge and
 * resolve (with the insight.resolved event), health per application against a controlled upstream (known
 * latencies and status mix: percentiles within the histogram's stated error), and settings per service.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readChangesSince } from '../../src/events/index.js';
import { PERCENTILE_ERROR, runInsights } from '../../src/insights/index.js';
import { call, Fixtures, startGateway, startUpstream, type Upstream } from '../gateway/fixtures.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';

describe.each(dialects)('insights management API (%s)', (dialect) => {
  let h: ControlHarness;
  let upstream: Upstream;
  let f: Fixtures;
  let serviceId: string;
  let appId: string;
  let otherAppId: string;
  const latencies: number[] = [];

  beforeAll(async () => {
    h = await startControl(dialect);
    upstream = await startUpstream();
    // a controlled upstream: /slow/<ms> answers after that many ms, /fail answers 503
    upstream.routes.set('/fail', (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{}');
    });
    f = new Fixtures(h.store, h.clock);
    const service = await f.service({ upstream: upstream.url, defaultRule: false });
    serviceId = service.id;
    await f.rule(service.id, { method: 'GET', pattern: '/slow', metricId: service.hitsId });
    await f.rule(service.id, { method: 'GET', pattern: '/fail', metricId: service.hitsId });
    const planId = await f.plan(service.id);
    const app = await f.application(service.id, planId);
    appId = app.id;
    otherAppId = (await f.application(service.id, planId)).id;
    const { secret } = await f.key(app.id);
    for (const ms of [5, 10, 20, 40, 80, 160]) {
      upstream.routes.set(`/slow${ms}`, (_req, res) => {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{}');
        }, ms);
      });
    }
    // the gateway's clock is the control's: the minute buckets fall in the health period
    const gw = await startGateway({ store: h.store, clock: h.clock });
    try {
      const headers = { 'X-User-Key': secret };
      for (const ms of [5, 5, 5, 5, 10, 10, 10, 20, 20, 40, 40, 80, 80, 80, 160, 160, 160, 160, 160, 160]) {
        const started = performance.now();
        expect((await call(`${gw.url}/slow${ms}`, { headers })).status).toBe(200);
        latencies.push(performance.now() - started);
      }
      for (let i = 0; i < 5; i++) expect((await call(`${gw.url}/fail`, { headers })).status).toBe(503);
    } finally {
      await gw.close();
    }
  });
  afterAll(async () => {
    await upstream.close();
    await h.close();
  });

  it('reports health per application and route: percentiles within the stated error, error rates by class', async () => {
    const res = await h.call('GET', `/admin/api/applications/${appId}/health`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.calls).toBe(25);
    expect(body.byClass).toMatchObject({ '2xx': 20, '5xx': 5 });
    expect(body.serverErrorRate).toBe(0.2);
    expect(body.clientErrorRate).toBe(0);
    const slow = body.routes.find((r: { label: string }) => r.label === 'GET /slow');
    expect(slow.calls).toBe(20);
    // the gateway's latency of each call is at most what the client measured and at least the upstream's delay
    const sorted = [...latencies].sort((a, b) => a - b);
    const delays = [5, 5, 5, 5, 10, 10, 10, 20, 20, 40, 40, 80, 80, 80, 160, 160, 160, 160, 160, 160];
    for (const [q, key] of [
      [0.5, 'p50'],
      [0.95, 'p95'],
      [0.99, 'p99'],
    ] as const) {
      const rank = Math.ceil(q * 20) - 1;
      const low = delays[rank]! * (1 - PERCENTILE_ERROR);
      const high = sorted[rank]! * (1 + PERCENTILE_ERROR);
      expect(slow[key], key).toBeGreaterThanOrEqual(low);
      expect(slow[key], key).toBeLessThanOrEqual(high);
    }
    const other = (await h.call('GET', `/admin/api/applications/${otherAppId}/health`)).json();
    expect(other).toMatchObject({ calls: 0, p50: null });
    const bad = await h.call(
      'GET',
      `/admin/api/applications/${appId}/health?from=2026-06-01T12:00:00Z&to=2026-06-01T11:00:00Z`,
    );
    expect(bad.statusCode).toBe(400);
  });

  it('keeps settings per service, validated, with defaults where not set', async () => {
    const got = (await h.call('GET', `/admin/api/services/${serviceId}/insight-settings`)).json();
    expect(got).toMatchObject({ windowMinutes: 60, serverErrorRate: 0.05, pollPairs: [] });
    const changed = await h.call('PATCH', `/admin/api/services/${serviceId}/insight-settings`, {
      minCalls: 10,
    });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toMatchObject({ minCalls: 10, windowMinutes: 60 });
    const refused = await h.call('PATCH', `/admin/api/services/${serviceId}/insight-settings`, {
      minCalls: -1,
    });
    expect(refused.statusCode).toBe(400);
    const unknown = await h.call('PATCH', `/admin/api/services/${serviceId}/insight-settings`, {
      nonsense: 1,
    });
    expect(unknown.statusCode).toBe(400);
  });

  it('lists findings per application, filtered and paged; acknowledges and resolves them', async () => {
    const run = await runInsights({ db: h.store.db, clock: h.clock });
    expect(run.detected).toBe(1);
    const list = await h.call('GET', `/admin/api/applications/${appId}/findings?state=open`);
    expect(list.statusCode).toBe(200);
    const [finding] = list.json().data;
    expect(finding).toMatchObject({ kind: 'error_rate', subject: '5xx', severity: 'high', state: 'open' });
    expect(finding.evidence.numbers).toMatchObject({ calls: 25, serverErrors: 5, rate: 0.2 });
    expect((await h.call('GET', `/admin/api/applications/${otherAppId}/findings`)).json().data).toEqual([]);
    expect((await h.call('GET', '/admin/api/findings?kind=token_churn')).json().data).toEqual([]);
    const paged = (await h.call('GET', `/admin/api/findings?serviceId=${serviceId}&limit=1`)).json();
    expect(paged.data).toHaveLength(1);
    expect(paged.nextCursor).toBeNull();

    const acked = await h.call('POST', `/admin/api/findings/${finding.id}/acknowledge`);
    expect(acked.json().state).toBe('acknowledged');
    // still seen: a run refreshes it and keeps it acknowledged
    expect(await runInsights({ db: h.store.db, clock: h.clock })).toMatchObject({
      detected: 0,
      refreshed: 1,
    });
    expect((await h.call('GET', `/admin/api/findings/${finding.id}`)).json().state).toBe('acknowledged');
    const resolved = await h.call('POST', `/admin/api/findings/${finding.id}/resolve`);
    expect(resolved.json()).toMatchObject({ state: 'resolved' });
    expect(resolved.json().resolvedAt).not.toBeNull();
    const again = await h.call('POST', `/admin/api/findings/${finding.id}/resolve`);
    expect(again.statusCode).toBe(409);
    const events = await readChangesSince(h.store.db, 0, 1000);
    expect(events.filter((e) => e.type === 'insight.resolved').map((e) => e.entityId)).toEqual([finding.id]);
    expect((await h.call('GET', '/admin/api/findings/fnd_0000000000000000000000000x')).statusCode).toBe(404);
  });

  it('exposes Prometheus gauges per service, never per application', async () => {
    await runInsights({ db: h.store.db, clock: h.clock });
    const res = await h.call('GET', '/admin/api/insights/metrics', undefined, h.readToken);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const service = (
      await h.store.db
        .selectFrom('services')
        .select('system_name')
        .where('id', '=', serviceId)
        .executeTakeFirstOrThrow()
    ).system_name;
    expect(res.body).toContain(`trellis_insights_calls{service="${service}"} 25`);
    expect(res.body).toContain(`trellis_insights_error_ratio{service="${service}",class="5xx"} 0.2`);
    expect(res.body).toContain(
      `trellis_insights_open_findings{service="${service}",kind="error_rate",severity="high"} 1`,
    );
    expect(res.body).toMatch(
      new RegExp(`trellis_insights_latency_ms\\{service="${service}",quantile="0.95"\\} \\d`),
    );
    expect(res.body).not.toContain(appId);
  });

  it('adds per-application gauges only for a service whose setting asks for them', async () => {
    const metrics = async () =>
      (await h.call('GET', '/admin/api/insights/metrics', undefined, h.readToken)).body;
    const patch = (metricsPerApplication: unknown) =>
      h.call('PATCH', `/admin/api/services/${serviceId}/insight-settings`, { metricsPerApplication });
    expect((await patch('yes')).statusCode).toBe(400);
    expect((await patch(true)).json()).toMatchObject({ metricsPerApplication: true });
    const on = await metrics();
    const service = /trellis_insights_calls\{service="([^"]+)"\} 25/.exec(on)?.[1];
    expect(service).toBeDefined();
    expect(on).toContain(
      `trellis_insights_application_calls{service="${service}",application="${appId}"} 25`,
    );
    expect(on).toContain(
      `trellis_insights_application_error_ratio{service="${service}",application="${appId}",class="5xx"} 0.2`,
    );
    expect(on).toMatch(
      new RegExp(
        `trellis_insights_application_latency_ms\\{service="${service}",application="${appId}",quantile="0.99"\\} \\d`,
      ),
    );
    // an application without calls in the window has no series
    expect(on).not.toContain(otherAppId);
    expect((await patch(false)).statusCode).toBe(200);
    const off = await metrics();
    expect(off).not.toContain(appId);
    expect(off).toContain(`trellis_insights_calls{service="${service}"} 25`);
  });
});
