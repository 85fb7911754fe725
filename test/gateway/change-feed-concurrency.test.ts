/**
 * The change feed under concurrent writers on PostgreSQL (issue 8, item 2). A transaction that took a lower outbox
 * `seq` may commit after one that took a higher one; a reader that moved past the higher one must still see the
 * lower one. Here transactions are held open on purpose until the others have committed (or are seen waiting)
 * and the gateway has read the feed, then let go: every revoked key and suspended application must be refused.
 *
 * PostgreSQL only: SQLite has one writer at a time (and Trellis one connection to it), so its transactions
 * commit in the order they write and cannot interleave like this.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Change,
  latestChangeSeq,
  readChangesSince,
  recordChange,
  runChange,
  systemActor,
} from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { openStore, type Store, type Tx } from '../../src/store/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';
import { call, Fixtures, startGateway, startUpstream, testConfig, until, type Upstream } from './fixtures.js';

describe('change feed with concurrent writers (postgres)', () => {
  let store: TestStore;
  let writers: Store;
  let upstream: Upstream;
  beforeAll(async () => {
    store = await freshStore('postgres');
    writers = openStore(store.url, { poolSize: 40 });
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream.close();
    await writers.destroy();
    await store.cleanup();
  });

  it('sees every change, including those of transactions that commit after later ones', {
    timeout: 60_000,
  }, async () => {
    const f = new Fixtures(store, systemClock);
    const service = await f.service({ upstream: upstream.url, prefix: '/feed' });
    const planId = await f.plan(service.id);
    const revoked: { id: string; secret: string; applicationId: string }[] = [];
    const suspended: { applicationId: string; secret: string }[] = [];
    for (let i = 0; i < 24; i++) {
      const app = await f.application(service.id, planId);
      const key = await f.key(app.id);
      revoked.push({ id: key.id, secret: key.secret, applicationId: app.id });
    }
    for (let i = 0; i < 12; i++) {
      const app = await f.application(service.id, planId);
      suspended.push({ applicationId: app.id, secret: (await f.key(app.id)).secret });
    }
    const gw = await startGateway({
      store,
      clock: systemClock,
      config: testConfig({ snapshotRefreshMs: 10 }),
    });
    const status = async (secret: string) =>
      (await call(`${gw.url}/feed/x`, { headers: { 'X-User-Key': secret } })).status;
    // every key is known and cached
    for (const k of [...revoked, ...suspended]) expect(await status(k.secret)).toBe(200);

    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const deps = { db: writers.db, clock: systemClock };
    let n = 0;
    /**
     * One writer. Held ones wait for the gate in one of two places, alternately: inside `runChange` before it
     * writes its event (a slow operation), or after the event row is written, just before the commit (a slow
     * commit, as `recordChange` in an open transaction).
     */
    const write = (held: boolean, change: Change, apply: (tx: Tx) => Promise<unknown>) => {
      if (held && n++ % 2 === 1) {
        return writers.db.transaction().execute(async (tx) => {
          await apply(tx);
          await recordChange(tx, systemClock, systemActor, change);
          await gate;
        });
      }
      return runChange(deps, systemActor, async (tx, record) => {
        await apply(tx);
        await record(change);
        if (held) await gate;
      });
    };
    const jobs: Promise<void>[] = [];
    const free: Promise<void>[] = [];
    revoked.forEach((k, i) => {
      const held = i % 3 === 0;
      const job = write(
        held,
        {
          type: 'credential.revoked',
          entityType: 'credential',
          entityId: k.id,
          payload: { applicationId: k.applicationId },
        },
        (tx) => tx.updateTable('credentials').set({ state: 'revoked' }).where('id', '=', k.id).execute(),
      );
      jobs.push(job);
      if (!held) free.push(job);
    });
    suspended.forEach((a, i) => {
      const held = i % 3 === 0;
      const job = write(
        held,
        {
          type: 'application.suspended',
          entityType: 'application',
          entityId: a.applicationId,
          payload: { applicationId: a.applicationId },
        },
        (tx) =>
          tx
            .updateTable('applications')
            .set({ state: 'suspended' })
            .where('id', '=', a.applicationId)
            .execute(),
      );
      jobs.push(job);
      if (!held) free.push(job);
    });

    // the transactions not held have committed, or wait for the held ones (a fix may serialise them)
    let committed = 0;
    for (const job of free) void job.then(() => committed++);
    const dbName = new URL(store.url).pathname.slice(1);
    await until(async () => {
      const waiting = await sql<{ n: number }>`
        select count(*)::int as n from pg_stat_activity where datname = ${dbName} and wait_event_type = 'Lock'
      `.execute(store.db);
      return committed + (waiting.rows[0]?.n ?? 0) >= free.length;
    }, 20_000);
    // the gateway reads the feed past everything committed so far
    await gw.gateway.refresh();
    release();
    await Promise.all(jobs);

    const stillAccepted = async () => {
      const open: string[] = [];
      for (const k of revoked) if ((await status(k.secret)) === 200) open.push(`key ${k.id}`);
      for (const a of suspended) if ((await status(a.secret)) === 200) open.push(`app ${a.applicationId}`);
      return open;
    };
    await until(async () => (await stillAccepted()).length === 0, 3000, 50).catch(() => {});
    expect(await stillAccepted()).toEqual([]);
    await gw.close();
  });
});

describe.each(dialects)('one change with many records (%s)', (dialect) => {
  it('writes every audit entry and event of a large change, in order, within the databases’ bounds', {
    timeout: 60_000,
  }, async () => {
    const store = await freshStore(dialect);
    try {
      const deps = { db: store.db, clock: systemClock };
      const before = await latestChangeSeq(store.db);
      // 5,000 × 8 bound values in one statement would exceed what SQLite (32,766) and PostgreSQL (65,535) allow
      await runChange(deps, systemActor, async (_tx, record) => {
        for (let i = 0; i < 5000; i++)
          await record({
            type: 'metric.created',
            entityType: 'metric',
            entityId: `met_${i}`,
            payload: { i },
          });
      });
      const read = await readChangesSince(store.db, before, 10_000);
      expect(read.map((e) => e.entityId)).toEqual(Array.from({ length: 5000 }, (_, i) => `met_${i}`));
      const audit = await store.db
        .selectFrom('audit_log')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(audit.n)).toBe(5000);
    } finally {
      await store.cleanup();
    }
  });
});
