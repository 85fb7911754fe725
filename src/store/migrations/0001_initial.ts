import type { Kysely } from 'kysely';
import { isPostgres } from '../dialect.js';

/** The first cut of the data model (see docs/architecture.md). */
export async function up(db: Kysely<unknown>): Promise<void> {
  const ts = 'varchar(32)';
  await db.schema
    .createTable('services')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('system_name', 'varchar(100)', (c) => c.notNull().unique())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('upstream_production', 'varchar(2000)', (c) => c.notNull())
    .addColumn('upstream_sandbox', 'varchar(2000)', (c) => c.notNull())
    .addColumn('auth_mode', 'varchar(20)', (c) => c.notNull())
    .addColumn('credentials_location', 'varchar(10)', (c) => c.notNull())
    .addColumn('user_key_name', 'varchar(100)', (c) => c.notNull())
    .addColumn('app_id_name', 'varchar(100)', (c) => c.notNull())
    .addColumn('app_key_name', 'varchar(100)', (c) => c.notNull())
    .addColumn('secret_token', 'varchar(500)')
    .addColumn('gateway_host', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('gateway_path_prefix', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('limiter_mode', 'varchar(10)', (c) => c.notNull().defaultTo('strict'))
    .addColumn('limiter_failure_mode', 'varchar(10)', (c) => c.notNull().defaultTo('open'))
    .addColumn('max_body_bytes', 'integer', (c) => c.notNull())
    .addColumn('openapi', 'text')
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('metrics')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('service_id', 'varchar(40)', (c) => c.notNull().references('services.id').onDelete('cascade'))
    .addColumn('system_name', 'varchar(100)', (c) => c.notNull())
    .addColumn('friendly_name', 'varchar(200)', (c) => c.notNull())
    .addColumn('unit', 'varchar(50)', (c) => c.notNull().defaultTo('hit'))
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('parent_id', 'varchar(40)', (c) => c.references('metrics.id').onDelete('cascade'))
    .addColumn('created_at', ts, (c) => c.notNull())
    .addUniqueConstraint('metrics_service_system_name', ['service_id', 'system_name'])
    .execute();

  await db.schema
    .createTable('mapping_rules')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('service_id', 'varchar(40)', (c) => c.notNull().references('services.id').onDelete('cascade'))
    .addColumn('http_method', 'varchar(10)', (c) => c.notNull())
    .addColumn('pattern', 'varchar(1000)', (c) => c.notNull())
    .addColumn('metric_id', 'varchar(40)', (c) => c.notNull().references('metrics.id').onDelete('cascade'))
    .addColumn('delta', 'integer', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('last', 'integer', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('mapping_rules_service').on('mapping_rules').column('service_id').execute();

  await db.schema
    .createTable('plans')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('service_id', 'varchar(40)', (c) => c.notNull().references('services.id').onDelete('cascade'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('system_name', 'varchar(100)', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('state', 'varchar(20)', (c) => c.notNull())
    .addColumn('approval_required', 'integer', (c) => c.notNull())
    .addColumn('is_default', 'integer', (c) => c.notNull())
    .addColumn('trial_days', 'integer', (c) => c.notNull())
    .addColumn('end_user_key_source', 'varchar(10)', (c) => c.notNull().defaultTo('header'))
    .addColumn('end_user_key_name', 'varchar(100)', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addUniqueConstraint('plans_service_system_name', ['service_id', 'system_name'])
    .execute();

  await db.schema
    .createTable('plan_limits')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('plan_id', 'varchar(40)', (c) => c.notNull().references('plans.id').onDelete('cascade'))
    .addColumn('metric_id', 'varchar(40)', (c) => c.notNull().references('metrics.id').onDelete('cascade'))
    .addColumn('period', 'varchar(10)', (c) => c.notNull())
    .addColumn('value', 'bigint', (c) => c.notNull())
    .addColumn('scope', 'varchar(20)', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addUniqueConstraint('plan_limits_unique', ['plan_id', 'metric_id', 'period', 'scope'])
    .execute();

  await db.schema
    .createTable('plan_disabled_metrics')
    .addColumn('plan_id', 'varchar(40)', (c) => c.notNull().references('plans.id').onDelete('cascade'))
    .addColumn('metric_id', 'varchar(40)', (c) => c.notNull().references('metrics.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('plan_disabled_metrics_pk', ['plan_id', 'metric_id'])
    .execute();

  await db.schema
    .createTable('accounts')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('state', 'varchar(20)', (c) => c.notNull())
    .addColumn('custom_fields', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('users')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('account_id', 'varchar(40)', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('email', 'varchar(320)', (c) => c.notNull().unique())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('role', 'varchar(20)', (c) => c.notNull())
    .addColumn('password_hash', 'varchar(200)')
    .addColumn('custom_fields', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('users_account').on('users').column('account_id').execute();

  await db.schema
    .createTable('invitations')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('account_id', 'varchar(40)', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('email', 'varchar(320)', (c) => c.notNull())
    .addColumn('role', 'varchar(20)', (c) => c.notNull())
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .addColumn('accepted_at', ts)
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('applications')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('account_id', 'varchar(40)', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('service_id', 'varchar(40)', (c) => c.notNull().references('services.id').onDelete('cascade'))
    .addColumn('plan_id', 'varchar(40)', (c) => c.notNull().references('plans.id'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('state', 'varchar(20)', (c) => c.notNull())
    .addColumn('environment', 'varchar(20)', (c) => c.notNull())
    .addColumn('app_id', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('allowed_ips', 'text', (c) => c.notNull())
    .addColumn('custom_fields', 'text', (c) => c.notNull())
    .addColumn('requested_plan_id', 'varchar(40)')
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('applications_account').on('applications').column('account_id').execute();
  await db.schema.createIndex('applications_service').on('applications').column('service_id').execute();

  await db.schema
    .createTable('credentials')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('application_id', 'varchar(40)', (c) =>
      c.notNull().references('applications.id').onDelete('cascade'),
    )
    .addColumn('kind', 'varchar(20)', (c) => c.notNull())
    .addColumn('secret_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('display_prefix', 'varchar(40)', (c) => c.notNull())
    .addColumn('state', 'varchar(20)', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('revoked_at', ts)
    .execute();
  await db.schema.createIndex('credentials_application').on('credentials').column('application_id').execute();

  await db.schema
    .createTable('custom_fields')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('target', 'varchar(20)', (c) => c.notNull())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('label', 'varchar(200)', (c) => c.notNull())
    .addColumn('required', 'integer', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addUniqueConstraint('custom_fields_target_name', ['target', 'name'])
    .execute();

  await db.schema
    .createTable('admin_users')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('email', 'varchar(320)', (c) => c.notNull().unique())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('password_hash', 'varchar(200)', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('admin_tokens')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('scope', 'varchar(20)', (c) => c.notNull())
    .addColumn('secret_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('display_prefix', 'varchar(40)', (c) => c.notNull())
    .addColumn('admin_user_id', 'varchar(40)', (c) => c.references('admin_users.id').onDelete('cascade'))
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('last_used_at', ts)
    .addColumn('revoked_at', ts)
    .execute();

  await db.schema
    .createTable('settings')
    .addColumn('key', 'varchar(100)', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('at', ts, (c) => c.notNull())
    .addColumn('actor_type', 'varchar(20)', (c) => c.notNull())
    .addColumn('actor_id', 'varchar(40)')
    .addColumn('action', 'varchar(100)', (c) => c.notNull())
    .addColumn('entity_type', 'varchar(40)', (c) => c.notNull())
    .addColumn('entity_id', 'varchar(40)', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('audit_log_entity')
    .on('audit_log')
    .columns(['entity_type', 'entity_id'])
    .execute();

  await db.schema
    .createTable('events')
    .addColumn('seq', 'integer', (c) =>
      isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
    )
    .addColumn('id', 'varchar(40)', (c) => c.notNull().unique())
    .addColumn('type', 'varchar(100)', (c) => c.notNull())
    .addColumn('occurred_at', ts, (c) => c.notNull())
    .addColumn('entity_type', 'varchar(40)', (c) => c.notNull())
    .addColumn('entity_id', 'varchar(40)', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('dispatched_at', ts)
    .execute();
  await db.schema.createIndex('events_pending').on('events').columns(['dispatched_at', 'seq']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'events',
    'audit_log',
    'settings',
    'admin_tokens',
    'admin_users',
    'custom_fields',
    'credentials',
    'applications',
    'invitations',
    'users',
    'accounts',
    'plan_disabled_metrics',
    'plan_limits',
    'plans',
    'mapping_rules',
    'metrics',
    'services',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
