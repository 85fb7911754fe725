import type { Kysely } from 'kysely';

/**
 * Usage recorded by the gateway (see src/usage). Counts are written already aggregated: one row per bucket and
 * key, added to by every flush of every gateway (`INSERT … ON CONFLICT DO UPDATE SET value = value + excluded`).
 * Buckets are ISO 8601 UTC timestamps of the bucket's start, like every timestamp of the schema.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const ts = 'varchar(32)';
  const id = 'varchar(40)';
  await db.schema
    .createTable('usage_metric_counts')
    .addColumn('granularity', 'varchar(8)', (c) => c.notNull())
    .addColumn('bucket', ts, (c) => c.notNull())
    .addColumn('service_id', id, (c) => c.notNull())
    .addColumn('application_id', id, (c) => c.notNull())
    .addColumn('account_id', id, (c) => c.notNull())
    .addColumn('metric_id', id, (c) => c.notNull())
    .addColumn('value', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_metric_counts_pk', [
      'granularity',
      'application_id',
      'metric_id',
      'bucket',
    ])
    .execute();
  await db.schema
    .createIndex('usage_metric_counts_service')
    .on('usage_metric_counts')
    .columns(['granularity', 'service_id', 'bucket'])
    .execute();
  await db.schema
    .createIndex('usage_metric_counts_account')
    .on('usage_metric_counts')
    .columns(['granularity', 'account_id', 'bucket'])
    .execute();

  await db.schema
    .createTable('usage_calls')
    .addColumn('bucket', ts, (c) => c.notNull())
    .addColumn('service_id', id, (c) => c.notNull())
    .addColumn('application_id', id, (c) => c.notNull())
    .addColumn('account_id', id, (c) => c.notNull())
    .addColumn('end_user', 'varchar(200)', (c) => c.notNull())
    .addColumn('client_ip', 'varchar(64)', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('calls', 'bigint', (c) => c.notNull())
    .addColumn('latency_ms_sum', 'double precision', (c) => c.notNull())
    .addColumn('latency_ms_max', 'double precision', (c) => c.notNull())
    .addColumn('bytes_in', 'bigint', (c) => c.notNull())
    .addColumn('bytes_out', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_calls_pk', [
      'bucket',
      'service_id',
      'application_id',
      'end_user',
      'client_ip',
      'status',
    ])
    .execute();
  await db.schema
    .createIndex('usage_calls_service')
    .on('usage_calls')
    .columns(['service_id', 'bucket'])
    .execute();
  await db.schema
    .createIndex('usage_calls_application')
    .on('usage_calls')
    .columns(['application_id', 'bucket'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('usage_calls').ifExists().execute();
  await db.schema.dropTable('usage_metric_counts').ifExists().execute();
}
