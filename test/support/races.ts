/**
 * Races for tests of changes made at once, as by several control processes on one database: calls sent together
 * (on PostgreSQL each gets a connection of the pool, freshStore's five, so their transactions overlap), and on
 * PostgreSQL a row (or the outbox's lock) held from outside so that transactions line up behind it in a chosen
 * order.
 */
import { sql } from 'kysely';
import pg from 'pg';
import { OUTBOX_LOCK_KEY } from '../../src/events/index.js';
import { TrellisError } from '../../src/kernel/index.js';
import type { Store } from '../../src/store/index.js';

export interface AtOnce<T> {
  /** The values of the calls that succeeded. */
  ok: T[];
  /** The error code of each call that failed (the message of an error that is not a TrellisError). */
  refused: string[];
}

/** Runs the operations at once and sorts their outcomes. */
export async function atOnce<T>(operations: (() => Promise<T>)[]): Promise<AtOnce<T>> {
  const settled = await Promise.allSettled(operations.map((operation) => operation()));
  const ok: T[] = [];
  const refused: string[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') ok.push(s.value);
    else refused.push(s.reason instanceof TrellisError ? s.reason.code : String(s.reason));
  }
  return { ok, refused };
}

/** `n` copies of one operation, for {@link atOnce}. */
export const times = <T>(n: number, operation: () => Promise<T>): (() => Promise<T>)[] =>
  Array.from({ length: n }, () => operation);

/**
 * Opens `connections` connections of a PostgreSQL pool before a test sends its calls at once: a pool opens its
 * connections lazily, and the first call could commit before the others are connected (nothing overlaps then).
 * Nothing to do on SQLite.
 */
export async function warmPool(store: Store, connections = 5): Promise<void> {
  if (store.dialect !== 'postgres') return;
  await Promise.all(Array.from({ length: connections }, () => sql`select pg_sleep(0.05)`.execute(store.db)));
}

export interface Held {
  /** Resolves once `n` transactions of the database wait for a lock (bounded: throws after 5 s). */
  waitForWaiters(n: number): Promise<void>;
  /** Ends the transaction holding the lock: the waiters go on, the first in line first. */
  release(): Promise<void>;
}

/** A transaction of a connection of its own, begun and holding what `take` locks, until {@link Held.release}. */
async function hold(store: Store, take: (client: pg.Client) => Promise<unknown>): Promise<Held> {
  const client = new pg.Client({ connectionString: store.url });
  await client.connect();
  await client.query('begin');
  await take(client);
  return {
    async waitForWaiters(n) {
      for (let attempt = 0; attempt < 500; attempt++) {
        // PostgreSQL keeps the backends' status a transaction first read until that transaction ends: without
        // clearing it, every poll would count the waiters of the first one (and never see those that came later)
        await client.query('select pg_stat_clear_snapshot()');
        const { rows } = await client.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'`,
        );
        if ((rows[0]?.n ?? 0) >= n) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`no ${n} transactions waited for a lock within 5 s`);
    },
    async release() {
      try {
        await client.query('commit');
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * PostgreSQL only: locks one row from a connection of its own, so a test can line up transactions behind it in a
 * chosen order (a write to the row waits; a plain read does not) and then let them go at once. This makes an
 * interleaving that two processes meet by chance happen on every run.
 */
export async function holdRow(store: Store, table: string, id: string): Promise<Held> {
  return hold(store, (client) => client.query(`select 1 from ${table} where id = $1 for update`, [id]));
}

/**
 * PostgreSQL only: takes, from a connection of its own, the advisory lock every change takes just before it
 * writes its events (`OUTBOX_LOCK_KEY`, see `recordChanges`), so each `runChange` transaction stops at its end:
 * its reads, checks and writes made, nothing committed. This lines up writers that share no row to hold (inserts
 * of a key not there yet, checks over other rows), as {@link holdRow} lines up the writers of one row.
 */
export async function holdOutbox(store: Store): Promise<Held> {
  return hold(store, (client) => client.query('select pg_advisory_xact_lock($1)', [OUTBOX_LOCK_KEY]));
}

/** {@link atOnce} on SQLite; on PostgreSQL, the operations lined up behind what `take` holds, then let go. */
async function linedUp<T>(
  store: Store,
  take: () => Promise<Held>,
  operations: (() => Promise<T>)[],
): Promise<AtOnce<T>> {
  if (store.dialect !== 'postgres') return atOnce(operations);
  const held = await take();
  const outcome = atOnce(operations);
  try {
    await held.waitForWaiters(operations.length);
  } finally {
    await held.release();
  }
  return outcome;
}

/**
 * {@link atOnce}, with every operation's transaction overlapping the others on PostgreSQL: the row is held from
 * outside until all `operations` wait for a lock, then let go, so each has made the reads it makes before its
 * first write (or its row lock) while none had committed. SQLite runs them as {@link atOnce} does.
 * @example await linedUpAtOnce(store, 'applications', app.id, [() => patchA(), () => patchB()])
 */
export async function linedUpAtOnce<T>(
  store: Store,
  table: string,
  id: string,
  operations: (() => Promise<T>)[],
): Promise<AtOnce<T>> {
  return linedUp(store, () => holdRow(store, table, id), operations);
}

/**
 * {@link atOnce}, with every operation's change stopped at its end on PostgreSQL ({@link holdOutbox}) until all
 * of them wait for a lock, then let go: each has made its reads, its checks and its writes before any commits,
 * or waits for a lock taken on the way (a row another has written, a key another has inserted). SQLite runs them
 * as {@link atOnce} does.
 * @example await linedUpAtCommit(store, [() => demote(alice), () => demote(bob)])
 */
export async function linedUpAtCommit<T>(store: Store, operations: (() => Promise<T>)[]): Promise<AtOnce<T>> {
  return linedUp(store, () => holdOutbox(store), operations);
}
