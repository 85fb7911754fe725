import type { Kysely } from 'kysely';

/**
 * Issue 13: a service is a draft, invisible in the portal, until the provider publishes it (and it has a published
 * plan). Services that exist already stay published; the console creates new ones as drafts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('services')
    .addColumn('portal_state', 'varchar(10)', (c) => c.notNull().defaultTo('published'))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('services').dropColumn('portal_state').execute();
}
