import { type Kysely, sql } from 'kysely';

/**
 * Issue 9, provider webhooks (see src/webhooks and docs/webhooks.md):
 * - `webhook_endpoints`: where the provider wants events, which types, and the signing secret (sealed, as the
 *   OAuth keys are: signing needs the secret itself, not a hash); after a rotation the previous secret signs too
 *   until `previous_secret_expires_at`;
 * - `webhook_messages`: one per (event, endpoint), its body fixed when it is made (so every attempt sends the same
 *   bytes), its state and schedule, and the lease of the worker delivering it (`locked_until`, `locked_by`);
 * - `webhook_attempts`: the delivery log, one row per attempt;
 * - the outbox's `dispatched_at` marks the events the worker has fanned out into messages; events recorded before
 *   this migration are marked, so a new endpoint does not receive the past.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const ts = 'varchar(32)';
  const id = 'varchar(40)';
  await db.schema
    .createTable('webhook_endpoints')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('url', 'varchar(2000)', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    // a JSON array of event types; ["*"] for every type
    .addColumn('event_types', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('disabled_reason', 'text')
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('secret_prefix', 'varchar(32)', (c) => c.notNull())
    .addColumn('previous_secret', 'text')
    .addColumn('previous_secret_expires_at', ts)
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('webhook_messages')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('endpoint_id', id, (c) => c.notNull().references('webhook_endpoints.id').onDelete('cascade'))
    .addColumn('event_id', id, (c) => c.notNull())
    .addColumn('event_type', 'varchar(200)', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    // pending | succeeded | failed
    .addColumn('state', 'varchar(12)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', ts, (c) => c.notNull())
    .addColumn('locked_until', ts)
    .addColumn('locked_by', 'varchar(80)')
    .addColumn('last_status', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addUniqueConstraint('webhook_messages_event_endpoint', ['endpoint_id', 'event_id'])
    .execute();
  await db.schema
    .createIndex('webhook_messages_due')
    .on('webhook_messages')
    .columns(['state', 'next_attempt_at'])
    .execute();

  await db.schema
    .createTable('webhook_attempts')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('message_id', id, (c) => c.notNull().references('webhook_messages.id').onDelete('cascade'))
    .addColumn('endpoint_id', id, (c) => c.notNull())
    .addColumn('attempted_at', ts, (c) => c.notNull())
    .addColumn('status', 'integer')
    // succeeded | failed (retried later, or given up)
    .addColumn('outcome', 'varchar(12)', (c) => c.notNull())
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .addColumn('response_excerpt', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .execute();
  await db.schema
    .createIndex('webhook_attempts_message')
    .on('webhook_attempts')
    .column('message_id')
    .execute();

  await sql`update events set dispatched_at = occurred_at where dispatched_at is null`.execute(db);
  await sql`create index events_undispatched on events (seq) where dispatched_at is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index events_undispatched`.execute(db);
  await db.schema.dropTable('webhook_attempts').execute();
  await db.schema.dropTable('webhook_messages').execute();
  await db.schema.dropTable('webhook_endpoints').execute();
}
