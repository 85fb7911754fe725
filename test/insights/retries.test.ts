/**
 * Retry storms beyond Retry-After, through a real gateway on both databases: a client that retries a 5xx at once
 * (no backoff) and one that repeats a request refused with a 4xx are found; a client that backs off is not.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFindings, runInsights } from '../../src/insights/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { call, Fixtures, startGateway, startUpstream, type Upstream } from '../gateway/fixtures.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';

describe.each(dialects)('retry storms (%s)', (dialect) => {
  let store: TestStore;
  let upstream: Upstream;
  beforeAll(async () => {
    store = await freshStore(dialect);
    upstream = await startUpstream();
    const answer = (status: number) => (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end('{}');
    };
    upstream.routes.set('/fail', answer(503));
    upstream.routes.set('/bad', answer(422));
  });
  afterAll(async () => {
    await upstream.close();
    await store.cleanup();
  });

  it('finds 5xx retried without backoff and 4xx repeated, not a client that backs off', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 10, 0, 1));
    const f = new Fixtures(store, clock);
    const service = await f.service({ upstream: upstream.url, defaultRule: false });
    await f.rule(service.id, { method: 'POST', pattern: '/fail', metricId: service.hitsId });
    await f.rule(service.id, { method: 'POST', pattern: '/bad', metricId: service.hitsId });
    const planId = await f.plan(service.id);
    const names = ['hammer', 'repeater', 'patient'] as const;
    const apps: Record<string, { id: string; key: string }> = {};
    for (const name of names) {
      const app = await f.application(service.id, planId);
      apps[name] = { id: app.id, key: (await f.key(app.id)).secret };
    }
    const gw = await startGateway({ store, clock });
    const post = (name: string, path: string) =>
      call(`${gw.url}${path}`, { method: 'POST', headers: { 'X-User-Key': apps[name]!.key }, body: '{}' });
    try {
      for (let i = 0; i < 8; i++) {
        expect((await post('hammer', '/fail')).status).toBe(503);
        clock.advance(200);
      }
      for (let i = 0; i < 12; i++) {
        expect((await post('repeater', '/bad')).status).toBe(422);
        clock.advance(500);
      }
      // backs off 1, 2, 4, 8 … seconds: at most one repeat within a second, never within 5 s after 4 s
      let wait = 1000;
      for (let i = 0; i < 8; i++) {
        expect((await post('patient', '/fail')).status).toBe(503);
        clock.advance(wait);
        wait *= 2;
      }
    } finally {
      await gw.close();
    }
    // two processes running the detectors at once open each finding once
    const runs = await Promise.all([
      runInsights({ db: store.db, clock }),
      runInsights({ db: store.db, clock }),
    ]);
    const { data } = await listFindings(store.db, { serviceId: service.id, limit: 50 });
    const nameOf = new Map(Object.entries(apps).map(([name, a]) => [a.id, name]));
    expect(
      data
        .filter((d) => d.kind === 'retry_storm')
        .map((d) => `${nameOf.get(d.applicationId)} ${d.subject}`)
        .sort(),
    ).toEqual(['hammer no_backoff_5xx', 'repeater repeated_4xx']);
    expect(runs[0].detected + runs[1].detected).toBe(data.length);
    const hammer = data.find((d) => d.subject === 'no_backoff_5xx')!;
    expect(hammer.evidence.numbers).toMatchObject({ retriesWithin1s: 7 });
    const repeater = data.find((d) => d.subject === 'repeated_4xx')!;
    expect(repeater.evidence.numbers).toMatchObject({ repeatsWithin5s: 11 });
  });
});
