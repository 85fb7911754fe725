/**
 * In-memory counters after a restart (issue 8): a gateway that starts on a database with recorded usage counts
 * on from it, so a restart does not give a plan's limits back.
 */
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostLimiter, serveHostCounters } from '../../src/gateway/limiter/host-limiter.js';
import type { CounterCheck } from '../../src/gateway/limiter/limiter.js';
import { MemoryLimiter } from '../../src/gateway/limiter/memory-limiter.js';
import { windowOf } from '../../src/gateway/limiter/periods.js';
import { ManualClock } from '../../src/kernel/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';
import { call, Fixtures, startGateway, startUpstream, type Upstream } from './fixtures.js';

const DAY = 86_400_000;

describe.each(dialects)('in-memory limits across a restart (%s)', (dialect) => {
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

  it('a 5-a-minute plan refuses the 6th call after a restart', async () => {
    const { service, planId, key } = await f.keyed({ upstream: upstream.url, prefix: '/restart-minute' });
    await f.limit(planId, service.hitsId, 'minute', 5);
    const clock = new ManualClock(Date.UTC(2026, 4, 12, 9, 30, 10));
    const url = '/restart-minute/x';
    const headers = { 'X-User-Key': key };
    const before = await startGateway({ store, clock });
    for (let i = 0; i < 5; i++) expect((await call(`${before.url}${url}`, { headers })).status).toBe(200);
    // a graceful stop flushes the usage; the new gateway has new (empty) in-memory counters
    await before.close();
    clock.advance(20_000);
    const after = await startGateway({ store, clock });
    const sixth = await call(`${after.url}${url}`, { headers });
    expect([sixth.status, sixth.json.error?.details?.used]).toEqual([429, 5]);
    // the next minute is a new window
    clock.advance(30_000);
    expect((await call(`${after.url}${url}`, { headers })).status).toBe(200);
    await after.close();
  });

  it('a monthly quota counts on from the calls before the restart, and the next month starts afresh', async () => {
    const { service, planId, key } = await f.keyed({ upstream: upstream.url, prefix: '/restart-month' });
    await f.limit(planId, service.hitsId, 'month', 8);
    await f.limit(planId, service.hitsId, 'hour', 100);
    const clock = new ManualClock(Date.UTC(2026, 4, 3, 9));
    const url = '/restart-month/x';
    const headers = { 'X-User-Key': key };
    const first = await startGateway({ store, clock });
    for (let i = 0; i < 3; i++) expect((await call(`${first.url}${url}`, { headers })).status).toBe(200);
    await first.close();
    // days later, other hours: the month's calls are summed from the day rows
    clock.advance(4 * DAY);
    const second = await startGateway({ store, clock });
    for (let i = 0; i < 3; i++) expect((await call(`${second.url}${url}`, { headers })).status).toBe(200);
    await second.close();
    clock.advance(DAY + 3_600_000);
    const third = await startGateway({ store, clock });
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push((await call(`${third.url}${url}`, { headers })).status);
    expect(replies).toEqual([200, 200, 429]);
    const over = await call(`${third.url}${url}`, { headers });
    expect(over.json.error?.details).toMatchObject({ limit: 'hits-month', used: 8 });
    await third.close();
    clock.set(Date.UTC(2026, 5, 1, 0, 0, 1));
    const nextMonth = await startGateway({ store, clock });
    expect((await call(`${nextMonth.url}${url}`, { headers })).status).toBe(200);
    await nextMonth.close();
  });

  it('counts a year and eternity from the recorded days, per metric', async () => {
    const service = await f.service({ upstream: upstream.url, prefix: '/restart-long', defaultRule: false });
    const search = await f.metric(service.id, 'search', service.hitsId);
    await f.rule(service.id, { pattern: '/search', metricId: search });
    await f.rule(service.id, { pattern: '/other', metricId: service.hitsId });
    const planId = await f.plan(service.id);
    await f.limit(planId, search, 'eternity', 2);
    await f.limit(planId, service.hitsId, 'year', 4);
    const app = await f.application(service.id, planId);
    const key = (await f.key(app.id)).secret;
    const headers = { 'X-User-Key': key };
    const clock = new ManualClock(Date.UTC(2025, 11, 31, 23, 59));
    const first = await startGateway({ store, clock });
    expect((await call(`${first.url}/restart-long/search`, { headers })).status).toBe(200);
    await first.close();
    clock.set(Date.UTC(2026, 1, 10));
    const second = await startGateway({ store, clock });
    expect((await call(`${second.url}/restart-long/search`, { headers })).status).toBe(200);
    expect((await call(`${second.url}/restart-long/other`, { headers })).status).toBe(200);
    await second.close();
    clock.set(Date.UTC(2026, 6, 1));
    const third = await startGateway({ store, clock });
    // eternity: 2 searches since the beginning, across the year's end
    const search3 = await call(`${third.url}/restart-long/search`, { headers });
    expect([search3.status, search3.json.error?.details?.limit]).toEqual([429, 'search-eternity']);
    // year 2026: one search and one other hit so far (the search of 2025 is another year)
    expect((await call(`${third.url}/restart-long/other`, { headers })).status).toBe(200);
    expect((await call(`${third.url}/restart-long/other`, { headers })).status).toBe(200);
    const year = await call(`${third.url}/restart-long/other`, { headers });
    expect([year.status, year.json.error?.details?.limit]).toEqual([429, 'hits-year']);
    await third.close();
  });
});

describe('host counters (workers without Redis) after a restart', () => {
  it('carry what a counter counts to the primary, whose counters start from the recorded usage', async () => {
    const now = Date.UTC(2026, 4, 12, 9, 30, 10);
    const minute = windowOf('minute', now);
    const counters = new MemoryLimiter({
      seed: async () => new Map([['met1:minute', { windowStart: minute.start, value: 4 }]]),
    });
    // an IPC channel in one process: messages go through JSON as they would between processes
    const toPrimary = new EventEmitter();
    const toWorker = new EventEmitter();
    const wire = (m: unknown): unknown => JSON.parse(JSON.stringify(m));
    serveHostCounters(
      {
        send: (m) => toWorker.emit('message', wire(m)),
        on: (event, listener) => toPrimary.on(event, listener),
        isConnected: () => true,
      },
      counters,
    );
    const limiter = new HostLimiter({
      channel: {
        connected: true,
        send: (m) => toPrimary.emit('message', wire(m)),
        on: (event, listener) => toWorker.on(event, listener),
        off: (event, listener) => toWorker.off(event, listener),
      },
    });
    const check: CounterCheck = {
      key: '{app1}:met1:minute',
      windowStart: minute.start,
      windowEnd: minute.end,
      limit: 5,
      delta: 1,
      subject: { applicationId: 'app1', metricId: 'met1', period: 'minute', endUser: false },
    };
    const options = { mode: 'strict', failureMode: 'closed', now } as const;
    expect((await limiter.consume([check], options)).kind).toBe('allowed');
    expect((await limiter.consume([check], options)).kind).toBe('exceeded');
    await limiter.close();
  });
});
