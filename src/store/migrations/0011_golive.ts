import type { Kysely } from 'kysely';

/**
 * Issue 11, path to live: a partner's request to take a sandbox application live, the provider's decision, and the
 * production application approval makes (its first key is collected once by the partner).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('golive_requests')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('application_id', 'varchar(40)', (c) =>
      c.notNull().references('applications.id').onDelete('cascade'),
    )
    .addColumn('account_id', 'varchar(40)', (c) => c.notNull())
    .addColumn('service_id', 'varchar(40)', (c) => c.notNull())
    // requested | approved | rejected | revoked | withdrawn
    .addColumn('state', 'varchar(20)', (c) => c.notNull())
    .addColumn('note', 'text', (c) => c.notNull())
    .addColumn('decision_comment', 'text', (c) => c.notNull())
    .addColumn('production_application_id', 'varchar(40)', (c) =>
      c.references('applications.id').onDelete('set null'),
    )
    .addColumn('requested_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('decided_at', 'varchar(32)')
    .addColumn('revoked_at', 'varchar(32)')
    .addColumn('key_collected_at', 'varchar(32)')
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('golive_requests_application')
    .on('golive_requests')
    .columns(['application_id', 'id'])
    .execute();
  await db.schema
    .createIndex('golive_requests_state')
    .on('golive_requests')
    .columns(['state', 'id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('golive_requests').execute();
}
