/** All SQL of the browser faces: sessions, password resets, login attempts, used SSO tokens and keys. */
import { randomBytes } from 'node:crypto';
import type { Selectable } from 'kysely';
import { type Executor, isUniqueViolation } from '../store/index.js';
import type { PasswordResetTable, PortalTables, WebSessionTable } from './portal-tables.js';

function webDb(db: Executor) {
  return db.withTables<PortalTables>();
}

// sessions

export async function insertSession(db: Executor, row: WebSessionTable): Promise<void> {
  await webDb(db).insertInto('web_sessions').values(row).execute();
}

export async function findSession(
  db: Executor,
  tokenHash: string,
  kind: string,
): Promise<Selectable<WebSessionTable> | undefined> {
  return webDb(db)
    .selectFrom('web_sessions')
    .selectAll()
    .where('token_hash', '=', tokenHash)
    .where('kind', '=', kind)
    .executeTakeFirst();
}

export async function touchSession(db: Executor, tokenHash: string, lastSeenAt: string, expiresAt: string) {
  await webDb(db)
    .updateTable('web_sessions')
    .set({ last_seen_at: lastSeenAt, expires_at: expiresAt })
    .where('token_hash', '=', tokenHash)
    .execute();
}

export async function deleteSession(db: Executor, tokenHash: string): Promise<void> {
  await webDb(db).deleteFrom('web_sessions').where('token_hash', '=', tokenHash).execute();
}

/** Ends every session of a subject (after a password reset, or when the user is removed). */
export async function deleteSessionsOf(db: Executor, kind: string, subjectId: string): Promise<void> {
  await webDb(db)
    .deleteFrom('web_sessions')
    .where('kind', '=', kind)
    .where('subject_id', '=', subjectId)
    .execute();
}

export async function deleteExpiredSessions(db: Executor, now: string): Promise<void> {
  await webDb(db).deleteFrom('web_sessions').where('expires_at', '<', now).execute();
}

// password resets

export async function insertPasswordReset(db: Executor, row: PasswordResetTable): Promise<void> {
  await webDb(db).insertInto('password_resets').values(row).execute();
}

export async function findPasswordReset(db: Executor, tokenHash: string) {
  return webDb(db)
    .selectFrom('password_resets')
    .selectAll()
    .where('token_hash', '=', tokenHash)
    .executeTakeFirst();
}

/** Marks a reset used; false when it was already used (two tabs racing), so it works exactly once. */
export async function usePasswordReset(db: Executor, tokenHash: string, at: string): Promise<boolean> {
  const result = await webDb(db)
    .updateTable('password_resets')
    .set({ used_at: at })
    .where('token_hash', '=', tokenHash)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

// login attempts

/** Inserts one attempt per key, all at `at`; returns their ids, in the order of the keys. */
export async function insertLoginAttempts(
  db: Executor,
  keys: readonly string[],
  at: string,
): Promise<string[]> {
  const rows = keys.map((key) => ({ id: `la_${randomBytes(12).toString('hex')}`, key, at }));
  await webDb(db).insertInto('login_attempts').values(rows).execute();
  return rows.map((r) => r.id);
}

/** Moves attempts to `at` (a failure is dated when it was found, not when it was claimed). */
export async function dateLoginAttempts(db: Executor, ids: readonly string[], at: string): Promise<void> {
  await webDb(db).updateTable('login_attempts').set({ at }).where('id', 'in', ids).execute();
}

export async function deleteLoginAttemptsById(db: Executor, ids: readonly string[]): Promise<void> {
  await webDb(db).deleteFrom('login_attempts').where('id', 'in', ids).execute();
}

/** Per key: the attempts since its own start time, and when the latest was (ISO); keys without any are absent. */
export async function summarizeLoginAttempts(
  db: Executor,
  windows: readonly { key: string; since: string }[],
): Promise<Map<string, { count: number; last: string }>> {
  const rows = await webDb(db)
    .selectFrom('login_attempts')
    .select((eb) => ['key', eb.fn.countAll().as('n'), eb.fn.max('at').as('last')])
    .where((eb) => eb.or(windows.map((w) => eb.and([eb('key', '=', w.key), eb('at', '>=', w.since)]))))
    .groupBy('key')
    .execute();
  return new Map(rows.map((r) => [r.key, { count: Number(r.n), last: String(r.last) }]));
}

export async function deleteLoginAttempts(db: Executor, key: string): Promise<void> {
  await webDb(db).deleteFrom('login_attempts').where('key', '=', key).execute();
}

export async function deleteOldLoginAttempts(db: Executor, before: string): Promise<void> {
  await webDb(db).deleteFrom('login_attempts').where('at', '<', before).execute();
}

// single sign-on tokens

/** Records a token as used; false when it was used before (a replay). */
export async function useSsoToken(db: Executor, tokenHash: string, expiresAt: string): Promise<boolean> {
  try {
    await webDb(db)
      .insertInto('sso_tokens_used')
      .values({ token_hash: tokenHash, expires_at: expiresAt })
      .execute();
    return true;
  } catch (err) {
    if (isUniqueViolation(err)) return false;
    throw err;
  }
}

export async function deleteExpiredSsoTokens(db: Executor, now: string): Promise<void> {
  await webDb(db).deleteFrom('sso_tokens_used').where('expires_at', '<', now).execute();
}

// keys

export async function findWebKey(db: Executor, name: string): Promise<string | undefined> {
  const row = await webDb(db)
    .selectFrom('web_keys')
    .select('value')
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.value;
}

/** Stores a key unless one exists (two processes starting at once keep the first). */
export async function insertWebKeyIfMissing(db: Executor, name: string, value: string, at: string) {
  await webDb(db)
    .insertInto('web_keys')
    .values({ name, value, created_at: at })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
}

export async function replaceWebKey(db: Executor, name: string, value: string, at: string): Promise<void> {
  await webDb(db)
    .insertInto('web_keys')
    .values({ name, value, created_at: at })
    .onConflict((oc) => oc.column('name').doUpdateSet({ value, created_at: at }))
    .execute();
}
