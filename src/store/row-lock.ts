import { type Transaction, sql } from 'kysely';
import { isPostgres } from './dialect.js';

/**
 * Locks the row `id` of `table` until the transaction ends, so that a read-check-write in a transaction (count
 * the keys then add one, see that no request waits then insert one) is not raced by another process doing the
 * same. On PostgreSQL `SELECT … FOR UPDATE`: a second transaction waits here for the first to end, and the reads
 * it makes afterwards see what the first committed (READ COMMITTED takes a snapshot per statement). On SQLite a
 * no-op: a transaction holds the file's write lock from its start (`BEGIN IMMEDIATE`, dialect.ts), so one runs at a
 * time across processes and reads what the one before committed.
 * Lock before reading what the check depends on; a missing row is left to the caller's own read (not found).
 * @example await lockRow(tx, 'applications', id); const app = await getApplication(tx, id)
 */
export async function lockRow<DB>(tx: Transaction<DB>, table: keyof DB & string, id: string): Promise<void> {
  if (!isPostgres(tx)) return;
  await sql`select 1 from ${sql.table(table)} where id = ${id} for update`.execute(tx);
}

/**
 * Serialises the transactions that take the same `key` when they share no row to lock (the set of OAuth signing
 * keys, say): on PostgreSQL a transaction-scoped advisory lock, released at commit or rollback; on SQLite a no-op,
 * for the reason of {@link lockRow}.
 */
export async function lockKey<DB>(tx: Transaction<DB>, key: number): Promise<void> {
  if (!isPostgres(tx)) return;
  await sql`select pg_advisory_xact_lock(${key})`.execute(tx);
}
