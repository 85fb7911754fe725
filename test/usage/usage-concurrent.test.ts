/**
 * Two gateways writing usage at once: their compactions add journal rows to the same usage rows and keys' "last
 * used", and their insights writes add to the same rows, each in the order of its own gateway's calls, so they
 * meet in different orders. Nothing may fail or be counted twice.
 * Each writer is a gateway's: on PostgreSQL its store's connections, on a SQLite file a thread of its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/kernel/index.js';
import { type Store, migrateToLatest, openStore } from '../../src/store/index.js';
import type { PatternBatch } from '../../src/usage/call-patterns.js';
import { type KeyUse, encodeJournal } from '../../src/usage/usage-journal.js';
import { type UsageWriter, usageWriterFor } from '../../src/usage/usage-writer.js';
import type { UsageCallTable, UsageMetricCountTable } from '../../src/usage/usage-tables.js';
import { Fixtures } from '../gateway/fixtures.js';
import { dialects, freshDatabaseUrl } from '../support/stores.js';

const APPS = 200;
const ROUNDS = 10;
const bucket = '2026-05-10T10:00:00.000Z';

/** Insights sums of one call per application, in the order given. */
function patterns(appIds: readonly string[]): PatternBatch {
  return {
    routeRows: appIds.map((application_id) => ({
      bucket,
      service_id: 'svc_1',
      application_id,
      route: 'GET /items',
      status_class: '2xx',
      latency_bucket: 5,
      calls: 1,
    })),
    patternRows: appIds.map((application_id) => ({
      bucket,
      service_id: 'svc_1',
      application_id,
      kind: 'after_create',
      route: 'GET /items',
      prior_route: 'POST /items',
      lag: 1,
      calls: 1,
    })),
  };
}

/** A flush's journal body: one call per application in `minute`, and the keys' last use in the order given. */
function journalBody(minute: string, appIds: readonly string[], used: readonly KeyUse[]): string {
  const metricRows: UsageMetricCountTable[] = appIds.map((application_id) => ({
    granularity: 'minute',
    bucket: minute,
    service_id: 'svc_1',
    application_id,
    account_id: 'acc_1',
    metric_id: 'hits',
    value: 1,
  }));
  const callRows: UsageCallTable[] = appIds.map((application_id) => ({
    bucket: minute,
    service_id: 'svc_1',
    application_id,
    account_id: 'acc_1',
    end_user: '',
    client_ip: '127.0.0.1',
    status: 200,
    calls: 1,
    latency_ms_sum: 2,
    latency_ms_max: 2,
    bytes_in: 10,
    bytes_out: 100,
  }));
  return encodeJournal(metricRows, callRows, used);
}

/** The error code (or message) of each rejected write. */
function failuresOf(settled: readonly PromiseSettledResult<unknown>[]): string[] {
  return settled.flatMap((s) =>
    s.status === 'rejected' ? [String((s.reason as { code?: string }).code ?? s.reason)] : [],
  );
}

