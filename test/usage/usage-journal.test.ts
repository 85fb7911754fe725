/**
 * The journal's bodies (src/usage/usage-journal.ts): version 2, each string once, sums exactly as version 1, which
 * compactions still read; a body of neither shape adds nothing.
 */
import { describe, expect, it } from 'vitest';
import { JournalBodyError, JournalSums, callValues, encodeJournal } from '../../src/usage/usage-journal.js';
import type { UsageCallTable, UsageMetricCountTable } from '../../src/usage/usage-tables.js';

const minute = '2026-11-29T20:41:00.000Z';
const nextMinute = '2026-11-29T20:42:00.000Z';
// ids of the lengths Trellis makes (a prefix and a ULID)
const service = 'svc_01m8meh5agceqpt6jt8a3dhwt8';
const appId = (i: number) => `app_01m8meh5ak7fbtbxtcx1a${String(i).padStart(5, '0')}`;
const accountId = (i: number) => `acc_01m8meh5ak7fbtbxtcx1a${String(i).padStart(5, '0')}`;
const metric = { hits: 'met_01m8meh5ak7fbtbxtcx1aamd8y', quotes: 'met_01m8meh5ak7fbtbxtcx1aamd90' };

function metricRow(bucket: string, app: number, metric: string, value: number): UsageMetricCountTable {
  return {
    granularity: 'minute',
    bucket,
    service_id: service,
    application_id: appId(app),
    account_id: accountId(app),
    metric_id: metric,
    value,
  };
}

function callRow(bucket: string, app: number, status: number, calls: number): UsageCallTable {
  return {
    bucket,
    service_id: service,
    application_id: appId(app),
    account_id: accountId(app),
    end_user: app % 2 === 0 ? '' : `user_${app}`,
    client_ip: '192.0.2.7',
    status,
    calls,
    latency_ms_sum: calls * 1.5,
    latency_ms_max: 2 + app,
    bytes_in: 10 * calls,
    bytes_out: 100 * calls,
  };
}

/** A flush of `apps` applications, as a recorder batch holds it. */
function flush(apps: number, bucket: string, at: number) {
  const ids = Array.from({ length: apps }, (_, i) => i);
  return {
    metricRows: ids.flatMap((i) => [
      metricRow(bucket, i, metric.hits, 3),
      metricRow(bucket, i, metric.quotes, 1),
    ]),
    callRows: ids.flatMap((i) => [
      callRow(bucket, i, 200, 3),
      ...(i % 5 === 0 ? [callRow(bucket, i, 429, 1)] : []),
    ]),
    used: ids.map((i) => ({ hash: `${i}`.padStart(64, 'f'), at: at + i })),
  };
}

/** The same sums as the version 1 body an earlier gateway wrote. */
function version1(f: ReturnType<typeof flush>): string {
  const m = f.metricRows.map((r) => [
    r.bucket,
    r.service_id,
    r.application_id,
    r.account_id,
    r.metric_id,
    r.value,
  ]);
  return JSON.stringify({
    v: 1,
    m,
    c: f.callRows.map((r) => callValues(r)),
    u: f.used.map((k) => [k.hash, k.at]),
  });
}

const sumsOf = (bodies: readonly string[]) => {
  const sums = new JournalSums();
  for (const body of bodies) sums.add(body);
  return { metrics: sums.metricRows(), calls: sums.callRows(), used: sums.lastUsed() };
};

describe('the usage journal bodies', () => {
  it('adds version 2 bodies exactly as the version 1 bodies of the same flushes, and the two mixed', () => {
    const flushes = [flush(40, minute, 1_000), flush(25, minute, 2_000), flush(40, nextMinute, 3_000)];
    const v2 = flushes.map((f) => encodeJournal(f.metricRows, f.callRows, f.used));
    const v1 = flushes.map(version1);
    expect(v2.every((b) => JSON.parse(b).v === 2)).toBe(true);
    const expected = sumsOf(v1);
    expect(sumsOf(v2)).toEqual(expected);
    expect(sumsOf([v1[0]!, v2[1]!, v1[2]!])).toEqual(expected);
    // the sums are those of the flushes: app_0's hits over both minutes, its 429 row, its latest use
    const hits0 = expected.metrics.filter(
      (r) => r.application_id === appId(0) && r.metric_id === metric.hits,
    );
    expect(hits0.map((r) => [r.granularity, r.value])).toEqual([
      ['minute', 6],
      ['minute', 3],
      ['hour', 9],
      ['day', 9],
    ]);
    expect(expected.calls.find((r) => r.application_id === appId(0) && r.status === 429)?.calls).toBe(2);
    expect(expected.used.get('0'.padStart(64, 'f'))).toBe(new Date(3_000).toISOString());
  });

  it('names each string of a flush once: a thousand applications in well under half the bytes of version 1', () => {
    const f = flush(1000, minute, Date.UTC(2026, 10, 29));
    const v2 = encodeJournal(f.metricRows, f.callRows, f.used);
    expect(v2.length / version1(f).length).toBeLessThan(0.5);
  });

  it.each([
    ['an index past the strings', (b: Record<string, unknown[]>) => (b.m![0] as unknown[]).splice(2, 1, 99)],
    [
      'an index that is not a whole number',
      (b: Record<string, unknown[]>) => (b.c![0] as unknown[]).splice(0, 1, 0.5),
    ],
    [
      'a string where an index goes',
      (b: Record<string, unknown[]>) => (b.u![0] as unknown[]).splice(0, 1, 'abc'),
    ],
    ['strings that are not all text', (b: Record<string, unknown[]>) => b.s!.push(7)],
    ['no strings at all', (b: Record<string, unknown[]>) => delete b.s],
  ])('refuses a version 2 body with %s, adding nothing of it', (_, spoil) => {
    const f = flush(3, minute, 1_000);
    const body = JSON.parse(encodeJournal(f.metricRows, f.callRows, f.used)) as Record<string, unknown[]>;
    spoil(body);
    const sums = new JournalSums();
    expect(() => sums.add(JSON.stringify(body))).toThrow(JournalBodyError);
    expect([sums.metricRows(), sums.callRows(), sums.lastUsed().size]).toEqual([[], [], 0]);
  });
});
