import type { Kysely } from 'kysely';

/**
 * Issue 8, item 14: the gateway strips an `oauth2` service's bearer token before the upstream unless the service
 * asks for it (`forward_bearer_token`, 0 or 1, off by default).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('services')
    .addColumn('forward_bearer_token', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('services').dropColumn('forward_bearer_token').execute();
}
