import type { Kysely } from 'kysely';

/**
 * Issue 10: periodic jobs of the worker role (the insight detectors and quota alerts) run once per round however
 * many workers share the database. A worker claims a round by moving its job's row forward to the round's start
 * (insert, or update where the stored round is older): of several claims of one round, exactly one changes a row.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('job_rounds')
    .addColumn('job', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('round_start', 'varchar(32)', (c) => c.notNull())
    .addColumn('holder', 'varchar(100)', (c) => c.notNull())
    .addColumn('claimed_at', 'varchar(32)', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('job_rounds').execute();
}
