import { type Kysely, sql } from 'kysely';

/**
 * Issue 9, consumer webhooks (see src/webhooks/consumer-*.ts and docs/webhooks.md):
 * - `service_event_types`: the event types a provider declares for a service (name, description, the JSON Schema
 *   of the payload, an example), keyed by (service, name);
 * - `published_events`: each event the provider published with `POST /admin/api/events`, for an application or
 *   an account, with its idempotency key (unique) and the hash of the request it was first used with;
 * - `webhook_endpoints` gains the application (and its account and service) a partner registered it for; null for
 *   the provider's own endpoints. Deleting the application deletes its endpoints and their delivery log.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const ts = 'varchar(32)';
  const id = 'varchar(40)';
  await db.schema
    .createTable('service_event_types')
    .addColumn('service_id', id, (c) => c.notNull().references('services.id').onDelete('cascade'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    // JSON Schema of the payload, and an example payload (JSON text)
    .addColumn('schema', 'text', (c) => c.notNull())
    .addColumn('example', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addPrimaryKeyConstraint('service_event_types_pk', ['service_id', 'name'])
    .execute();

  await db.schema
    .createTable('published_events')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('service_id', id, (c) => c.notNull())
    .addColumn('type', 'varchar(200)', (c) => c.notNull())
    .addColumn('application_id', id)
    .addColumn('account_id', id, (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('idempotency_key', 'varchar(255)', (c) => c.unique())
    // sha256 of the request's canonical JSON: the same key with another request is refused
    .addColumn('request_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('messages', 'integer', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .alterTable('webhook_endpoints')
    .addColumn('application_id', id, (c) => c.references('applications.id').onDelete('cascade'))
    .execute();
  await db.schema.alterTable('webhook_endpoints').addColumn('account_id', id).execute();
  await db.schema.alterTable('webhook_endpoints').addColumn('service_id', id).execute();
  await db.schema
    .createIndex('webhook_endpoints_application')
    .on('webhook_endpoints')
    .column('application_id')
    .execute();
  await db.schema
    .createIndex('webhook_endpoints_account')
    .on('webhook_endpoints')
    .column('account_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index webhook_endpoints_account`.execute(db);
  await sql`drop index webhook_endpoints_application`.execute(db);
  await db.schema.alterTable('webhook_endpoints').dropColumn('service_id').execute();
  await db.schema.alterTable('webhook_endpoints').dropColumn('account_id').execute();
  await db.schema.alterTable('webhook_endpoints').dropColumn('application_id').execute();
  await db.schema.dropTable('published_events').execute();
  await db.schema.dropTable('service_event_types').execute();
}
