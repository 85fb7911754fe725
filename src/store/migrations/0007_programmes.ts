import { type Kysely, sql } from 'kysely';

/**
 * Issue 12 (the partner and customer programmes):
 * - `metrics.kind` (`metric` or `method`): the hierarchy is explicit, a metric may count on hits (a child, like every
 *   method) or stand alone, so the kind no longer follows from `parent_id`;
 * - `custom_fields.choices` (a JSON array of strings; empty text: free text) and `custom_fields.position` (forms list
 *   built-in and custom fields by position).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('metrics')
    .addColumn('kind', 'text', (c) => c.notNull().defaultTo('metric'))
    .execute();
  await sql`update metrics set kind = 'method' where parent_id is not null`.execute(db);
  await db.schema
    .alterTable('custom_fields')
    .addColumn('choices', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
  await db.schema
    .alterTable('custom_fields')
    .addColumn('position', 'integer', (c) => c.notNull().defaultTo(1000))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('custom_fields').dropColumn('position').execute();
  await db.schema.alterTable('custom_fields').dropColumn('choices').execute();
  await db.schema.alterTable('metrics').dropColumn('kind').execute();
}
