/**
 * Two gateways flushing at once: each flush is one transaction of additive upserts (and the keys' "last used"),
 * and two of them add to the same rows whenever the same applications called through both. Their rows come in
 * the order of each gateway's calls, so they meet in different orders. Nothing may fail or be counted twice.
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
import { type UsageWriter, usageWriterFor } from '../../src/usage/usage-writer.js';
import type { UsageCallTable, UsageMetricCountTable } from '../../src/usage/usage-tables.js';
import { Fixtures } from '../gateway/fixtures.js';
import { dialects, freshDatabaseUrl } from '../support/stores.js';

const APPS = 200;
const ROUNDS = 10;
const bucket = '2026-05-10T10:00:00.000Z';

function rows(appIds: readonly string[]) {
  const metricRows: UsageMetricCountTable[] = appIds.flatMap((application_id) =>
    (['minute', 'hour', 'day'] as const).map((granularity) => ({
      granularity,
      bucket,
      service_id: 'svc_1',
      application_id,
      account_id: 'acc_1',
      metric_id: 'hits',
      value: 1,
    })),
  );
  const callRows: UsageCallTable[] = appIds.map((application_id) => ({
    bucket,
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
  const patterns: PatternBatch = {
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
  return { metricRows, callRows, patterns };
}

describe.each(dialects)('two usage flushes at once (%s)', (dialect) => {
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

  it('add to the same rows in different orders, neither failing, every call counted once', async () => {
    const appIds = Array.from({ length: APPS }, (_, i) => `app_${String(i).padStart(3, '0')}`);
    const forward = rows(appIds);
    const backward = rows([...appIds].reverse());
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const settled = await Promise.allSettled([
        one.addUsage(forward.metricRows, forward.callRows, forward.patterns),
        two.addUsage(backward.metricRows, backward.callRows, backward.patterns),
      ]);
      for (const s of settled)
        if (s.status === 'rejected') failures.push(String((s.reason as { code?: string }).code ?? s.reason));
    }
    expect(failures).toEqual([]);

    const sums = async (table: string, column: string) => {
      const r = await a.db
        .withTables<Record<string, Record<string, number | string>>>()
        .selectFrom(table)
        .select((eb) => [eb.fn.count<number>(column).as('rows'), eb.fn.sum<number>(column).as('total')])
        .executeTakeFirstOrThrow();
      return { rows: Number(r.rows), total: Number(r.total) };
    };
    const each = 2 * ROUNDS;
    expect(await sums('usage_metric_counts', 'value')).toEqual({ rows: 3 * APPS, total: 3 * APPS * each });
    expect(await sums('usage_calls', 'calls')).toEqual({ rows: APPS, total: APPS * each });
    expect(await sums('usage_route_calls', 'calls')).toEqual({ rows: APPS, total: APPS * each });
    expect(await sums('usage_call_patterns', 'calls')).toEqual({ rows: APPS, total: APPS * each });
  });

  it("write the same keys' last use in different orders, neither failing, the later use kept", async () => {
    const f = new Fixtures(a);
    const service = await f.service();
    const planId = await f.plan(service.id);
    const app = await f.application(service.id, planId);
    const hashes = Array.from({ length: APPS }, (_, i) => hashSecret(`concurrent-${app.id}-${i}`));
    await f.keyHashes(app.id, hashes, 'trk_conc');
    const at = (round: number, writer: number) =>
      new Date(Date.UTC(2026, 4, 10, 10, round, writer)).toISOString();
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const settled = await Promise.allSettled([
        one.markCredentialsUsed(new Map(hashes.map((h) => [h, at(round, 0)]))),
        two.markCredentialsUsed(new Map([...hashes].reverse().map((h) => [h, at(round, 1)]))),
      ]);
      for (const s of settled)
        if (s.status === 'rejected') failures.push(String((s.reason as { code?: string }).code ?? s.reason));
    }
    expect(failures).toEqual([]);
    const written = await a.db
      .selectFrom('credentials')
      .select('last_used_at')
      .where('secret_hash', 'in', hashes)
      .execute();
    expect(new Set(written.map((r) => r.last_used_at))).toEqual(new Set([at(ROUNDS - 1, 1)]));
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
