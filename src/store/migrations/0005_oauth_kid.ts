import { type Kysely, PostgresAdapter, sql } from 'kysely';

/**
 * Audit and outbox entries name their entity by id in a 40-character column; an OAuth signing key's id is its
 * RFC 7638 thumbprint (43 characters), so recording a key rotation failed on PostgreSQL (issue 8, item 19).
 * The columns are widened to 255 on PostgreSQL; SQLite does not enforce varchar lengths and needs nothing.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`alter table audit_log alter column entity_id type varchar(255)`.execute(db);
  await sql`alter table events alter column entity_id type varchar(255)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`alter table audit_log alter column entity_id type varchar(40)`.execute(db);
  await sql`alter table events alter column entity_id type varchar(40)`.execute(db);
}
