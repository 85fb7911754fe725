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

class TrellisSqliteDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter();
  }
}

export type DialectName = 'sqlite' | 'postgres';

/** Builds the Kysely dialect for a `TRELLIS_DATABASE_URL`. */
export function dialectFor(
  url: string,
  options: { poolSize?: number } = {},
): { dialect: Dialect; name: DialectName } {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    const inMemory = file === ':memory:' || file === '';
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
          return db;
        },
      }),
    };
  }
  return {
    name: 'postgres',
    dialect: new PostgresDialect({
      pool: new pg.Pool({
        connectionString: url,
        max: options.poolSize ?? 10,
        connectionTimeoutMillis: 5000,
      }),
    }),
  };
}

/** Whether a Kysely instance talks to PostgreSQL (the few places SQL differs ask this). */
export function isPostgres(db: Kysely<unknown> | { getExecutor(): { adapter: DialectAdapter } }): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

export type { DatabaseConnection };
