/** All SQL of content pages and the partner showcase. */
import type { Selectable, Updateable } from 'kysely';
import type { Executor } from '../store/index.js';
import type { BrandTables, ContentPageTable, ShowcaseEntryTable } from './brand-tables.js';

function brandDb(db: Executor) {
  return db.withTables<BrandTables>();
}

export type ContentPageRow = Selectable<ContentPageTable>;
export type ShowcaseRow = Selectable<ShowcaseEntryTable> & { account_id: string };

export async function listPageRows(db: Executor): Promise<ContentPageRow[]> {
  return brandDb(db).selectFrom('content_pages').selectAll().orderBy('position').orderBy('id').execute();
}

export async function findPageRow(db: Executor, id: string): Promise<ContentPageRow | undefined> {
  return brandDb(db).selectFrom('content_pages').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findPageRowBySlug(db: Executor, slug: string): Promise<ContentPageRow | undefined> {
  return brandDb(db).selectFrom('content_pages').selectAll().where('slug', '=', slug).executeTakeFirst();
}

export async function insertPageRow(db: Executor, row: ContentPageTable): Promise<void> {
  await brandDb(db).insertInto('content_pages').values(row).execute();
}

export async function updatePageRow(
  db: Executor,
  id: string,
  patch: Updateable<ContentPageTable>,
): Promise<void> {
  await brandDb(db).updateTable('content_pages').set(patch).where('id', '=', id).execute();
}

/** True when it removed the page (not when another deletion did first). */
export async function deletePageRow(db: Executor, id: string): Promise<boolean> {
  const r = await brandDb(db).deleteFrom('content_pages').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

function showcaseQuery(db: Executor) {
  return brandDb(db)
    .selectFrom('showcase_entries as s')
    .innerJoin('applications as a', 'a.id', 's.application_id')
    .selectAll('s')
    .select('a.account_id');
}

export async function listShowcaseRows(
  db: Executor,
  filter: { shownOnly?: boolean } = {},
): Promise<ShowcaseRow[]> {
  let q = showcaseQuery(db);
  if (filter.shownOnly) q = q.where('s.featured', '=', 1).where('s.consent', '=', 1);
  return q.orderBy('s.position').orderBy('s.application_id').execute();
}

export async function findShowcaseRow(db: Executor, applicationId: string): Promise<ShowcaseRow | undefined> {
  return showcaseQuery(db).where('s.application_id', '=', applicationId).executeTakeFirst();
}

/**
 * Writes the row of an application in one statement: inserts `row`, or, when the application has one, sets the
 * columns of `update` on it. Writers at once (two control processes, a provider and a partner) all succeed, the
 * last to commit last; an update-then-insert let all but the first inserter fail on the primary key (409).
 */
export async function upsertShowcaseRow(
  db: Executor,
  row: ShowcaseEntryTable,
  update: Updateable<ShowcaseEntryTable>,
): Promise<void> {
  await brandDb(db)
    .insertInto('showcase_entries')
    .values(row)
    .onConflict((oc) => oc.column('application_id').doUpdateSet(update))
    .execute();
}

export async function deleteShowcaseRow(db: Executor, applicationId: string): Promise<boolean> {
  const r = await brandDb(db)
    .deleteFrom('showcase_entries')
    .where('application_id', '=', applicationId)
    .executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
