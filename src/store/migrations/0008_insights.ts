import type { Kysely } from 'kysely';

/**
 * Issue 10 (insights):
 * - `usage_route_calls`: calls per minute, application, route (mapping rule), status class and latency bucket,
 *   written aggregated by the usage recorder's flush (additive upserts like the other usage tables);
 * - `usage_call_patterns`: counted call patterns per minute (reads after a create by lag, calls before Retry-After);
 * - `insight_findings`: what the detectors found, open / acknowledged / resolved;
 * - `insight_settings`: thresholds per service (JSON text; absent keys take the defaults);
 * - `quota_alerts`: the quota levels already announced, one row per application, limit, window and level.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const ts = 'varchar(32)';
  const id = 'varchar(40)';
  await db.schema
    .createTable('usage_route_calls')
    .addColumn('bucket', ts, (c) => c.notNull())
    .addColumn('service_id', id, (c) => c.notNull())
    .addColumn('application_id', id, (c) => c.notNull())
    .addColumn('route', id, (c) => c.notNull())
    .addColumn('status_class', 'varchar(8)', (c) => c.notNull())
    .addColumn('latency_bucket', 'integer', (c) => c.notNull())
    .addColumn('calls', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_route_calls_pk', [
      'application_id',
      'bucket',
      'service_id',
      'route',
      'status_class',
      'latency_bucket',
    ])
    .execute();
  await db.schema
    .createIndex('usage_route_calls_service')
    .on('usage_route_calls')
    .columns(['service_id', 'bucket'])
    .execute();
  await db.schema
    .createTable('usage_call_patterns')
    .addColumn('bucket', ts, (c) => c.notNull())
    .addColumn('service_id', id, (c) => c.notNull())
    .addColumn('application_id', id, (c) => c.notNull())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('route', id, (c) => c.notNull())
    .addColumn('prior_route', id, (c) => c.notNull())
    .addColumn('lag', 'integer', (c) => c.notNull())
    .addColumn('calls', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_call_patterns_pk', [
      'application_id',
      'bucket',
      'service_id',
      'kind',
      'route',
      'prior_route',
      'lag',
    ])
    .execute();
  await db.schema
    .createIndex('usage_call_patterns_service')
    .on('usage_call_patterns')
    .columns(['service_id', 'bucket'])
    .execute();
  await db.schema
    .createTable('insight_findings')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('service_id', id, (c) => c.notNull())
    .addColumn('application_id', id, (c) => c.notNull())
    .addColumn('account_id', id, (c) => c.notNull())
    .addColumn('kind', 'varchar(32)', (c) => c.notNull())
    .addColumn('subject', 'varchar(200)', (c) => c.notNull())
    .addColumn('severity', 'varchar(16)', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('first_seen', ts, (c) => c.notNull())
    .addColumn('last_seen', ts, (c) => c.notNull())
    .addColumn('resolved_at', ts)
    .addColumn('evidence', 'text', (c) => c.notNull())
    .addColumn('advice', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('insight_findings_application')
    .on('insight_findings')
    .columns(['application_id', 'state', 'kind'])
    .execute();
  await db.schema
    .createIndex('insight_findings_service')
    .on('insight_findings')
    .columns(['service_id', 'state'])
    .execute();
  await db.schema
    .createTable('insight_settings')
    .addColumn('service_id', id, (c) => c.primaryKey())
    .addColumn('settings', 'text', (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('quota_alerts')
    .addColumn('application_id', id, (c) => c.notNull())
    .addColumn('limit_id', id, (c) => c.notNull())
    .addColumn('window_start', ts, (c) => c.notNull())
    .addColumn('level', 'integer', (c) => c.notNull())
    .addColumn('used', 'bigint', (c) => c.notNull())
    .addColumn('limit_value', 'bigint', (c) => c.notNull())
    .addColumn('announced_at', ts, (c) => c.notNull())
    .addPrimaryKeyConstraint('quota_alerts_pk', ['application_id', 'limit_id', 'window_start', 'level'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'quota_alerts',
    'insight_settings',
    'insight_findings',
    'usage_call_patterns',
    'usage_route_calls',
  ]) {
    await db.schema.dropTable(t).execute();
  }
}
