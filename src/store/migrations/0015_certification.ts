import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../dialect.js';

/**
 * Issue 11, certification: a plan per service (automated checks, injected faults, manual items), the runs a
 * partner starts on a sandbox application (a copy of the plan, the results with their evidence), and the evidence
 * images a partner uploads for the manual items with the provider's review.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('certification_plans')
    .addColumn('service_id', 'varchar(40)', (c) =>
      c.primaryKey().references('services.id').onDelete('cascade'),
    )
    .addColumn('plan', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_by', 'varchar(255)', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('certification_runs')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('application_id', 'varchar(40)', (c) =>
      c.notNull().references('applications.id').onDelete('cascade'),
    )
    .addColumn('service_id', 'varchar(40)', (c) => c.notNull())
    .addColumn('account_id', 'varchar(40)', (c) => c.notNull())
    // running | passed | failed | cancelled
    .addColumn('state', 'varchar(20)', (c) => c.notNull())
    .addColumn('plan', 'text', (c) => c.notNull())
    .addColumn('started_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('ends_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('finished_at', 'varchar(32)')
    .addColumn('results', 'text', (c) => c.notNull())
    .addColumn('started_by', 'varchar(255)', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('certification_runs_application')
    .on('certification_runs')
    .columns(['application_id', 'id'])
    .execute();
  // one running run per application, even when two starts race
  await sql`create unique index certification_runs_one_running on certification_runs (application_id) where state = 'running'`.execute(
    db,
  );
  await db.schema
    .createIndex('certification_runs_state')
    .on('certification_runs')
    .columns(['state', 'id'])
    .execute();
  await db.schema
    .createTable('certification_evidence')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('run_id', 'varchar(40)', (c) =>
      c.notNull().references('certification_runs.id').onDelete('cascade'),
    )
    .addColumn('item_key', 'varchar(64)', (c) => c.notNull())
    .addColumn('content_type', 'varchar(40)', (c) => c.notNull())
    .addColumn('bytes', isPostgres(db) ? 'bytea' : 'blob', (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('uploaded_by', 'varchar(255)', (c) => c.notNull())
    .addColumn('uploaded_at', 'varchar(32)', (c) => c.notNull())
    // pending | accepted | rejected
    .addColumn('review_state', 'varchar(20)', (c) => c.notNull())
    .addColumn('review_comment', 'text', (c) => c.notNull())
    .addColumn('reviewed_by', 'varchar(255)')
    .addColumn('reviewed_at', 'varchar(32)')
    .execute();
  await db.schema
    .createIndex('certification_evidence_run_item')
    .on('certification_evidence')
    .columns(['run_id', 'item_key', 'id'])
    .execute();
  // what the gateway saw of a run's calls, written by the usage flush in batches (never per call)
  await db.schema
    .createTable('certification_calls')
    .addColumn('id', 'integer', (c) =>
      isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
    )
    .addColumn('run_id', 'varchar(40)', (c) =>
      c.notNull().references('certification_runs.id').onDelete('cascade'),
    )
    .addColumn('at', 'varchar(32)', (c) => c.notNull())
    .addColumn('method', 'varchar(16)', (c) => c.notNull())
    .addColumn('path', 'varchar(512)', (c) => c.notNull())
    .addColumn('route', 'varchar(40)', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull())
    // '' | rate_limit | server_error | unavailable | slow | expired_token
    .addColumn('fault', 'varchar(20)', (c) => c.notNull())
    .addColumn('retry_after_s', 'integer', (c) => c.notNull())
    .addColumn('idempotency_key', 'varchar(255)', (c) => c.notNull())
    .addColumn('credential', 'varchar(64)', (c) => c.notNull())
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('certification_calls_run')
    .on('certification_calls')
    .columns(['run_id', 'at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('certification_calls').execute();
  await db.schema.dropTable('certification_evidence').execute();
  await db.schema.dropTable('certification_runs').execute();
  await db.schema.dropTable('certification_plans').execute();
}
