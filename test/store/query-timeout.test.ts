/**
 * Every query on PostgreSQL waits a bounded time for its answer (docs/reliability.md, "PostgreSQL hanging"): one
 * that gets none fails with a code `isDatabaseUnavailable` knows, and the connection it waited on is closed, not
 * handed to the next query still busy. `pg_sleep` stands in for a server that does not answer.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable, openStore, type Store } from '../../src/store/index.js';
import { freshDatabaseUrl } from '../support/stores.js';

const BOUND_MS = 500;

/** The rejection of `work`, or undefined if it succeeded. */
const failureOf = (work: Promise<unknown>) =>
  work.then(
    () => undefined,
    (err: unknown) => err as { code?: string; message?: string },
  );

describe('a query PostgreSQL does not answer', () => {
  let database: { url: string; drop(): Promise<void> };
  let store: Store;
  const warnings: string[] = [];
  beforeAll(async () => {
    database = await freshDatabaseUrl('postgres');
    // one connection: were the stuck one handed out again, the next query would wait behind pg_sleep
    store = openStore(database.url, {
      poolSize: 1,
      queryTimeoutMs: BOUND_MS,
      logger: { warn: (_data, message) => warnings.push(String(message)) },
    });
  });
  afterAll(async () => {
    await store.destroy();
    await database.drop();
  });

  const backendPid = async () =>
    (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(store.db)).rows[0]!.pid;

  it('fails after the bound with ETIMEDOUT, and the next query runs at once on another connection', async () => {
    const before = await backendPid();
    const started = Date.now();
    const err = await failureOf(sql`select pg_sleep(2)`.execute(store.db));
    const waited = Date.now() - started;
    expect(err?.code).toBe('ETIMEDOUT');
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(waited).toBeGreaterThanOrEqual(BOUND_MS - 20);
    expect(waited).toBeLessThan(BOUND_MS + 1000);
    expect(warnings.some((w) => w.includes(`no answer within ${BOUND_MS} ms`))).toBe(true);

    const next = Date.now();
    const after = await backendPid();
    expect(Date.now() - next).toBeLessThan(1000);
    expect(after).not.toBe(before);
  });

  it('fails a transaction once, at the bound: its rollback does not wait a second time', async () => {
    const started = Date.now();
    const err = await failureOf(
      store.db.transaction().execute(async (tx) => {
        await sql`select 1`.execute(tx);
        await sql`select pg_sleep(2)`.execute(tx);
      }),
    );
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(Date.now() - started).toBeLessThan(BOUND_MS + 1000);
    expect(await backendPid()).toBeGreaterThan(0);
  });

  it('lets a query answered within the bound through, and waits as long as it takes with a bound of 0', async () => {
    expect((await sql<{ n: number }>`select 1 as n`.execute(store.db)).rows).toEqual([{ n: 1 }]);
    const unbounded = openStore(database.url, { poolSize: 1, queryTimeoutMs: 0 });
    try {
      const started = Date.now();
      await sql`select pg_sleep(${(BOUND_MS * 1.6) / 1000})`.execute(unbounded.db);
      expect(Date.now() - started).toBeGreaterThanOrEqual(BOUND_MS * 1.6 - 20);
    } finally {
      await unbounded.destroy();
    }
  });
});
