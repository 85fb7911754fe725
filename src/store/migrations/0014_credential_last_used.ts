import type { Kysely } from 'kysely';

/**
 * Issue 13: "last used" on every key, so a partner knows when an old key is safe to revoke. Written by the usage
 * flush (the latest call of each key in the flushed interval), never per call.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('credentials').addColumn('last_used_at', 'varchar(32)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('credentials').dropColumn('last_used_at').execute();
}
