/**
 * Each endpoint's rate and circuit breaker (issue 9, seed 003), the same cases in one process's memory and in
 * real Redis (shared by workers). Times are the caller's, so nothing sleeps.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type EndpointThrottle,
  effectiveRate,
  memoryThrottle,
  redisThrottle,
  windowOf,
} from '../../src/webhooks/endpoint-throttle.js';

const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
afterAll(() => redis.disconnect());

const settings = { failuresToOpen: 3, pauseMs: 10_000, maxPauseMs: 40_000, probeMs: 60_000 };
const kinds: [string, () => EndpointThrottle][] = [
  ['memory', () => memoryThrottle(settings)],
  ['redis', () => redisThrottle(redis, settings, `test:throttle:${randomBytes(6).toString('hex')}:`)],
];

describe('rates', () => {
  it('the owner lowers the provider rate, never raises it', () => {
    expect(effectiveRate(10, null)).toBe(10);
    expect(effectiveRate(10, 2)).toBe(2);
    expect(effectiveRate(10, 50)).toBe(10);
    expect(effectiveRate(null, 3)).toBe(3);
    expect(effectiveRate(null, null)).toBeNull();
    expect(windowOf(5)).toEqual({ capacity: 5, windowMs: 1000 });
    expect(windowOf(0.5)).toEqual({ capacity: 1, windowMs: 2000 });
  });
});

describe.each(kinds)('endpoint throttle (%s)', (_kind, make) => {
  const t0 = 1_764_331_200_000;

  it('grants at most the rate in any one-second window, and says when the next may go', async () => {
    const t = make();
    expect(await t.acquire('ep_a', 3, 5, t0)).toEqual({ granted: 3, retryAt: t0 + 1000 });
    expect(await t.blocked(t0)).toEqual(['ep_a']);
    expect(await t.acquire('ep_a', 3, 1, t0 + 999)).toEqual({ granted: 0, retryAt: t0 + 1000 });
    expect(await t.acquire('ep_a', 3, 5, t0 + 1000)).toEqual({ granted: 3, retryAt: t0 + 2000 });
    expect(await t.blocked(t0 + 2000)).toEqual([]);
    // another endpoint is not held by this one
    expect(await t.acquire('ep_b', 3, 2, t0 + 999)).toEqual({ granted: 2, retryAt: null });
    // no rate: everything goes
    expect(await t.acquire('ep_c', null, 500, t0)).toEqual({ granted: 500, retryAt: null });
  });

  it('failures slow an endpoint, then pause it; a half-open probe closes it or pauses it twice as long', async () => {
    const t = make();
    const id = 'ep_down';
    expect((await t.report(id, false, t0)).opened).toBe(false);
    expect((await t.state(id, t0)).factor).toBe(0.5);
    // slowed: an endpoint without a rate now gets slowBase (20/s) × its share
    expect(await t.acquire(id, null, 100, t0)).toEqual({ granted: 10, retryAt: t0 + 1000 });
    expect((await t.report(id, false, t0)).opened).toBe(false);
    const third = await t.report(id, false, t0 + 1);
    expect(third).toEqual({ opened: true, blockedUntil: t0 + 1 + 10_000 });
    expect(await t.state(id, t0 + 2)).toMatchObject({ breaker: 'open', failures: 3 });
    expect(await t.acquire(id, 100, 10, t0 + 5000)).toEqual({ granted: 0, retryAt: t0 + 10_001 });
    expect(await t.blocked(t0 + 5000)).toContain(id);
    // half-open: one probe; the others wait for its answer
    expect(await t.acquire(id, 100, 10, t0 + 10_001)).toEqual({ granted: 1, retryAt: t0 + 70_001 });
    expect(await t.acquire(id, 100, 10, t0 + 10_002)).toEqual({ granted: 0, retryAt: t0 + 70_001 });
    expect(await t.state(id, t0 + 10_002)).toMatchObject({ breaker: 'half-open' });
    const probeFailed = await t.report(id, false, t0 + 10_100);
    expect(probeFailed).toEqual({ opened: true, blockedUntil: t0 + 30_100 });
    expect(await t.acquire(id, 100, 1, t0 + 30_100)).toEqual({ granted: 1, retryAt: null });
    const probeOk = await t.report(id, true, t0 + 30_200);
    expect(probeOk).toEqual({ opened: false, blockedUntil: null });
    // closed again, at the slowest share of its rate (100/s × 1/16 = 6/s), rising with each success
    expect(await t.state(id, t0 + 30_200)).toMatchObject({ breaker: 'closed', factor: 1 / 16, failures: 0 });
    expect((await t.acquire(id, 100, 50, t0 + 30_200)).granted).toBe(6);
    for (let i = 0; i < 7; i++) await t.report(id, true, t0 + 30_300);
    expect((await t.state(id, t0 + 30_300)).factor).toBe(1);
  });

  it('a Retry-After holds the whole endpoint until then', async () => {
    const t = make();
    expect(await t.report('ep_busy', false, t0, 2000)).toEqual({ opened: false, blockedUntil: t0 + 2000 });
    expect(await t.acquire('ep_busy', 10, 1, t0 + 1999)).toEqual({ granted: 0, retryAt: t0 + 2000 });
    expect(await t.blocked(t0 + 1999)).toEqual(['ep_busy']);
    expect((await t.acquire('ep_busy', 10, 1, t0 + 2000)).granted).toBe(1);
  });
});

describe('redis throttle', () => {
  it('is shared: two workers together never exceed the rate', async () => {
    const prefix = `test:throttle:${randomBytes(6).toString('hex')}:`;
    const a = redisThrottle(redis, settings, prefix);
    const b = redisThrottle(redis, settings, prefix);
    const t0 = 1_764_331_200_000;
    const grants = await Promise.all([a.acquire('ep', 4, 3, t0), b.acquire('ep', 4, 3, t0)]);
    expect(grants.map((g) => g.granted).sort()).toEqual([1, 3]);
    await a.report('ep', false, t0, 5000);
    expect(await b.blocked(t0 + 1)).toEqual(['ep']);
  });
});
