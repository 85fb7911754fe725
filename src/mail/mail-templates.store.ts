/** All SQL of the provider's e-mail templates. */
import type { Selectable } from 'kysely';
import type { Executor } from '../store/index.js';
import type { MailTemplateTable, MailTemplateTables } from './mail-tables.js';

function templatesDb(db: Executor) {
  return db.withTables<MailTemplateTables>();
}

export async function findTemplateRow(
  db: Executor,
  key: string,
): Promise<Selectable<MailTemplateTable> | undefined> {
  return templatesDb(db).selectFrom('mail_templates').selectAll().where('key', '=', key).executeTakeFirst();
}

export async function listTemplateRows(db: Executor): Promise<Selectable<MailTemplateTable>[]> {
  return templatesDb(db).selectFrom('mail_templates').selectAll().execute();
}

/**
 * Writes a template in one statement (inserts its row, or replaces the one there): writers at once (two control
 * processes) all succeed, the last to commit last; an update-then-insert let all but the first inserter fail on
 * the key (409).
 */
export async function upsertTemplateRow(db: Executor, row: MailTemplateTable): Promise<void> {
  await templatesDb(db)
    .insertInto('mail_templates')
    .values(row)
    .onConflict((oc) =>
      oc.column('key').doUpdateSet({ subject: row.subject, body: row.body, updated_at: row.updated_at }),
    )
    .execute();
}

/** True when there was a row (the template was customised). */
export async function deleteTemplateRow(db: Executor, key: string): Promise<boolean> {
  const r = await templatesDb(db).deleteFrom('mail_templates').where('key', '=', key).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
