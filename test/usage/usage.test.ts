import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/kernel/index.js';
import { queryTraffic, queryUsage, type UsageRecord, UsageRecorder } from '../../src/usage/index.js';
import { appendUsageJournal } from '../../src/usage/usage.store.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import { usageRecord } from '../support/usage-records.js';

const at = (h: number, m: number, s = 0) => Date.UTC(2026, 4, 10, h, m, s);

describe.each(dialects)('usage recorder (%s)', (dialect) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore(dialect);
  });
  afterAll(() => store.cleanup());

  it('sums calls per minute and writes hour and day rollups that the queries read', async () => {
    const clock = new ManualClock(at(12, 0));
    const usage = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    usage.record(usageRecord({ at: at(10, 0, 5) }));
    usage.record(
      usageRecord({
        at: at(10, 0, 50),
        metrics: [
          { metricId: 'hits', delta: 2 },
          { metricId: 'search', delta: 2 },
        ],
      }),
    );
    usage.record(usageRecord({ at: at(10, 1, 0) }));
    usage.record(usageRecord({ at: at(11, 30), applicationId: 'app_2' }));
    usage.record(usageRecord({ at: at(11, 31), status: 429, metrics: [] }));
    await usage.flush();
    // a second flush of new records adds to the same rows
    usage.record(usageRecord({ at: at(10, 0, 59) }));
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

  it("sums each calls row and metric row apart when one application's calls alternate between them", async () => {
    const clock = new ManualClock(at(14, 0));
    const usage = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    const app = 'app_alternating';
    const calls: Partial<UsageRecord>[] = [
      { endUser: 'u1' },
      { endUser: 'u2' },
      { endUser: 'u1', clientIp: '10.0.0.2' },
      { endUser: 'u1', status: 500, metrics: [{ metricId: 'search', delta: 3 }] },
      { endUser: 'u1' },
      { endUser: 'u1', serviceId: 'svc_2' },
      { endUser: 'u1', at: at(14, 1) },
      { endUser: 'u1', at: at(14, 0, 30), metrics: [{ metricId: 'search', delta: 1 }] },
      { endUser: 'u2' },
    ];
    for (const c of calls) usage.record(usageRecord({ at: at(14, 0), applicationId: app, ...c }));
    await usage.flush();
    const rows = await sql<{
      bucket: string;
      service_id: string;
      end_user: string;
      client_ip: string;
      status: number;
      calls: number;
    }>`
      select bucket, service_id, end_user, client_ip, status, calls from usage_calls where application_id = ${app}
      order by bucket, service_id, end_user, client_ip, status`.execute(store.db);
    expect(
      rows.rows.map((r) => [
        new Date(r.bucket).toISOString().slice(11, 16),
        r.service_id,
        r.end_user,
        r.client_ip,
        Number(r.status),
        Number(r.calls),
      ]),
    ).toEqual([
      ['14:00', 'svc_1', 'u1', '10.0.0.2', 200, 1],
      ['14:00', 'svc_1', 'u1', '127.0.0.1', 200, 3],
      ['14:00', 'svc_1', 'u1', '127.0.0.1', 500, 1],
      ['14:00', 'svc_1', 'u2', '127.0.0.1', 200, 2],
      ['14:00', 'svc_2', 'u1', '127.0.0.1', 200, 1],
      ['14:01', 'svc_1', 'u1', '127.0.0.1', 200, 1],
    ]);
    const minutes = await queryUsage(store.db, {
      applicationId: app,
      granularity: 'minute',
      from: new Date(at(14, 0)),
      to: new Date(at(14, 2)),
    });
    expect(Object.fromEntries(minutes.map((s) => [s.metricId, s.points.map((p) => p.value)]))).toEqual({
      hits: [6, 1],
      search: [4, 0],
    });
  });

  it('sums a flush of more rows than one statement holds, and its repeat, row by row', async () => {
    // 1,001 applications: 3,003 metric rows (minute, hour, day), 2,002 calls rows, 1,001 route rows: full
    // statements of 400 rows and a shorter last one, written twice so the second flush adds to every row
    const clock = new ManualClock(at(15, 0));
    const usage = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    const n = 1001;
    const app = (i: number) => `bulk_${String(i).padStart(4, '0')}`;
    for (let flush = 0; flush < 2; flush++) {
      for (let i = 0; i < n; i++) {
        const fields = { at: at(15, 0, 1), applicationId: app(i), route: 'r1', bytesIn: i };
        usage.record(
          usageRecord({ ...fields, latencyMs: i + flush, metrics: [{ metricId: 'hits', delta: i }] }),
        );
        usage.record(usageRecord({ ...fields, latencyMs: 1, metrics: [{ metricId: 'hits', delta: 1 }] }));
        usage.record(usageRecord({ ...fields, latencyMs: 3, status: 500, metrics: [] }));
      }
      await usage.flush();
    }
    expect(usage.stats()).toMatchObject({ pendingRecords: 0, failedFlushes: 0 });
    const calls = await sql<{
      application_id: string;
      status: number;
      calls: number;
      latency_ms_sum: number;
      latency_ms_max: number;
      bytes_in: number;
      bytes_out: number;
    }>`select application_id, status, calls, latency_ms_sum, latency_ms_max, bytes_in, bytes_out from usage_calls
      where application_id like 'bulk_%' order by application_id, status`.execute(store.db);
    const expected = [];
    for (let i = 0; i < n; i++) {
      expected.push([app(i), 200, 4, i + (i + 1) + 2, Math.max(i + 1, 1), 4 * i, 400]);
      expected.push([app(i), 500, 2, 6, 3, 2 * i, 200]);
    }
    expect(
      calls.rows.map((r) => [
        r.application_id,
        Number(r.status),
        Number(r.calls),
        Number(r.latency_ms_sum),
        Number(r.latency_ms_max),
        Number(r.bytes_in),
        Number(r.bytes_out),
      ]),
    ).toEqual(expected);
    const metrics = await sql<{ granularity: string; application_id: string; value: number }>`
      select granularity, application_id, value from usage_metric_counts
      where application_id like 'bulk_%' and metric_id = 'hits' order by granularity, application_id`.execute(
      store.db,
    );
    const values = (g: string) =>
      metrics.rows.filter((r) => r.granularity === g).map((r) => [r.application_id, Number(r.value)]);
    const perApp = Array.from({ length: n }, (_, i) => [app(i), 2 * (i + 1)]);
    expect(values('minute')).toEqual(perApp);
    expect(values('hour')).toEqual(perApp);
    expect(values('day')).toEqual(perApp);
    const routes = await sql<{ rows: number; calls: number }>`
      select count(*) as rows, sum(calls) as calls from usage_route_calls where application_id like 'bulk_%'`.execute(
      store.db,
    );
    expect(routes.rows.map((r) => [Number(r.rows) > 0, Number(r.calls)])).toEqual([[true, 6 * n]]);
  });

  it("writes the insights sums with the timer's flushes only once their interval has passed, and always at flush() and close()", async () => {
    const clock = new ManualClock(at(14, 0));
    const usage = new UsageRecorder({
      db: store.db,
      clock,
      flushIntervalMs: 20,
      insightsFlushIntervalMs: 60_000,
    });
    const counts = async (app: string) => {
      const { rows } = await sql<{ calls: number | string | null; routes: number | string | null }>`
        select (select sum(calls) from usage_calls where application_id = ${app}) as calls,
          (select sum(calls) from usage_route_calls where application_id = ${app}) as routes`.execute(
        store.db,
      );
      return [Number(rows[0]?.calls ?? 0), Number(rows[0]?.routes ?? 0)];
    };
    const settled = async (app: string, want: number[]) => {
      const until = Date.now() + 5000;
      while (Date.now() < until) {
        if ((await counts(app)).join() === want.join()) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(await counts(app)).toEqual(want);
    };
    try {
      const call = { at: at(14, 0), applicationId: 'app_insights', method: 'GET', route: 'r_items' };
      usage.record(usageRecord(call));
      usage.record(usageRecord(call));
      await settled('app_insights', [2, 0]);
      // more flushes of the timer meanwhile: the usage goes on being written, the histogram waits its interval
      usage.record(usageRecord(call));
      await settled('app_insights', [3, 0]);
      clock.advance(60_000);
      await settled('app_insights', [3, 3]);
      // an explicit flush writes them whatever the interval
      usage.record(usageRecord(call));
      await usage.flush();
      expect(await counts('app_insights')).toEqual([4, 4]);
      usage.record(usageRecord(call));
    } finally {
      await usage.close();
    }
    expect(await counts('app_insights')).toEqual([5, 5]);
  });

  it('keeps usage when a flush fails and writes it at the next one', async () => {
    const clock = new ManualClock(at(13, 0));
    const usage = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    usage.record(usageRecord({ at: at(13, 0), applicationId: 'app_retry' }));
    // break the journal: the flush fails as if the database were away
    await sql`alter table usage_journal rename to usage_journal_away`.execute(store.db);
    await usage.flush();
    expect(usage.stats()).toMatchObject({ pendingRecords: 1, failedFlushes: 1, oldestPendingAt: at(13, 0) });
    usage.record(usageRecord({ at: at(13, 0), applicationId: 'app_retry' }));
    await sql`alter table usage_journal_away rename to usage_journal`.execute(store.db);
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

  it('keeps the journal when a compaction fails and moves it into the tables at the next one', async () => {
    const clock = new ManualClock(at(13, 10));
    const usage = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    const total = async () =>
      (
        await queryUsage(store.db, {
          applicationId: 'app_compact_retry',
          granularity: 'minute',
          from: new Date(at(13, 10)),
          to: new Date(at(13, 11)),
        })
      )[0]?.total ?? 0;
    usage.record(usageRecord({ at: at(13, 10), applicationId: 'app_compact_retry' }));
    // the journal takes the flush, the tables refuse the compaction
    await sql`alter table usage_calls rename to usage_calls_away`.execute(store.db);
    try {
      await usage.flush();
    } finally {
      await sql`alter table usage_calls_away rename to usage_calls`.execute(store.db);
    }
    expect(usage.stats()).toMatchObject({ pendingRecords: 0, failedFlushes: 0, failedCompactions: 1 });
    expect(await total()).toBe(0);
    usage.record(usageRecord({ at: at(13, 10), applicationId: 'app_compact_retry' }));
    await usage.close();
    expect(usage.stats()).toMatchObject({ failedCompactions: 1 });
    expect(await total()).toBe(2);
    const left = await sql<{ n: number | string }>`select count(*) as n from usage_journal`.execute(store.db);
    expect(Number(left.rows[0]!.n)).toBe(0);
  });

  it("adds what another gateway left in the journal, once, and deletes a row that is not the journal's", async () => {
    const clock = new ManualClock(at(13, 20));
    const minute = new Date(at(13, 20)).toISOString();
    // a gateway killed after two flushes and before its compaction, and a row of something else
    for (let i = 0; i < 2; i++)
      await appendUsageJournal(
        store.db,
        JSON.stringify({ v: 1, m: [[minute, 'svc_1', 'app_left', 'acc_1', 'hits', 3]], c: [], u: [] }),
        minute,
      );
    await appendUsageJournal(store.db, '{"v":1,"m":[["not enough values"]],"c":[],"u":[]}', minute);
    const usage = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    await usage.compact();
    await usage.compact();
    expect(usage.stats()).toMatchObject({ droppedJournalEntries: 1, failedCompactions: 0 });
    await usage.close();
    const series = await queryUsage(store.db, {
      applicationId: 'app_left',
      granularity: 'day',
      from: new Date(Date.UTC(2026, 4, 10)),
      to: new Date(Date.UTC(2026, 4, 11)),
    });
    expect(series[0]?.total).toBe(6);
  });
});
