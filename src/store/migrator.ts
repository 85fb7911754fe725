import { type Kysely, type Migration, type MigrationResultSet, Migrator } from 'kysely';
import * as m0001 from './migrations/0001_initial.js';
import * as m0002 from './migrations/0002_usage.js';
import * as m0003 from './migrations/0003_portal.js';
import * as m0004 from './migrations/0004_oauth.js';

/**
 * Every migration, by name, in order. Later issues add theirs here; names sort in the order they run.
 * Migrations are listed statically (not read from disk) so they work the same from source and from a bundle.
 */
export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_usage': m0002,
  '0003_portal': m0003,
  '0004_oauth': m0004,
};

/**
 * Brings the database to the latest schema. All pending migrations run in one transaction: if one fails,
 * none is applied and the error is thrown.
 */
export async function migrateToLatest<DB>(database: Kysely<DB>): Promise<string[]> {
  const db = database as unknown as Kysely<unknown>;
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'trellis_migrations',
    migrationLockTableName: 'trellis_migrations_lock',
  });
  const result: MigrationResultSet = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    const err = new Error(
      `Migration ${failed?.migrationName ?? '?'} failed; the database is unchanged: ${String(
        (result.error as Error).message ?? result.error,
      )}`,
    );
    err.cause = result.error;
    throw err;
  }
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
