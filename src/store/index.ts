import { Kysely, type Transaction } from 'kysely';
import { type DialectName, type StoreOptions, dialectFor } from './dialect.js';
import type { Database } from './schema.js';

export * from './schema.js';
export { migrateTo, migrateToLatest, migrations } from './migrator.js';
export {
  isPostgres,
  sqliteFile,
  withStatementCache,
  type DialectName,
  type StoreLogger,
  type StoreOptions,
} from './dialect.js';
export { lockKey, lockRow } from './row-lock.js';
export { deleteRow } from './row-delete.js';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Either the database or a transaction: store functions accept both, so callers decide the transaction. */
export type Executor = Db | Tx;

export interface Store {
  db: Db;
  dialect: DialectName;
  /** The `TRELLIS_DATABASE_URL` it was opened with. */
  url: string;
  destroy(): Promise<void>;
}

/**
 * Opens the database named by a `TRELLIS_DATABASE_URL`.
 * @example const store = openStore('sqlite:./data/trellis.db')
 */
export function openStore(url: string, options: StoreOptions = {}): Store {
  const { dialect, name } = dialectFor(url, options);
  const db = new Kysely<Database>({ dialect });
  return { db, dialect: name, url, destroy: () => db.destroy() };
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

/** Socket errors of a connection that could not be made or was cut. */
const connectionErrnos = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** What pg says, without a code, when a connection dies or cannot be had in time. */
const connectionMessages =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|Client was closed/i;

/**
 * True when an error means the database cannot be reached right now (not that the query was wrong): PostgreSQL
 * connection exceptions (class 08), the server shutting down or starting (57P01–57P03), too many connections
 * (53300), and socket errors. Callers answer these with 503 and the client may retry.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300')
    return true;
  if (connectionErrnos.has(code)) return true;
  // a host name that resolves to several addresses fails with one error per address
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isDatabaseUnavailable)) return true;
  return typeof e.message === 'string' && code === '' && connectionMessages.test(e.message);
}

/**
 * `work`, or a rejection after `ms` that {@link isDatabaseUnavailable} recognises (code `ETIMEDOUT`): for callers
 * that must answer in bounded time when the database hangs (a frozen server, a network that drops packets), where
 * the driver would wait for TCP to give up. The query itself goes on; its answer is dropped.
 */
export function withDatabaseTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          Object.assign(new Error(`The database did not answer within ${ms} ms.`), { code: 'ETIMEDOUT' }),
        ),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
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
