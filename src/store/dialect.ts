import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresDialect,
  type PostgresCursor,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryResult,
  SqliteAdapter,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
  type TransactionSettings,
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

/**
 * How long a SQLite connection waits for the file's write lock (or a statement for a lock another connection
 * holds) before it fails with `SQLITE_BUSY`. Other processes and threads share the file: the usage writer thread,
 * the gateway workers of `--workers N`, `trellis apply` run beside `trellis start`.
 */
const SQLITE_BUSY_TIMEOUT_MS = 5000;

/**
 * Kysely's SQLite driver, but a transaction takes the file's write lock when it begins (`BEGIN IMMEDIATE`), waiting
 * for it up to {@link SQLITE_BUSY_TIMEOUT_MS}. Kysely begins DEFERRED: the transaction reads from a snapshot and
 * asks for the write lock at its first write, and if another connection wrote in between, or holds the lock then,
 * SQLite refuses at once (`SQLITE_BUSY_SNAPSHOT`, `SQLITE_BUSY`) without calling the busy handler: waiting could
 * not help a transaction whose reads may be out of date (https://www.sqlite.org/lang_transaction.html,
 * https://www.sqlite.org/c3ref/busy_handler.html). Every operation reads then writes in its transaction
 * (`runChange`), so processes making changes at once failed some of them (test/store/transactions.test.ts: 128 to
 * 261 of 450 in three runs). Begun IMMEDIATE, they queue for the lock instead, one writer at a time as SQLite has
 * anyway, and each reads what the one before committed (what `lockRow` leaves to SQLite).
 *
 * A transaction begun `read only` (`db.transaction().setAccessMode('read only')`) stays DEFERRED: a consistent
 * snapshot that blocks no writer. Queries outside a transaction are unaffected.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  // Kysely passes the settings; its SqliteDriver's declaration leaves them out
  override async beginTransaction(
    connection: DatabaseConnection,
    settings?: TransactionSettings,
  ): Promise<void> {
    const begin = settings?.accessMode === 'read only' ? 'begin' : 'begin immediate';
    await connection.executeQuery(CompiledQuery.raw(begin));
  }
}

class TrellisSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }

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
  /**
   * PostgreSQL: how long one query may wait for the server's answer, in milliseconds, before it fails (code
   * `ETIMEDOUT`, which `isDatabaseUnavailable` recognises) and its connection is closed; 0 waits for ever.
   * Default {@link DEFAULT_QUERY_TIMEOUT_MS} (`TRELLIS_DATABASE_QUERY_TIMEOUT_MS`).
   */
  queryTimeoutMs?: number;
}

/**
 * The default bound on one PostgreSQL query (`TRELLIS_DATABASE_QUERY_TIMEOUT_MS` declares the same): long enough
 * for the longest single statement Trellis runs in normal work (a compaction batch, a catalog export, a webhook
 * claim), short enough that the management API, the portal and the console answer a hanging database in bounded
 * time. Migrations that rewrite large tables may need more (or 0).
 */
export const DEFAULT_QUERY_TIMEOUT_MS = 10_000;

/** How long a new connection may take (TCP and PostgreSQL's start-up), and a wait for a free pooled one. */
const CONNECT_TIMEOUT_MS = 5000;

/** Idle time before the kernel starts probing a pooled connection whose host went away without a word. */
const KEEPALIVE_DELAY_MS = 5000;

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
function connectionErrorReporter(
  logger: StoreLogger,
  message = 'store: a database connection was lost; the pool opens a new one on the next query',
): (err: Error) => void {
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
      message,
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
          db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
          db.pragma('synchronous = NORMAL');
          return withStatementCache(db);
        },
      }),
    };
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // a host that vanished (a network cut, a failover) is noticed on idle connections too, not only when used
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  });
  const logger = options.logger ?? stderrLogger;
  const report = connectionErrorReporter(logger);
  pool.on('connect', (client) => client.on('error', report));
  // the pool re-emits an idle client's error after removing the client; the client's listener reported it
  pool.on('error', () => {});
  const timeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const bounded =
    timeoutMs > 0
      ? boundedPool(
          pool,
          timeoutMs,
          connectionErrorReporter(
            logger,
            `store: a query got no answer within ${timeoutMs} ms; its connection was closed`,
          ),
        )
      : pool;
  return { name: 'postgres', dialect: new PostgresDialect({ pool: bounded }) };
}

/**
 * The pool as Kysely sees it, with every query bounded in time. A hanging server (frozen, or a network that drops
 * packets) otherwise holds a query, and whoever waits for it, until TCP gives up: minutes.
 *
 * Why not pg's own `query_timeout`: it fails the query but leaves it active on the connection (pg 8.23,
 * `lib/client.js`), which goes back to the pool looking healthy, so the next query on it (the transaction's
 * `rollback` first) waits behind the stuck one (brianc/node-postgres#3729 describes it). Here a query with no answer in time fails with `ETIMEDOUT` and its connection is
 * closed at once: every later query on it (the `rollback`) fails at once with the same error, and the pool drops
 * it when it is released (pg-pool removes a client that is ending). The server, if it is alive, stops the
 * statement when it finds the connection gone.
 *
 * Why not `statement_timeout`: the server cannot time out what it never receives (a frozen host, a cut network),
 * and it is a start-up parameter connection poolers such as PgBouncer refuse.
 */
function boundedPool(pool: pg.Pool, timeoutMs: number, report: (err: Error) => void): PostgresPool {
  const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      const client = await pool.connect();
      let bounded = wrapped.get(client);
      if (bounded === undefined) {
        bounded = boundedClient(client, timeoutMs, report);
        wrapped.set(client, bounded);
      }
      return bounded;
    },
    end: () => pool.end(),
  };
}

function boundedClient(
  client: pg.PoolClient,
  timeoutMs: number,
  report: (err: Error) => void,
): PostgresPoolClient {
  /** Set once a query got no answer in time: the connection is closed and answers nothing more. */
  let closedBy: Error | undefined;
  function query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  function query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  function query<R>(
    what: string | PostgresCursor<R>,
    parameters: ReadonlyArray<unknown> = [],
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // streaming through a cursor (not configured in Trellis) reads in many round trips: not bounded here
    if (typeof what !== 'string')
      return client.query(what as unknown as pg.Submittable) as unknown as PostgresCursor<R>;
    if (closedBy !== undefined) return Promise.reject(closedBy);
    return new Promise<PostgresQueryResult<R>>((resolve, reject) => {
      const timer = setTimeout(() => {
        closedBy = queryTimeoutError(timeoutMs);
        reject(closedBy);
        report(closedBy);
        // ending a client with a query in flight destroys its socket; a late answer goes nowhere
        client.end().catch(() => {});
      }, timeoutMs);
      client.query(what, [...parameters]).then(
        (result) => {
          clearTimeout(timer);
          resolve(result as unknown as PostgresQueryResult<R>);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }
  return {
    query,
    // pg-pool sets `release` on the client at every checkout: look it up when called
    release: () => client.release(closedBy),
  };
}

/** What a query that got no answer in time fails with; `isDatabaseUnavailable` knows the code. */
function queryTimeoutError(ms: number): Error {
  return Object.assign(new Error(`The database did not answer within ${ms} ms; the connection was closed.`), {
    code: 'ETIMEDOUT',
  });
}

/** Whether a Kysely instance talks to PostgreSQL (the few places SQL differs ask this). */
export function isPostgres(db: Kysely<unknown> | { getExecutor(): { adapter: DialectAdapter } }): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

export type { DatabaseConnection };
