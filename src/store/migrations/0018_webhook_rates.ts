import type { Kysely } from 'kysely';

/**
 * Issue 9, delivery a small partner can bear (see src/webhooks/endpoint-throttle.ts and docs/webhooks.md):
 * - `rate_per_second`: deliveries per second the provider allows the endpoint (null: no limit);
 * - `owner_rate_per_second`: the endpoint's owner may lower it (never raise it; null: the provider's rate);
 * - `failing_since`: the first failed attempt since the last success (null while it succeeds); an endpoint that
 *   has only failed for `TRELLIS_WEBHOOK_DISABLE_AFTER_DAYS` is disabled.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('webhook_endpoints').addColumn('rate_per_second', 'real').execute();
  await db.schema.alterTable('webhook_endpoints').addColumn('owner_rate_per_second', 'real').execute();
  await db.schema.alterTable('webhook_endpoints').addColumn('failing_since', 'varchar(32)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('webhook_endpoints').dropColumn('failing_since').execute();
  await db.schema.alterTable('webhook_endpoints').dropColumn('owner_rate_per_second').execute();
  await db.schema.alterTable('webhook_endpoints').dropColumn('rate_per_second').execute();
}
