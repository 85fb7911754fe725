import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  type DatabaseConnection,
  type Dialect,
  type DialectAdapter,
  type Kysely,
  PostgresAdapter,
  PostgresDialect,
  SqliteAdapter,
  SqliteDialect,
} from 'kysely';
import pg from 'pg';

// PostgreSQL returns bigint (int8) and numeric as strings; every bigint Trellis stores fits in a double.
pg.types.setTypeParser(20, (v) => Number(v));

/**
 * SQLite runs DDL inside transactions perfectly well; Kysely's adapter just does not claim it. Claiming it makes
 * the migrator wrap a batch of migrations in one transaction, so a failing migration leaves the database as it was.
 */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/** Prepared statements a SQLite connection keeps, by SQL text (the least recently used goes first). */
const STATEMENT_CACHE_SIZE = 256;

/**
 * The connection as Kysely's SQLite driver sees it, with its prepared statements kept by SQL text: the driver
 * prepares every query it runs, and parsing and planning a statement costs more than running a small one (the
 * usage flush's 400-row upserts took 0.3–0.6 µs per gateway request to prepare, docs/benchmarks.md). One query
 * runs at a time on the connection (the driver's mutex), so a kept statement is never busy when asked for again;
 * SQLite prepares a kept statement again by itself after a schema change.
 */
export function withStatementCache(db: SqliteDatabase.Database, size = STATEMENT_CACHE_SIZE) {
  const kept = new Map<string, SqliteDatabase.Statement>();
  return {
    prepare(text: string): SqliteDatabase.Statement {
      let statement = kept.get(text);
      if (statement !== undefined) {
        kept.delete(text);
      } else {
        statement = db.prepare(text);
        if (kept.size >= size) kept.delete(kept.keys().next().value!);
      }
      kept.set(text, statement);
      return statement;
    },
    close(): void {
      kept.clear();
      db.close();
    },
  };
}

class TrellisSqliteDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter();
  }
}

export type DialectName = 'sqlite' | 'postgres';

/** Where the store reports connection trouble; pino's logger (what the CLI passes) satisfies it. */
export interface StoreLogger {
  warn(data: object, message?: string): void;
}

export interface StoreOptions {
  poolSize?: number;
  /** Lost connections are reported here (at most one line every 5 s); default JSON lines on stderr. */
  logger?: StoreLogger;
}

const stderrLogger: StoreLogger = {
  warn: (data, message) =>
    process.stderr.write(`${JSON.stringify({ level: 'warn', time: Date.now(), msg: message, ...data })}\n`),
};

/**
 * A connection the server closed (`pg_terminate_backend`, a restart, a network cut) makes its pg client emit
 * `'error'`; without a listener that event kills the process. Every client gets this listener when it connects
 * (idle or checked out, whichever it is when the connection dies), so a lost connection is a log line: the pool
 * drops the client and opens a new one on the next query, and the query that was running fails on its own.
 */
function connectionErrorReporter(logger: StoreLogger): (err: Error) => void {
  let lastAt = 0;
  let suppressed = 0;
  return (err) => {
    const now = Date.now();
    if (now - lastAt < 5000) {
      suppressed++;
      return;
    }
    const code = (err as { code?: unknown }).code;
    logger.warn(
      {
        err: { message: err.message, ...(typeof code === 'string' && { code }) },
        ...(suppressed > 0 && { alsoLost: suppressed }),
      },
      'store: a database connection was lost; the pool opens a new one on the next query',
    );
    lastAt = now;
    suppressed = 0;
  };
}

/** The file of a `sqlite:` URL; '' for an in-memory database, null for any other URL. */
export function sqliteFile(url: string): string | null {
  if (!url.startsWith('sqlite:')) return null;
  const file = url.slice('sqlite:'.length);
  return file === ':memory:' ? '' : file;
}

/** Builds the Kysely dialect for a `TRELLIS_DATABASE_URL`. */
export function dialectFor(url: string, options: StoreOptions = {}): { dialect: Dialect; name: DialectName } {
  const file = sqliteFile(url);
  if (file !== null) {
    const inMemory = file === '';
    if (!inMemory) mkdirSync(dirname(file), { recursive: true });
    return {
      name: 'sqlite',
      dialect: new TrellisSqliteDialect({
        database: async () => {
          const db = new SqliteDatabase(inMemory ? ':memory:' : file);
          db.pragma('journal_mode = WAL');
          db.pragma('foreign_keys = ON');
          db.pragma('busy_timeout = 5000');
          db.pragma('synchronous = NORMAL');
          return withStatementCache(db);
        },
      }),
    };
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5000,
  });
  const report = connectionErrorReporter(options.logger ?? stderrLogger);
  pool.on('connect', (client) => client.on('error', report));
  // the pool re-emits an idle client's error after removing the client; the client's listener reported it
  pool.on('error', () => {});
  return { name: 'postgres', dialect: new PostgresDialect({ pool }) };
}

/** Whether a Kysely instance talks to PostgreSQL (the few places SQL differs ask this). */
export function isPostgres(db: Kysely<unknown> | { getExecutor(): { adapter: DialectAdapter } }): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

export type { DatabaseConnection };
