import { createServer, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterCheck } from '../../src/gateway/index.js';
import { RedisLimiter } from '../../src/gateway/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';
import { call, Fixtures, startGateway, startUpstream, testConfig, type Upstream } from './fixtures.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
let redis: Redis;
/** A port where nothing answers: Redis "stopped" without stopping the shared one. */
let deadPort: number;
let deadServer: Server;

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  // bind and close a port so it is known to be free (connection refused)
  deadServer = createServer();
  await new Promise<void>((r) => deadServer.listen(0, '127.0.0.1', r));
  deadPort = (deadServer.address() as { port: number }).port;
  await new Promise<void>((r) => deadServer.close(() => r()));
});
afterAll(async () => {
  await redis.quit();
});

const prefix = () => `trellis-test:${randomBytes(6).toString('hex')}:`;

describe.each(dialects)('Redis limiter through gateways (%s)', (dialect) => {
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

  describe('strict mode on Redis', () => {
    it('lets exactly L of N concurrent requests through across two gateways', async () => {
      const { service, planId, key } = await f.keyed({
        upstream: upstream.url,
        prefix: '/strict',
        limiterMode: 'strict',
      });
      const L = 37;
      await f.limit(planId, service.hitsId, 'minute', L);
      await f.limit(planId, service.hitsId, 'day', 1000);
      const options = { redisKeyPrefix: prefix() };
      const config = testConfig({ redisUrl: REDIS_URL });
      const clock = new ManualClock(Date.UTC(2026, 2, 3, 10, 0, 5));
      const a = await startGateway({ store, config, clock, options });
      const b = await startGateway({ store, config, clock, options });
      const agent = new Agent({ connections: 64 });
      const N = 200;
      const replies = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          call(`${i % 2 ? a.url : b.url}/strict/x`, { headers: { 'X-User-Key': key }, dispatcher: agent }),
        ),
      );
      const statuses = replies.map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(L);
      expect(statuses.filter((s) => s === 429)).toHaveLength(N - L);
      // refused requests were not counted: the day counter holds exactly L
      const day = await redis.keys(`${options.redisKeyPrefix}*:day:*`);
      expect(day).toHaveLength(1);
      expect(Number(await redis.get(day[0]!))).toBe(L);
      await agent.close();
      await a.close();
      await b.close();
    });
  });

  describe('strict mode, one script call per turn', () => {
    it('answers each request of a turn with its own counts and the indexes of its full counters', async () => {
      const keyPrefix = prefix();
      const conn = new Redis(REDIS_URL);
      const limiter = new RedisLimiter({ redis: conn, keyPrefix });
      const now = Date.UTC(2026, 2, 3, 10, 0, 5);
      const strict = { mode: 'strict' as const, failureMode: 'closed' as const, now };
      const minute = { windowStart: now - 5000, windowEnd: now + 55_000 };
      const roomy: CounterCheck = { key: '{app}:roomy', ...minute, limit: 100, delta: 2 };
      const tight: CounterCheck = { key: '{app}:tight', ...minute, limit: 3, delta: 1 };
      const never: CounterCheck = { ...roomy, key: '{app}:never', windowEnd: Number.POSITIVE_INFINITY };
      // five requests in one turn: the fourth finds the tight counter full (index 1), the fifth checks it alone
      const outcomes = await Promise.all([
        limiter.consume([roomy, tight], strict),
        limiter.consume([roomy, tight, never], strict),
        limiter.consume([tight, roomy], strict),
        limiter.consume([roomy, tight], strict),
        limiter.consume([tight], strict),
      ]);
      expect(outcomes).toEqual([
        { kind: 'allowed', used: [2, 1] },
        { kind: 'allowed', used: [4, 2, 2] },
        { kind: 'allowed', used: [3, 6] },
        { kind: 'exceeded', used: [6, 3], exceeded: [1] },
        { kind: 'exceeded', used: [3], exceeded: [0] },
      ]);
      // refused requests counted nothing; the counter without a window never expires, the others at their end
      expect(Number(await redis.get(`${keyPrefix}{app}:roomy:${minute.windowStart}`))).toBe(6);
      expect(await redis.pttl(`${keyPrefix}{app}:never:${minute.windowStart}`)).toBe(-1);
      expect(await redis.pttl(`${keyPrefix}{app}:tight:${minute.windowStart}`)).toBeGreaterThan(55_000);
      await limiter.close();
      await conn.quit();
    });
  });

  describe('batched mode on Redis', () => {
    const check = (key: string, limit: number): CounterCheck => ({
      key,
      windowStart: 0,
      windowEnd: Number.POSITIVE_INFINITY,
      limit,
      delta: 1,
    });
    const opts = { mode: 'batched' as const, failureMode: 'open' as const, now: 0 };

    it('never lets two gateways together pass the limit: each admits only from tokens leased from Redis', async () => {
      const keyPrefix = prefix();
      const connA = new Redis(REDIS_URL);
      const connB = new Redis(REDIS_URL);
      const a = new RedisLimiter({ redis: connA, keyPrefix, syncIntervalMs: 60_000 });
      const b = new RedisLimiter({ redis: connB, keyPrefix, syncIntervalMs: 60_000 });
      const L = 10;
      let admitted = 0;
      // no sync between them: A takes the whole limit in leases, B finds no room left
      for (let i = 0; i < 15; i++)
        if ((await a.consume([check('{app}:k', L)], opts)).kind === 'allowed') admitted++;
      for (let i = 0; i < 15; i++)
        if ((await b.consume([check('{app}:k', L)], opts)).kind === 'allowed') admitted++;
      expect(admitted).toBe(L);
      await a.sync();
      await b.sync();
      expect(Number(await redis.get(`${keyPrefix}{app}:k:0`))).toBe(L);
      expect((await a.consume([check('{app}:k', L)], opts)).kind).toBe('exceeded');
      expect((await b.consume([check('{app}:k', L)], opts)).kind).toBe('exceeded');

      // with a sync between turns the shared count is exact
      let exact = 0;
      for (let i = 0; i < 2 * L; i++) {
        const limiter = i % 2 ? a : b;
        if ((await limiter.consume([check('{app}:exact', L)], opts)).kind === 'allowed') exact++;
        await limiter.sync();
        await (i % 2 ? b : a).sync();
      }
      expect(exact).toBe(L);
      await a.close();
      await b.close();
      await connA.quit();
      await connB.quit();
    });

    it('starts from the shared count when it first sees a counter', async () => {
      const keyPrefix = prefix();
      await redis.set(`${keyPrefix}{app}:seen:0`, 9);
      const conn = new Redis(REDIS_URL);
      const limiter = new RedisLimiter({ redis: conn, keyPrefix, syncIntervalMs: 60_000 });
      expect((await limiter.consume([check('{app}:seen', 10)], opts)).kind).toBe('allowed');
      expect((await limiter.consume([check('{app}:seen', 10)], opts)).kind).toBe('exceeded');
      await limiter.close();
      expect(await redis.get(`${keyPrefix}{app}:seen:0`)).toBe('10');
      await conn.quit();
    });

    it('enforces limits through the gateway', async () => {
      const { service, planId, key } = await f.keyed({
        upstream: upstream.url,
        prefix: '/batched',
        limiterMode: 'batched',
      });
      await f.limit(planId, service.hitsId, 'hour', 5);
      const gw = await startGateway({
        store,
        config: testConfig({ redisUrl: REDIS_URL }),
        options: { redisKeyPrefix: prefix() },
      });
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++)
        statuses.push((await call(`${gw.url}/batched/x`, { headers: { 'X-User-Key': key } })).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      await gw.close();
    });
  });

  describe('Redis unreachable', () => {
    for (const mode of ['strict', 'batched']) {
      it(`${mode}: fails closed with 503 limiter_unavailable, or open on local counts, and says so in metrics`, async () => {
        const closed = await f.keyed({
          upstream: upstream.url,
          prefix: `/down-closed-${mode}`,
          limiterMode: mode,
          failureMode: 'closed',
        });
        const open = await f.keyed({
          upstream: upstream.url,
          prefix: `/down-open-${mode}`,
          limiterMode: mode,
          failureMode: 'open',
        });
        await f.limit(closed.planId, closed.service.hitsId, 'minute', 100);
        await f.limit(open.planId, open.service.hitsId, 'minute', 2);
        const gw = await startGateway({
          store,
          config: testConfig({ redisUrl: `redis://127.0.0.1:${deadPort}` }),
          options: { redisReadyTimeoutMs: 0 },
        });
        const refused = await call(`${gw.url}/down-closed-${mode}/x`, {
          headers: { 'X-User-Key': closed.key },
        });
        expect([refused.status, refused.json.error?.code]).toEqual([503, 'limiter_unavailable']);
        const statuses: number[] = [];
        for (let i = 0; i < 3; i++)
          statuses.push(
            (await call(`${gw.url}/down-open-${mode}/x`, { headers: { 'X-User-Key': open.key } })).status,
          );
        // open: served, and still limited by this gateway's own counts
        expect(statuses).toEqual([200, 200, 429]);
        const metrics = await call(`${gw.url}/__trellis/metrics`);
        expect(metrics.text).toMatch(
          new RegExp(
            `trellis_gateway_limiter_failures_total\\{mode="${mode}",failure_mode="closed"\\} [1-9]`,
          ),
        );
        expect(metrics.text).toMatch(
          new RegExp(`trellis_gateway_limiter_failures_total\\{mode="${mode}",failure_mode="open"\\} [1-9]`),
        );
        await gw.close();
      });
    }
  });
});
