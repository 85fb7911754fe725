import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { windowOf } from '../../src/gateway/limiter/periods.js';
import { ManualClock } from '../../src/kernel/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';
import { call, Fixtures, startGateway, startUpstream, type Upstream } from './fixtures.js';

describe('calendar windows', () => {
  it('starts windows on UTC calendar boundaries, weeks on Monday', () => {
    const t = Date.UTC(2026, 1, 18, 13, 45, 30, 500); // Wednesday 18 February 2026
    expect(windowOf('minute', t)).toEqual({
      start: Date.UTC(2026, 1, 18, 13, 45),
      end: Date.UTC(2026, 1, 18, 13, 46),
    });
    expect(windowOf('hour', t)).toEqual({ start: Date.UTC(2026, 1, 18, 13), end: Date.UTC(2026, 1, 18, 14) });
    expect(windowOf('day', t)).toEqual({ start: Date.UTC(2026, 1, 18), end: Date.UTC(2026, 1, 19) });
    expect(windowOf('week', t)).toEqual({ start: Date.UTC(2026, 1, 16), end: Date.UTC(2026, 1, 23) });
    expect(windowOf('month', t)).toEqual({ start: Date.UTC(2026, 1, 1), end: Date.UTC(2026, 2, 1) });
    expect(windowOf('year', t)).toEqual({ start: Date.UTC(2026, 0, 1), end: Date.UTC(2027, 0, 1) });
    expect(windowOf('eternity', t)).toEqual({ start: 0, end: Number.POSITIVE_INFINITY });
    expect(windowOf('week', Date.UTC(2026, 1, 22, 23, 59))).toEqual({
      start: Date.UTC(2026, 1, 16),
      end: Date.UTC(2026, 1, 23),
    });
  });
});

/** For each period: a time inside a window, how long until it ends, and the `w` of RateLimit-Policy. */
const periods: [string, number, number, number | null][] = [
  ['minute', Date.UTC(2026, 1, 18, 13, 45, 30), 30_000, 60],
  ['hour', Date.UTC(2026, 1, 18, 13, 45), 15 * 60_000, 3600],
  ['day', Date.UTC(2026, 1, 18, 22), 2 * 3_600_000, 86_400],
  ['week', Date.UTC(2026, 1, 21, 12), 36 * 3_600_000, 604_800],
  ['month', Date.UTC(2026, 1, 27), 2 * 86_400_000, 28 * 86_400],
  ['year', Date.UTC(2026, 11, 31, 23), 3_600_000, 365 * 86_400],
  ['eternity', Date.UTC(2026, 1, 18), 0, null],
];

