import { type Kysely, sql } from 'kysely';

/**
 * Issue 10: one unresolved finding per application, kind and subject, even when two processes run the detectors at
 * once: `insight_findings.open_key` (`application|kind|subject` while not resolved, null once resolved) is unique.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('insight_findings').addColumn('open_key', 'varchar(300)').execute();
  await sql`update insight_findings set open_key = application_id || '|' || kind || '|' || subject where state <> 'resolved'`.execute(
    db,
  );
  await db.schema
    .createIndex('insight_findings_open_key')
    .unique()
    .on('insight_findings')
    .column('open_key')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('insight_findings_open_key').execute();
  await db.schema.alterTable('insight_findings').dropColumn('open_key').execute();
}
