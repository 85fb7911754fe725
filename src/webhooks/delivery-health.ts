/**
 * What the worker writes for an endpoint's health (issue 9): messages held back by its rate or its breaker are
 * released with a later due time; `failing_since` follows its attempts; an endpoint that has only failed for days
 * is disabled and its owner told by mail (the provider's admins for a provider endpoint, the account's admins for
 * a partner's).
 */
import { sql } from 'kysely';
import type { Mailer } from '../mail/index.js';
import type { Executor } from '../store/index.js';
import type { WebhookTables } from './webhook-tables.js';

function hooksDb(db: Executor) {
  return db.withTables<WebhookTables>();
}

/** Gives claimed messages back, due at `dueIso` (held back by the endpoint's rate or breaker; no attempt made). */
export async function releaseMessages(
  db: Executor,
  ids: readonly string[],
  workerId: string,
  dueIso: string,
): Promise<void> {
  if (ids.length === 0) return;
  await hooksDb(db)
    .updateTable('webhook_messages')
    .set({ next_attempt_at: dueIso, locked_until: null, locked_by: null })
    .where('id', 'in', ids)
    .where('locked_by', '=', workerId)
    .execute();
}

/**
 * Pushes every pending message of a paused endpoint that is due before `untilIso` to then (none is leased by a
 * worker now): a paused endpoint's messages wait, with their due time, in the database every worker reads.
 */
export async function deferEndpoint(
  db: Executor,
  endpointId: string,
  untilIso: string,
  nowIso: string,
): Promise<number> {
  const result = await hooksDb(db)
    .updateTable('webhook_messages')
    .set({ next_attempt_at: untilIso })
    .where('endpoint_id', '=', endpointId)
    .where('state', '=', 'pending')
    .where('next_attempt_at', '<', untilIso)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', nowIso)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * After a batch: endpoints with a success are no longer failing; those with only failures are failing since
 * `atIso` unless they already were. Returns the enabled endpoints failing since `disableBeforeIso` or earlier.
 */
export async function trackFailing(
  db: Executor,
  succeeded: readonly string[],
  failed: readonly string[],
  atIso: string,
  disableBeforeIso: string,
): Promise<string[]> {
  if (succeeded.length > 0)
    await hooksDb(db)
      .updateTable('webhook_endpoints')
      .set({ failing_since: null })
      .where('id', 'in', succeeded)
      .where('failing_since', 'is not', null)
      .execute();
  const onlyFailed = failed.filter((id) => !succeeded.includes(id));
  if (onlyFailed.length === 0) return [];
  await hooksDb(db)
    .updateTable('webhook_endpoints')
    .set({ failing_since: atIso })
    .where('id', 'in', onlyFailed)
    .where('failing_since', 'is', null)
    .execute();
  const rows = await hooksDb(db)
    .selectFrom('webhook_endpoints')
    .select('id')
    .where('id', 'in', onlyFailed)
    .where('enabled', '=', 1)
    .where('failing_since', '<=', disableBeforeIso)
    .execute();
  return rows.map((r) => r.id);
}

/** Who is told when an endpoint is disabled: the account's admins for a partner's endpoint, else the provider's. */
export async function ownerEmails(db: Executor, endpointId: string): Promise<string[]> {
  const row = await sql<{ account_id: string | null }>`
    select account_id from webhook_endpoints where id = ${endpointId}`
    .execute(db)
    .catch(() => null);
  const accountId = row?.rows[0]?.account_id ?? null;
  if (accountId) {
    const users = await db
      .selectFrom('users')
      .select('email')
      .where('account_id', '=', accountId)
      .where('role', '=', 'admin')
      .execute();
    return users.map((u) => u.email);
  }
  const admins = await db.selectFrom('admin_users').select('email').orderBy('email').execute();
  return admins.map((a) => a.email);
}

export interface DisabledNotice {
  endpointId: string;
  url: string;
  failingSince: string;
  days: number;
}

/** Mails the owner of each endpoint disabled for failing (after the change committed; the mail has its outbox). */
export async function mailDisabled(
  db: Executor,
  mailer: Mailer,
  notices: readonly DisabledNotice[],
): Promise<void> {
  for (const n of notices) {
    // the provider's template (console → Portal → Mail templates), or the default (issue 13)
    const values = {
      url: n.url,
      endpointId: n.endpointId,
      failingSince: n.failingSince,
      days: String(n.days),
    };
    for (const to of await ownerEmails(db, n.endpointId))
      await mailer.sendTemplate('webhook_endpoint_disabled', to, values);
  }
}
