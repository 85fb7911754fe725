/**
 * Real databases for tests: every store test runs on SQLite and on PostgreSQL. Each call gets a database of its
 * own (a fresh in-memory SQLite, or a freshly created PostgreSQL database dropped afterwards), so tests never
 * share tenants.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type DialectName, type Store, migrateToLatest, openStore } from '../../src/store/index.js';

export const dialects: DialectName[] = ['sqlite', 'postgres'];

/** The server test databases are created on (PostgreSQL on this machine by default). */
export const postgresAdminUrl =
  process.env.TRELLIS_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestStore extends Store {
  url: string;
  /** Closes the store and drops its database. */
  cleanup(): Promise<void>;
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresAdminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Drops a test database once its connections are gone. A pool's sockets may still be closing when the test
 * ends; killing them (`with (force)`) makes the server send them a FATAL that surfaces as an unhandled error, so
 * force is only the last resort after a bounded wait.
 */
async function dropDatabase(name: string): Promise<void> {
  for (let attempt = 0; attempt < 30; attempt++) {
    try {
      await adminQuery(`drop database if exists ${name}`);
      return;
    } catch (err) {
      // 55006: the database is being accessed by other users
      if ((err as { code?: string }).code !== '55006') throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await adminQuery(`drop database if exists ${name} with (force)`);
}

/** A database URL of its own, empty (not migrated). */
export async function freshDatabaseUrl(
  dialect: DialectName,
): Promise<{ url: string; drop(): Promise<void> }> {
  if (dialect === 'sqlite') return { url: 'sqlite::memory:', drop: async () => {} };
  const name = `trellis_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => dropDatabase(name) };
}

/** A migrated store of its own. */
export async function freshStore(dialect: DialectName): Promise<TestStore> {
  const { url, drop } = await freshDatabaseUrl(dialect);
  const store = openStore(url, { poolSize: 5 });
  await migrateToLatest(store.db);
  return {
    ...store,
    url,
    cleanup: async () => {
      await store.destroy();
      await drop();
    },
  };
}
