import { Kysely, type Transaction } from 'kysely';
import { type DialectName, dialectFor } from './dialect.js';
import type { Database } from './schema.js';

export * from './schema.js';
export { migrateToLatest, migrations } from './migrator.js';
export { isPostgres, type DialectName } from './dialect.js';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Either the database or a transaction: store functions accept both, so callers decide the transaction. */
export type Executor = Db | Tx;

export interface Store {
  db: Db;
  dialect: DialectName;
  destroy(): Promise<void>;
}

/**
 * Opens the database named by a `TRELLIS_DATABASE_URL`.
 * @example const store = openStore('sqlite:./data/trellis.db')
 */
export function openStore(url: string, options: { poolSize?: number } = {}): Store {
  const { dialect, name } = dialectFor(url, options);
  const db = new Kysely<Database>({ dialect });
  return { db, dialect: name, destroy: () => db.destroy() };
}

/** True when an error from either driver is a unique-constraint violation. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e?.code === '23505' ||
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}

/** True when an error from either driver is a foreign-key violation. */
export function isForeignKeyViolation(err: unknown): boolean {
  const e = err as { code?: string };
  return e?.code === '23503' || e?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** One page of a list, newest last; `nextCursor` is passed back as `cursor` for the next page. */
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}

/** Turns `limit + 1` rows fetched in id order into a page. */
export function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, nextCursor: more ? (data[data.length - 1]?.id ?? null) : null };
}

export const flag = (b: boolean): number => (b ? 1 : 0);
