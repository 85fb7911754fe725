/** All SQL of the mail outbox. */
import type { Selectable } from 'kysely';
import type { Executor } from '../store/index.js';
import type { MailOutboxTable, MailTables } from './mail-tables.js';

export interface OutboxMail {
  id: string;
  to: string;
  subject: string;
  text: string;
  state: 'kept' | 'queued' | 'sent' | 'failed';
  attempts: number;
  lastError: string | null;
  createdAt: string;
  sentAt: string | null;
}

function mailDb(db: Executor) {
  return db.withTables<MailTables>();
}

function toMail(r: Selectable<MailOutboxTable>): OutboxMail {
  return {
    id: r.id,
    to: r.to_address,
    subject: r.subject,
    text: r.text_body,
    state: r.state as OutboxMail['state'],
    attempts: r.attempts,
    lastError: r.last_error,
    createdAt: r.created_at,
    sentAt: r.sent_at,
  };
}

export async function insertMail(db: Executor, row: MailOutboxTable): Promise<void> {
  await mailDb(db).insertInto('mail_outbox').values(row).execute();
}

export async function markMail(
  db: Executor,
  id: string,
  patch: { state: string; attempts: number; last_error: string | null; sent_at: string | null },
): Promise<void> {
  await mailDb(db).updateTable('mail_outbox').set(patch).where('id', '=', id).execute();
}

export async function findMail(db: Executor, id: string): Promise<OutboxMail | undefined> {
  const row = await mailDb(db).selectFrom('mail_outbox').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toMail(row) : undefined;
}

/** The newest mails first, optionally only those to one address. */
export async function listMailRows(
  db: Executor,
  filter: { to?: string; limit: number },
): Promise<OutboxMail[]> {
  let q = mailDb(db)
    .selectFrom('mail_outbox')
    .selectAll()
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(filter.limit);
  if (filter.to) q = q.where('to_address', '=', filter.to.toLowerCase());
  return (await q.execute()).map(toMail);
}
