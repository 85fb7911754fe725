import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { usageRecord } from '../support/usage-records.js';
import { ManualClock } from '../../src/kernel/index.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/index.js';
import { queryTraffic, queryUsage, threadWriter, UsageRecorder } from '../../src/usage/index.js';
import { encodeJournal } from '../../src/usage/usage-journal.js';

const at = (m: number, s = 0) => Date.UTC(2026, 4, 10, 10, m, s);

/** app_1's hits per minute from 10:00 for `minutes` minutes. */
async function hitsPerMinute(db: Store['db'], minutes: number): Promise<number[] | undefined> {
  const series = await queryUsage(db, {
    applicationId: 'app_1',
    metricId: 'hits',
    granularity: 'minute',
    from: new Date(at(0)),
    to: new Date(at(minutes)),
  });
  return series[0]?.points.map((p) => p.value);
}

describe('usage flushes on a writer thread (SQLite file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-writer-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes what the recorder sums, through a connection of its own, and ends with close()', async () => {
    const url = `sqlite:${join(dir, 'a.db')}`;
    const store = openStore(url);
    await migrateToLatest(store.db);
    const usage = new UsageRecorder({
      db: store.db,
      writer: threadWriter(url),
      clock: new ManualClock(at(30)),
      flushIntervalMs: 0,
    });
    for (let i = 0; i < 5; i++) usage.record(usageRecord({ at: at(0, i) }));
    usage.record(usageRecord({ at: at(1), metrics: [{ metricId: 'hits', delta: 3 }] }));
    usage.record(usageRecord({ at: at(1), status: 429, metrics: [] }));
    await usage.flush();
    // a second flush adds to the rows the first one wrote
    usage.record(usageRecord({ at: at(0, 30) }));
    await usage.close();

    expect(await hitsPerMinute(store.db, 2)).toEqual([6, 3]);
    const traffic = await queryTraffic(store.db, {
      applicationId: 'app_1',
      granularity: 'minute',
      from: new Date(at(0)),
      to: new Date(at(2)),
    });
    expect(traffic.map((p) => p.calls)).toEqual([6, 2]);
    expect(usage.stats()).toMatchObject({ pendingRecords: 0, flushes: 2, failedFlushes: 0 });
    await store.destroy();
  });

  it('keeps the rows when the thread cannot write, and writes them once it can', async () => {
    const url = `sqlite:${join(dir, 'b.db')}`;
    const store = openStore(url);
    const usage = new UsageRecorder({
      db: store.db,
      writer: threadWriter(url),
      clock: new ManualClock(at(30)),
      flushIntervalMs: 0,
    });
    usage.record(usageRecord({ at: at(0, 1) }));
    usage.record(usageRecord({ at: at(0, 2) }));
    // no tables yet: the thread's write fails and the recorder keeps both calls
    await usage.flush();
    expect(usage.stats()).toMatchObject({ pendingRecords: 2, failedFlushes: 1, flushes: 0 });

    await migrateToLatest(store.db);
    usage.record(usageRecord({ at: at(0, 3) }));
    await usage.close();
    expect(usage.stats()).toMatchObject({ pendingRecords: 0, failedFlushes: 1, flushes: 1 });
    const traffic = await queryTraffic(store.db, {
      applicationId: 'app_1',
      granularity: 'minute',
      from: new Date(at(0)),
      to: new Date(at(1)),
    });
    expect(traffic.map((p) => p.calls)).toEqual([3]);
    await store.destroy();
  });

  it('starts a new thread for a write after the last one ended', async () => {
    const url = `sqlite:${join(dir, 'c.db')}`;
    const store = openStore(url);
    await migrateToLatest(store.db);
    const writer = threadWriter(url);
    const row = {
      bucket: new Date(at(0)).toISOString(),
      granularity: 'minute' as const,
      service_id: 'svc_1',
      application_id: 'app_1',
      account_id: 'acc_1',
      metric_id: 'hits',
      value: 4,
    };
    const flushedAt = new Date(at(30)).toISOString();
    await writer.appendJournal(encodeJournal([row], [], []), flushedAt);
    await writer.close();
    await writer.appendJournal(encodeJournal([row], [], []), flushedAt);
    expect(await writer.compactJournal(16)).toEqual({ entries: 2, dropped: 0 });
    await writer.close();
    expect(await hitsPerMinute(store.db, 1)).toEqual([8]);
    await store.destroy();
  });

  it('shares the file with the store connection writing at the same time: neither write fails, nothing is lost', async () => {
    const url = `sqlite:${join(dir, 'd.db')}`;
    const store = openStore(url);
    await migrateToLatest(store.db);
    await sql`create table scratch (id integer primary key, v text not null)`.execute(store.db);
    const writer = threadWriter(url);
    await writer.ready();
    const rows = Array.from({ length: 400 }, (_, i) => ({
      bucket: new Date(at(0)).toISOString(),
      granularity: 'minute' as const,
      service_id: 'svc_1',
      application_id: `app_${i}`,
      account_id: 'acc_1',
      metric_id: 'hits',
      value: 1,
    }));
    // 25 flushes of 400 rows on the thread, each compacted at once, while the store's connection commits 250 small
    // transactions
    const body = encodeJournal(rows, [], []);
    const flushes = (async () => {
      for (let i = 0; i < 25; i++) {
        await writer.appendJournal(body, new Date(at(30)).toISOString());
        await writer.compactJournal(1);
      }
    })();
    const control = (async () => {
      for (let i = 0; i < 250; i++) {
        await store.db.transaction().execute(async (tx) => {
          await sql`insert into scratch (v) values (${`row ${i}`})`.execute(tx);
          await sql`update scratch set v = v || '.' where id = 1`.execute(tx);
        });
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    await Promise.all([flushes, control]);
    await writer.close();
    const { rows: counted } = await sql<{ n: number; total: number }>`
      select count(*) as n, sum(value) as total from usage_metric_counts where granularity = 'minute'`.execute(
      store.db,
    );
    expect(counted[0]).toEqual({ n: 400, total: 25 * 400 });
    const { rows: scratch } = await sql<{ n: number }>`select count(*) as n from scratch`.execute(store.db);
    expect(scratch[0]?.n).toBe(250);
    await store.destroy();
  });
});
