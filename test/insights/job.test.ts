/**
 * Insights run in the worker role, once a round however many workers share the database: a worker claims the
 * round in `job_rounds` before it runs (migration 0020). Two worker roles, each with a store (a pool) of its
 * own on one PostgreSQL database, as two `trellis worker` processes would be: of their claims of a round, one
 * wins, and on their timers the runs never outnumber the rounds. The claim itself on both dialects.
 */
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { composeWorkerRole, type WorkerRole } from '../../src/cli/roles.js';
import { loadConfig } from '../../src/config/index.js';
import { INSIGHTS_JOB } from '../../src/insights/index.js';
import { claimJobRound } from '../../src/insights/insights.store.js';
import { ManualClock, systemClock, type Clock } from '../../src/kernel/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { UsageRecorder } from '../../src/usage/index.js';
import { Fixtures, until } from '../gateway/fixtures.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';

const silent = pino({ level: 'silent' });

describe.each(dialects)('job rounds (%s)', (dialect) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore(dialect);
  });
  afterAll(async () => {
    await store.cleanup();
  });

  it('lets one claim of a round win, a later round be claimed, and an older round never', async () => {
    const claim = (roundStart: string, holder: string) =>
      claimJobRound(store.db, { job: 'test', roundStart, holder, at: roundStart });
    expect(await claim('2026-06-01T10:00:00.000Z', 'a')).toBe(true);
    expect(await claim('2026-06-01T10:00:00.000Z', 'b')).toBe(false);
    expect(await claim('2026-06-01T10:00:00.000Z', 'a')).toBe(false);
    expect(await claim('2026-06-01T09:59:00.000Z', 'b')).toBe(false);
    expect(await claim('2026-06-01T10:01:00.000Z', 'b')).toBe(true);
    // another job's rounds are its own
    expect(
      await claimJobRound(store.db, {
        job: 'other',
        roundStart: '2026-06-01T10:00:00.000Z',
        holder: 'a',
        at: '2026-06-01T10:00:00.000Z',
      }),
    ).toBe(true);
    const row = await store.db
      .selectFrom('job_rounds' as never)
      .selectAll()
      .where('job' as never, '=', 'test' as never)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ round_start: '2026-06-01T10:01:00.000Z', holder: 'b' });
  });

  it('has one winner among concurrent claims of a round', async () => {
    for (let round = 0; round < 5; round++) {
      const roundStart = new Date(Date.UTC(2026, 6, 1, 0, round)).toISOString();
      const won = await Promise.all(
        ['a', 'b', 'c', 'd'].map((holder) =>
          claimJobRound(store.db, { job: 'race', roundStart, holder, at: roundStart }),
        ),
      );
      expect(won.filter(Boolean)).toHaveLength(1);
    }
  });
});

describe('insights in two workers on PostgreSQL', () => {
  let store: TestStore;
  let second: Store;
  const roles: WorkerRole[] = [];

  beforeAll(async () => {
    store = await freshStore('postgres');
    second = openStore(store.url, { poolSize: 5 });
  });
  afterEach(async () => {
    for (const role of roles.splice(0)) await role.close();
  });
  afterAll(async () => {
    await second?.destroy();
    await store.cleanup();
  });

  const worker = async (s: Store, clock: Clock, insightsIntervalMs: number) => {
    const config = loadConfig({}, { databaseUrl: store.url, insightsIntervalMs, logLevel: 'silent' });
    const role = await composeWorkerRole({ config, store: s, logger: silent, clock });
    roles.push(role);
    return role;
  };

  it('runs each round in one worker only, detectors and quota alerts included', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 10, 5, 7));
    const f = new Fixtures(store, clock);
    const service = await f.service();
    const planId = await f.plan(service.id);
    await f.limit(planId, service.hitsId, 'day', 2);
    const app = await f.application(service.id, planId);
    const recorder = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    recorder.record({
      at: clock.now(),
      serviceId: service.id,
      applicationId: app.id,
      accountId: app.accountId,
      metrics: [{ metricId: service.hitsId, delta: 2 }],
      status: 200,
      latencyMs: 1,
      bytesIn: 0,
      bytesOut: 0,
      endUser: null,
      clientIp: '127.0.0.1',
    });
    await recorder.close();

    const a = await worker(store, clock, 60_000);
    const b = await worker(second, clock, 60_000);
    const jobs = [a.insights!, b.insights!];
    for (let round = 0; round < 6; round++) {
      // both check at once: one of them runs the round
      const ran = await Promise.all(jobs.map((j) => j.tick()));
      expect(ran.filter(Boolean)).toHaveLength(1);
      // checked again in the same round, neither runs it
      expect(await Promise.all(jobs.map((j) => j.tick()))).toEqual([false, false]);
      clock.advance(60_000);
    }
    expect(a.insights!.runs + b.insights!.runs).toBe(6);
    // the run did its work: every level of the day limit announced, once
    const alerts = await store.db
      .selectFrom('quota_alerts' as never)
      .select('level' as never)
      .execute();
    expect(alerts.map((r) => Number((r as { level: number }).level)).sort((x, y) => x - y)).toEqual([
      50, 80, 90, 100,
    ]);
    const row = await store.db
      .selectFrom('job_rounds' as never)
      .selectAll()
      .where('job' as never, '=', INSIGHTS_JOB as never)
      .executeTakeFirstOrThrow();
    expect([a.worker.workerId, b.worker.workerId]).toContain((row as { holder: string }).holder);
  });

  it('on their timers, the two workers together never run more rounds than have passed', async () => {
    const intervalMs = 150;
    const started = Date.now();
    const a = await worker(store, systemClock, intervalMs);
    const b = await worker(second, systemClock, intervalMs);
    a.start();
    b.start();
    const runs = () => a.insights!.runs + b.insights!.runs;
    await until(() => runs() >= 4, 30_000);
    await a.insights!.close();
    await b.insights!.close();
    const ended = Date.now();
    const rounds = Math.floor(ended / intervalMs) - Math.floor(started / intervalMs) + 1;
    expect(runs()).toBeLessThanOrEqual(rounds);
  }, 40_000);

  it('has no insights job when TRELLIS_INSIGHTS_INTERVAL_MS is 0', async () => {
    const role = await worker(store, systemClock, 0);
    expect(role.insights).toBeNull();
    role.start();
  });
});