describe.each(dialects)('gateway limits (%s)', (dialect) => {
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

  describe('limits', () => {
    for (const [period, at, untilReset, w] of periods) {
      it(`enforces a ${period} limit, with rate-limit headers, and resets at the window's end`, async () => {
        const clock = new ManualClock(at);
        const { service, planId, key } = await f.keyed({ upstream: upstream.url, prefix: `/lim-${period}` });
        await f.limit(planId, service.hitsId, period, 2);
        const gw = await startGateway({ store, clock });
        const url = `${gw.url}/lim-${period}/x`;
        const headers = { 'X-User-Key': key };
        const first = await call(url, { headers });
        expect(first.status).toBe(200);
        expect(first.headers['ratelimit-policy']).toBe(`"hits-${period}";q=2${w === null ? '' : `;w=${w}`}`);
        const t = Math.ceil(untilReset / 1000);
        expect(first.headers.ratelimit).toBe(`"hits-${period}";r=1${w === null ? '' : `;t=${t}`}`);
        expect((await call(url, { headers })).headers.ratelimit).toMatch(/;r=0/);
        // refused calls do not count: several of them change nothing
        for (let i = 0; i < 3; i++) {
          const over = await call(url, { headers });
          expect(over.status).toBe(429);
          expect(over.json.error?.code).toBe('limit_exceeded');
          expect(over.json.error?.details).toMatchObject({
            limit: `hits-${period}`,
            period,
            value: 2,
            used: 2,
          });
          expect(over.headers['retry-after']).toBe(w === null ? undefined : String(t));
          expect(over.headers.ratelimit).toMatch(/;r=0/);
        }
        if (period !== 'eternity') {
          clock.advance(untilReset - 1);
          expect((await call(url, { headers })).status).toBe(429);
          clock.advance(1);
          expect((await call(url, { headers })).status).toBe(200);
          expect((await call(url, { headers })).status).toBe(200);
          expect((await call(url, { headers })).status).toBe(429);
        } else {
          clock.advance(10 * 365 * 86_400_000);
          expect((await call(url, { headers })).status).toBe(429);
        }
        await gw.close();
      });
    }

    it('checks every limit of a method and of hits together, and counts nothing when one is full', async () => {
      const clock = new ManualClock(Date.UTC(2026, 3, 1, 12));
      const service = await f.service({ upstream: upstream.url, prefix: '/multi', defaultRule: false });
      const search = await f.metric(service.id, 'search', service.hitsId);
      await f.rule(service.id, { pattern: '/search', metricId: search });
      await f.rule(service.id, { pattern: '/other', metricId: service.hitsId });
      const planId = await f.plan(service.id);
      await f.limit(planId, search, 'minute', 2);
      await f.limit(planId, service.hitsId, 'day', 3);
      const app = await f.application(service.id, planId);
      const key = (await f.key(app.id)).secret;
      const gw = await startGateway({ store, clock });
      const headers = { 'X-User-Key': key };
      const ok = await call(`${gw.url}/multi/search`, { headers });
      expect(ok.headers['ratelimit-policy']).toBe('"search-minute";q=2;w=60, "hits-day";q=3;w=86400');
      expect(ok.headers.ratelimit).toBe('"search-minute";r=1;t=60');
      expect((await call(`${gw.url}/multi/search`, { headers })).status).toBe(200);
      const over = await call(`${gw.url}/multi/search`, { headers });
      expect([over.status, over.json.error?.details?.limit]).toEqual([429, 'search-minute']);
      // the refused search did not count on hits: one more hit fits the day
      expect((await call(`${gw.url}/multi/other`, { headers })).status).toBe(200);
      const dayOver = await call(`${gw.url}/multi/other`, { headers });
      expect([dayOver.status, dayOver.json.error?.details?.limit]).toEqual([429, 'hits-day']);
      await gw.close();
    });

    it("applies a limit added to the plan from the reload on, though the application's calls stay alike", async () => {
      const clock = new ManualClock(Date.UTC(2026, 3, 2, 12));
      const { service, planId, key } = await f.keyed({ upstream: upstream.url, prefix: '/replan' });
      await f.limit(planId, service.hitsId, 'day', 100);
      const gw = await startGateway({ store, clock });
      const url = `${gw.url}/replan/x`;
      const headers = { 'X-User-Key': key };
      for (let i = 0; i < 3; i++) {
        const res = await call(url, { headers });
        expect([res.status, res.headers['ratelimit-policy']]).toEqual([200, '"hits-day";q=100;w=86400']);
      }
      const limitId = await f.limit(planId, service.hitsId, 'minute', 4);
      await f.change('plan', planId, { serviceId: service.id, limitId }, 'plan.limit_set');
      await gw.gateway.refresh();
      const after = await call(url, { headers });
      expect(after.status).toBe(200);
      expect(after.headers['ratelimit-policy']).toBe('"hits-day";q=100;w=86400, "hits-minute";q=4;w=60');
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await call(url, { headers })).status);
      // the minute counter starts with the call after the reload (or from recorded usage): a 429 within four more
      expect(statuses).toContain(429);
      await gw.close();
    });

    it("names the metric in a 429's message even when its name contains '-'", async () => {
      const service = await f.service({ upstream: upstream.url, prefix: '/dash-name' });
      const search = await f.metric(service.id, 'search-v2', service.hitsId);
      await f.rule(service.id, { pattern: '/search', metricId: search });
      const planId = await f.plan(service.id);
      await f.limit(planId, search, 'minute', 1);
      const app = await f.application(service.id, planId);
      const key = (await f.key(app.id)).secret;
      const gw = await startGateway({ store, clock: new ManualClock(Date.UTC(2026, 3, 1, 12)) });
      const headers = { 'X-User-Key': key };
      expect((await call(`${gw.url}/dash-name/search`, { headers })).status).toBe(200);
      const over = await call(`${gw.url}/dash-name/search`, { headers });
      expect(over.status).toBe(429);
      expect(over.json.error?.message).toBe('The minute limit of 1 on search-v2 is reached.');
      expect(over.json.error?.details?.limit).toBe('search-v2-minute');
      await gw.close();
    });

    it('treats a limit of 0 as closed', async () => {
      const { service, planId, key } = await f.keyed({ upstream: upstream.url, prefix: '/zero' });
      await f.limit(planId, service.hitsId, 'month', 0);
      const gw = await startGateway({ store });
      expect((await call(`${gw.url}/zero/x`, { headers: { 'X-User-Key': key } })).status).toBe(429);
      await gw.close();
    });
  });

  describe('end-user limits', () => {
    it('counts each end user named by a header apart, and the unnamed ones together', async () => {
      const service = await f.service({ upstream: upstream.url, prefix: '/eu-header' });
      const planId = await f.plan(service.id, { endUserSource: 'header', endUserName: 'X-End-User' });
      await f.limit(planId, service.hitsId, 'minute', 1, 'end_user');
      await f.limit(planId, service.hitsId, 'minute', 10);
      const app = await f.application(service.id, planId);
      const key = (await f.key(app.id)).secret;
      const gw = await startGateway({ store, clock: new ManualClock(Date.UTC(2026, 5, 1)) });
      const as = (user?: string) =>
        call(`${gw.url}/eu-header/x`, {
          headers: { 'X-User-Key': key, ...(user ? { 'X-End-User': user } : {}) },
        });
      expect((await as('alice')).status).toBe(200);
      const again = await as('alice');
      expect([again.status, again.json.error?.details?.limit, again.json.error?.details?.scope]).toEqual([
        429,
        'hits-minute-end-user',
        'end_user',
      ]);
      expect((await as('bob')).status).toBe(200);
      expect((await as()).status).toBe(200);
      expect((await as()).status).toBe(429);
      await gw.close();
    });

    it('reads the end user from a JWT claim', async () => {
      const service = await f.service({ upstream: upstream.url, prefix: '/eu-claim' });
      const planId = await f.plan(service.id, { endUserSource: 'claim', endUserName: 'sub' });
      await f.limit(planId, service.hitsId, 'hour', 1, 'end_user');
      const app = await f.application(service.id, planId);
      const key = (await f.key(app.id)).secret;
      const gw = await startGateway({ store, clock: new ManualClock(Date.UTC(2026, 5, 1)) });
      const jwt = (sub: string) =>
        `Bearer e30.${Buffer.from(JSON.stringify({ sub })).toString('base64url')}.sig`;
      const as = (sub: string) =>
        call(`${gw.url}/eu-claim/x`, { headers: { 'X-User-Key': key, authorization: jwt(sub) } });
      expect((await as('u1')).status).toBe(200);
      expect((await as('u1')).status).toBe(429);
      expect((await as('u2')).status).toBe(200);
      await gw.close();
    });
  });
});
