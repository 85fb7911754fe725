import type { Kysely } from 'kysely';

/**
 * Issue 13, the provider's portal and brand: the e-mail templates the provider edits (a row only for a template
 * changed from its default), content pages written in Markdown, and the partner showcase ("success stories").
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('mail_templates')
    .addColumn('key', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('content_pages')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    // `index` is the front page; any other slug is shown at /pages/<slug>
    .addColumn('slug', 'varchar(100)', (c) => c.notNull().unique())
    .addColumn('title', 'varchar(200)', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    // everyone | developers | plans
    .addColumn('visibility', 'varchar(20)', (c) => c.notNull())
    // JSON array of plan ids (visibility `plans`)
    .addColumn('plan_ids', 'text', (c) => c.notNull())
    .addColumn('in_navigation', 'integer', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('showcase_entries')
    .addColumn('application_id', 'varchar(40)', (c) =>
      c.primaryKey().references('applications.id').onDelete('cascade'),
    )
    // the partner's consent, ticked in the portal; without it nothing is shown whatever the provider marks
    .addColumn('consent', 'integer', (c) => c.notNull())
    .addColumn('consent_at', 'varchar(32)')
    .addColumn('featured', 'integer', (c) => c.notNull())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('logo_url', 'varchar(2000)', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('link_url', 'varchar(2000)', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('showcase_entries').execute();
  await db.schema.dropTable('content_pages').execute();
  await db.schema.dropTable('mail_templates').execute();
}