describe.each(dialects)('two gateways writing usage at once (%s)', (dialect) => {
  let url: string;
  let drop: () => Promise<void>;
  let dir: string | null = null;
  let a: Store;
  let b: Store;
  /** the two gateways' usage writers */
  let one: UsageWriter;
  let two: UsageWriter;

  beforeAll(async () => {
    if (dialect === 'sqlite') {
      // two connections need a file between them
      dir = mkdtempSync(join(tmpdir(), 'trellis-usage-concurrent-'));
      url = `sqlite:${join(dir, 'db.sqlite')}`;
      drop = async () => {};
    } else ({ url, drop } = await freshDatabaseUrl(dialect));
    a = openStore(url, { poolSize: 2 });
    await migrateToLatest(a.db);
    b = openStore(url, { poolSize: 2 });
    one = usageWriterFor(a.db, url, true);
    two = usageWriterFor(b.db, url, true);
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await a?.destroy();
    await b?.destroy();
    await drop?.();
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  });

  it('add the insights sums to the same rows in different orders, neither failing, every call counted once', async () => {
    const appIds = Array.from({ length: APPS }, (_, i) => `app_${String(i).padStart(3, '0')}`);
    const forward = patterns(appIds);
    const backward = patterns([...appIds].reverse());
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round++)
      failures.push(
        ...failuresOf(await Promise.allSettled([one.addPatterns(forward), two.addPatterns(backward)])),
      );
    expect(failures).toEqual([]);

    const sums = async (table: string) => {
      const r = await a.db
        .withTables<Record<string, { calls: number }>>()
        .selectFrom(table)
        .select((eb) => [eb.fn.count<number>('calls').as('rows'), eb.fn.sum<number>('calls').as('total')])
        .executeTakeFirstOrThrow();
      return { rows: Number(r.rows), total: Number(r.total) };
    };
    expect(await sums('usage_route_calls')).toEqual({ rows: APPS, total: APPS * 2 * ROUNDS });
    expect(await sums('usage_call_patterns')).toEqual({ rows: APPS, total: APPS * 2 * ROUNDS });
  });

  it("compact rows of the same keys' last use in opposite orders at once, neither failing, each row counted once, the latest use kept", async () => {
    // more keys than one statement of the keys' "last used" holds (400): on PostgreSQL the two compactions'
    // statements then lock them a chunk at a time, in opposite orders
    const KEYS = 1000;
    const f = new Fixtures(a);
    const service = await f.service();
    const planId = await f.plan(service.id);
    const app = await f.application(service.id, planId);
    const hashes = Array.from({ length: KEYS }, (_, i) => hashSecret(`concurrent-${app.id}-${i}`));
    await f.keyHashes(app.id, hashes, 'trk_conc');
    // each gateway's rows count applications of its own: compactions adding to the same usage rows wait for each
    // other at the first of them (the upserts are sorted), and the keys' rows would never be held by both at once
    const appsOf = (gateway: string) =>
      Array.from({ length: APPS }, (_, i) => `${gateway}_${String(i).padStart(3, '0')}`);
    const minute = '2026-05-10T12:00:00.000Z';
    const start = Date.parse(minute);
    // key i's call in a round: the first gateway's at ms i of the round's second, the second's at ms KEYS-1-i,
    // so each gateway holds the later use of half the keys
    const used = (round: number, reversed: boolean): KeyUse[] => {
      const uses = hashes.map((hash, i) => ({
        hash,
        at: start + round * 1000 + (reversed ? KEYS - 1 - i : i),
      }));
      return reversed ? uses.reverse() : uses;
    };
    const failures: string[] = [];
    let compacted = 0;
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all([
        one.appendJournal(journalBody(minute, appsOf('one'), used(round, false)), minute),
        two.appendJournal(journalBody(minute, [...appsOf('two')].reverse(), used(round, true)), minute),
      ]);
      // one row each: the two transactions at once hold the keys in opposite orders
      const settled = await Promise.allSettled([one.compactJournal(1), two.compactJournal(1)]);
      failures.push(...failuresOf(settled));
      for (const s of settled) if (s.status === 'fulfilled') compacted += s.value.entries;
    }
    const { rows: journal } = await sql<{
      n: number | string;
    }>`select count(*) as n from usage_journal`.execute(a.db);
    // a failed compaction leaves its row in the journal: compacted now, the counts below and the next test hold
    for (let done = await one.compactJournal(16); done.entries > 0; done = await one.compactJournal(16))
      compacted += done.entries;
    expect(failures).toEqual([]);
    expect(Number(journal[0]!.n)).toBe(0);
    expect(compacted).toBe(2 * ROUNDS);
    const { rows: counted } = await sql<{ granularity: string; n: number | string; total: number | string }>`
      select granularity, count(*) as n, sum(value) as total from usage_metric_counts
      where application_id like 'one%' or application_id like 'two%'
      group by granularity order by granularity`.execute(a.db);
    expect(counted.map((r) => [r.granularity, Number(r.n), Number(r.total)])).toEqual(
      ['day', 'hour', 'minute'].map((g) => [g, 2 * APPS, 2 * APPS * ROUNDS]),
    );
    const { rows: calls } = await sql<{ n: number | string; total: number | string }>`
      select count(*) as n, sum(calls) as total from usage_calls where bucket = ${minute}`.execute(a.db);
    expect([Number(calls[0]!.n), Number(calls[0]!.total)]).toEqual([2 * APPS, 2 * APPS * ROUNDS]);
    const written = await a.db
      .selectFrom('credentials')
      .select(['secret_hash', 'last_used_at'])
      .where('secret_hash', 'in', hashes)
      .execute();
    const latest = (i: number) =>
      new Date(start + (ROUNDS - 1) * 1000 + Math.max(i, KEYS - 1 - i)).toISOString();
    expect(new Map(written.map((r) => [r.secret_hash, r.last_used_at]))).toEqual(
      new Map(hashes.map((hash, i) => [hash, latest(i)])),
    );
  });

  it('compact the same journal at once, each row added by one of them', async () => {
    const minute = '2026-05-10T11:00:00.000Z';
    const entries = 150;
    for (let i = 0; i < entries; i++)
      await one.appendJournal(
        JSON.stringify({
          v: 1,
          m: [[minute, 'svc_1', `journal_${i % 7}`, 'acc_1', 'hits', 2]],
          c: [[minute, 'svc_1', `journal_${i % 7}`, 'acc_1', '', '127.0.0.1', 200, 1, 2, 2, 10, 100]],
          u: [],
        }),
        minute,
      );
    const drain = async (writer: UsageWriter) => {
      let taken = 0;
      for (let round = 0; round < 100; round++) {
        const done = await writer.compactJournal(8);
        taken += done.entries;
        if (done.entries === 0) break;
      }
      return taken;
    };
    const [byOne, byTwo] = await Promise.all([drain(one), drain(two)]);
    expect(byOne + byTwo).toBe(entries);
    const { rows } = await sql<{ value: number | string; calls: number | string }>`
      select (select sum(value) from usage_metric_counts where granularity = 'minute' and bucket = ${minute}) as value,
        (select sum(calls) from usage_calls where bucket = ${minute}) as calls`.execute(a.db);
    expect([Number(rows[0]!.value), Number(rows[0]!.calls)]).toEqual([2 * entries, entries]);
  });
});
