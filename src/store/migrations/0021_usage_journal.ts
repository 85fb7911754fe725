import type { Kysely } from 'kysely';
import { isPostgres } from '../dialect.js';

/**
 * The usage journal (src/usage/usage-journal.ts): each gateway flush appends its sums as one row, and a later
 * compaction moves the rows into the usage tables and deletes them in one transaction. A flush costs one insert
 * instead of an upsert per application and metric, and the usage tables are written every few seconds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('usage_journal')
    .addColumn('seq', isPostgres(db) ? 'bigint' : 'integer', (c) =>
      isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
    )
    .addColumn('written_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('usage_journal').execute();
}
