import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/kernel/index.js';
import { queryTraffic, queryUsage, UsageRecorder, type UsageRecord } from '../../src/usage/index.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';

const at = (h: number, m: number, s = 0) => Date.UTC(2026, 4, 10, h, m, s);

function record(fields: Partial<UsageRecord>): UsageRecord {
  return {
    at: at(10, 0),
    serviceId: 'svc_1',
    applicationId: 'app_1',
    accountId: 'acc_1',
    metrics: [{ metricId: 'hits', delta: 1 }],
    status: 200,
    latencyMs: 2,
    bytesIn: 10,
    bytesOut: 100,
    endUser: null,
    clientIp: '127.0.0.1',
    ...fields,
  };
}

describe.each(dialects)('usage recorder (%s)', (dialect) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore(dialect);
  });
  afterAll(() => store.cleanup());

  it('sums calls per minute and writes hour and day rollups that the queries read', async () => {
    const clock = new ManualClock(at(12, 0));
    const usage = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    usage.record(record({ at: at(10, 0, 5) }));
    usage.record(
      record({
        at: at(10, 0, 50),
        metrics: [
          { metricId: 'hits', delta: 2 },
          { metricId: 'search', delta: 2 },
        ],
      }),
    );
    usage.record(record({ at: at(10, 1, 0) }));
    usage.record(record({ at: at(11, 30), applicationId: 'app_2' }));
    usage.record(record({ at: at(11, 31), status: 429, metrics: [] }));
    await usage.flush();
    // a second flush of new records adds to the same rows
    usage.record(record({ at: at(10, 0, 59) }));
    await usage.flush();

    const minutes = await queryUsage(store.db, {
      applicationId: 'app_1',
      metricId: 'hits',
      granularity: 'minute',
      from: new Date(at(10, 0)),
      to: new Date(at(10, 3)),
    });
    expect(minutes).toEqual([
      {
        metricId: 'hits',
        total: 5,
        points: [
          { at: '2026-05-10T10:00:00.000Z', value: 4 },
          { at: '2026-05-10T10:01:00.000Z', value: 1 },
          { at: '2026-05-10T10:02:00.000Z', value: 0 },
        ],
      },
    ]);
    const hours = await queryUsage(store.db, {
      serviceId: 'svc_1',
      granularity: 'hour',
      from: new Date(at(10, 0)),
      to: new Date(at(12, 0)),
    });
    expect(Object.fromEntries(hours.map((s) => [s.metricId, s.points.map((p) => p.value)]))).toEqual({
      hits: [5, 1],
      search: [2, 0],
    });
    const days = await queryUsage(store.db, {
      accountId: 'acc_1',
      granularity: 'day',
      from: '2026-05-10T00:00:00Z',
      to: '2026-05-11T00:00:00Z',
    });
    expect(Object.fromEntries(days.map((s) => [s.metricId, s.total]))).toEqual({ hits: 6, search: 2 });

    const traffic = await queryTraffic(store.db, {
      serviceId: 'svc_1',
      granularity: 'hour',
      from: new Date(at(10, 0)),
      to: new Date(at(12, 0)),
    });
    expect(traffic.map((p) => [p.at, p.calls, p.clientErrors])).toEqual([
      ['2026-05-10T10:00:00.000Z', 4, 0],
      ['2026-05-10T11:00:00.000Z', 2, 1],
    ]);
    expect(traffic[0]).toMatchObject({ latencyMsAvg: 2, latencyMsMax: 2, bytesIn: 40, bytesOut: 400 });
  });

  it('keeps usage when a flush fails and writes it at the next one', async () => {
    const clock = new ManualClock(at(13, 0));
    const usage = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    usage.record(record({ at: at(13, 0), applicationId: 'app_retry' }));
    // break the table: the flush fails as if the database were away
    await sql`alter table usage_calls rename to usage_calls_away`.execute(store.db);
    await usage.flush();
    expect(usage.stats()).toMatchObject({ pendingRecords: 1, failedFlushes: 1, oldestPendingAt: at(13, 0) });
    usage.record(record({ at: at(13, 0), applicationId: 'app_retry' }));
    await sql`alter table usage_calls_away rename to usage_calls`.execute(store.db);
    await usage.close();
    expect(usage.stats()).toMatchObject({ pendingRecords: 0, oldestPendingAt: null });
    const series = await queryUsage(store.db, {
      applicationId: 'app_retry',
      granularity: 'minute',
      from: new Date(at(13, 0)),
      to: new Date(at(13, 1)),
    });
    // both records, neither lost nor counted twice (the failed transaction wrote nothing)
    expect(series[0]?.total).toBe(2);
  });
});
