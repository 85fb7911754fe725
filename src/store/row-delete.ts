import { type Transaction, sql } from 'kysely';

/**
 * Deletes the row `id` of `table`; true when this transaction removed it. A change that records a `*.deleted`
 * event records it only then: of two deletions at once (two control processes), both read the row, the second's
 * DELETE waits for the first to commit and then removes nothing, and it answers the 404 it would answer had it
 * come second instead of recording the deletion again (docs/architecture.md, "How a change flows").
 * @example if (!(await deleteRow(tx, 'accounts', id))) throw notFound('account', id);
 */
export async function deleteRow<DB>(
  tx: Transaction<DB>,
  table: keyof DB & string,
  id: string,
): Promise<boolean> {
  const result = await sql`delete from ${sql.table(table)} where id = ${id}`.execute(tx);
  return Number(result.numAffectedRows ?? 0) > 0;
}
