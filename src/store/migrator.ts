import { type Kysely, type Migration, type MigrationResultSet, Migrator } from 'kysely';
import * as m0001 from './migrations/0001_initial.js';
import * as m0002 from './migrations/0002_usage.js';
import * as m0003 from './migrations/0003_portal.js';
import * as m0004 from './migrations/0004_oauth.js';
import * as m0005 from './migrations/0005_oauth_kid.js';
import * as m0006 from './migrations/0006_gateway_hardening.js';
import * as m0007 from './migrations/0007_programmes.js';
import * as m0008 from './migrations/0008_insights.js';
import * as m0009 from './migrations/0009_webhooks.js';
import * as m0010 from './migrations/0010_service_end_user_limits.js';
import * as m0011 from './migrations/0011_golive.js';
import * as m0012 from './migrations/0012_service_portal_state.js';
import * as m0013 from './migrations/0013_insight_open_key.js';
import * as m0014 from './migrations/0014_credential_last_used.js';
import * as m0015 from './migrations/0015_certification.js';
import * as m0017 from './migrations/0017_consumer_webhooks.js';
import * as m0018 from './migrations/0018_webhook_rates.js';
import * as m0019 from './migrations/0019_portal_brand.js';
import * as m0020 from './migrations/0020_job_rounds.js';
import * as m0021 from './migrations/0021_usage_journal.js';
import * as m0022 from './migrations/0022_unique_mapping_rules.js';

/**
 * Every migration, by name, in order. Later issues add theirs here; names sort in the order they run.
 * Migrations are listed statically (not read from disk) so they work the same from source and from a bundle.
 */
export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_usage': m0002,
  '0003_portal': m0003,
  '0004_oauth': m0004,
  '0005_oauth_kid': m0005,
  '0006_gateway_hardening': m0006,
  '0007_programmes': m0007,
  '0008_insights': m0008,
  '0009_webhooks': m0009,
  '0010_service_end_user_limits': m0010,
  '0011_golive': m0011,
  '0012_service_portal_state': m0012,
  '0013_insight_open_key': m0013,
  '0014_credential_last_used': m0014,
  '0015_certification': m0015,
  '0017_consumer_webhooks': m0017,
  '0018_webhook_rates': m0018,
  '0019_portal_brand': m0019,
  '0020_job_rounds': m0020,
  '0021_usage_journal': m0021,
  '0022_unique_mapping_rules': m0022,
};

function migratorOf(database: Kysely<unknown>): Migrator {
  return new Migrator({
    db: database,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'trellis_migrations',
    migrationLockTableName: 'trellis_migrations_lock',
  });
}

/** The names of the migrations applied, or the error of the one that failed (none of the batch is then applied). */
function outcomeOf(result: MigrationResultSet): string[] {
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

/**
 * Brings the database to the latest schema. All pending migrations run in one transaction: if one fails,
 * none is applied and the error is thrown.
 */
export async function migrateToLatest<DB>(database: Kysely<DB>): Promise<string[]> {
  return outcomeOf(await migratorOf(database as unknown as Kysely<unknown>).migrateToLatest());
}

/**
 * Brings the database up to migration `name`, included, and no further: a test of a migration that rewrites data
 * writes the data the migration finds at the schema before it.
 * @example await migrateTo(store.db, '0021_usage_journal')
 */
export async function migrateTo<DB>(database: Kysely<DB>, name: string): Promise<string[]> {
  if (!(name in migrations)) throw new Error(`No migration ${name}`);
  return outcomeOf(await migratorOf(database as unknown as Kysely<unknown>).migrateTo(name));
}
