import type { Kysely } from 'kysely';

/**
 * Issue 12, item 9: end-user limits for a whole service, whatever the application's plan (3scale's end-user plan).
 * `services.end_user_key_source` / `end_user_key_name` say where the end user is named (a plan may name its own);
 * `service_end_user_limits` hold the limits. A plan's own end-user limit on the same metric and period wins.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('services')
    .addColumn('end_user_key_source', 'varchar(10)', (c) => c.notNull().defaultTo('header'))
    .execute();
  await db.schema
    .alterTable('services')
    .addColumn('end_user_key_name', 'varchar(100)', (c) => c.notNull().defaultTo(''))
    .execute();
  await db.schema
    .createTable('service_end_user_limits')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('service_id', 'varchar(40)', (c) => c.notNull().references('services.id').onDelete('cascade'))
    .addColumn('metric_id', 'varchar(40)', (c) => c.notNull().references('metrics.id').onDelete('cascade'))
    .addColumn('period', 'varchar(10)', (c) => c.notNull())
    .addColumn('value', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addUniqueConstraint('service_end_user_limits_unique', ['service_id', 'metric_id', 'period'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('service_end_user_limits').execute();
  await db.schema.alterTable('services').dropColumn('end_user_key_name').execute();
  await db.schema.alterTable('services').dropColumn('end_user_key_source').execute();
}
