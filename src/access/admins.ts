/** The provider's side: admin users (console logins) and admin API tokens. */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import {
  type Clock,
  TrellisError,
  displayPrefix,
  generateSecret,
  hashPassword,
  hashSecret,
  isoNow,
  newId,
  notFound,
  verifyPassword,
} from '../kernel/index.js';
import { type Executor, deleteRow, isUniqueViolation, lockKey } from '../store/index.js';
import { findAdminTokenByHash, findAdminUserByEmail, toAdminToken, toAdminUser } from './access.store.js';
import type { AdminToken, AdminTokenCreate, AdminTokenScope, AdminUser, AdminUserCreate } from './schemas.js';

export async function listAdminUsers(db: Executor): Promise<AdminUser[]> {
  return (await db.selectFrom('admin_users').selectAll().orderBy('id').execute()).map(toAdminUser);
}

export async function getAdminUser(db: Executor, id: string): Promise<AdminUser> {
  const row = await db.selectFrom('admin_users').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('admin user', id);
  return toAdminUser(row);
}

export async function createAdminUser(
  deps: ChangeDeps,
  actor: Actor,
  input: AdminUserCreate,
): Promise<AdminUser> {
  const passwordHash = await hashPassword(input.password);
  try {
    return await runChange(deps, actor, async (tx, record) => {
      const id = newId('adminUser');
      const now = isoNow(deps.clock);
      await tx
        .insertInto('admin_users')
        .values({
          id,
          email: input.email.toLowerCase(),
          name: input.name,
          password_hash: passwordHash,
          created_at: now,
          updated_at: now,
        })
        .execute();
      const user = await getAdminUser(tx, id);
      await record({
        type: 'admin_user.created',
        entityType: 'admin_user',
        entityId: id,
        payload: { adminUser: user },
      });
      return user;
    });
  } catch (err) {
    if (isUniqueViolation(err))
      throw new TrellisError('conflict', `An admin with e-mail ${input.email} exists.`);
    throw err;
  }
}

/**
 * The advisory lock of admin user deletions on PostgreSQL ("trau"): the check that another admin user remains is
 * over rows that no row owns, so there is none for `lockRow`.
 */
const ADMIN_USERS_LOCK_KEY = 0x74726175;

export async function deleteAdminUser(deps: ChangeDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    // two admin users deleting each other at once (two control processes) check one after the other, and the
    // second finds itself the last
    await lockKey(tx, ADMIN_USERS_LOCK_KEY);
    const user = await getAdminUser(tx, id);
    const others = await tx.selectFrom('admin_users').select('id').where('id', '!=', id).executeTakeFirst();
    if (!others) throw new TrellisError('invalid_state', 'The last admin user cannot be deleted.');
    if (!(await deleteRow(tx, 'admin_users', id))) throw notFound('admin user', id);
    await record({
      type: 'admin_user.deleted',
      entityType: 'admin_user',
      entityId: id,
      payload: { adminUser: user },
    });
  });
}

/** Checks an admin's e-mail and password; the same work is done for unknown e-mails so timing tells nothing. */
export async function verifyAdminLogin(
  db: Executor,
  email: string,
  password: string,
): Promise<AdminUser | undefined> {
  const row = await findAdminUserByEmail(db, email);
  // A fixed argon2 hash of a random password: verifying against it costs what a real verification costs.
  const decoy =
    '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhhc2g';
  const ok = await verifyPassword(row?.password_hash ?? decoy, password);
  return row && ok ? toAdminUser(row) : undefined;
}

export async function listAdminTokens(db: Executor): Promise<AdminToken[]> {
  return (await db.selectFrom('admin_tokens').selectAll().orderBy('id').execute()).map(toAdminToken);
}

export async function getAdminToken(db: Executor, id: string): Promise<AdminToken> {
  const row = await db.selectFrom('admin_tokens').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('admin token', id);
  return toAdminToken(row);
}

/** Creates an admin API token; the token itself is returned once and stored only hashed. */
export async function createAdminToken(
  deps: ChangeDeps,
  actor: Actor,
  input: AdminTokenCreate & { adminUserId?: string | null },
): Promise<AdminToken & { token: string }> {
  return runChange(deps, actor, async (tx, record) => {
    const token = generateSecret('adminToken');
    const id = newId('adminToken');
    await tx
      .insertInto('admin_tokens')
      .values({
        id,
        name: input.name,
        scope: input.scope,
        secret_hash: hashSecret(token),
        display_prefix: displayPrefix(token),
        admin_user_id: input.adminUserId ?? (actor.type === 'admin_user' ? actor.id : null),
        created_at: isoNow(deps.clock),
        last_used_at: null,
        revoked_at: null,
      })
      .execute();
    const created = await getAdminToken(tx, id);
    await record({
      type: 'admin_token.created',
      entityType: 'admin_token',
      entityId: id,
      payload: { adminToken: created },
    });
    return { ...created, token };
  });
}

export async function revokeAdminToken(deps: ChangeDeps, actor: Actor, id: string): Promise<AdminToken> {
  return runChange(deps, actor, async (tx, record) => {
    const before = await getAdminToken(tx, id);
    const revoked = () => new TrellisError('invalid_state', 'The token is already revoked.');
    if (before.revokedAt) throw revoked();
    // conditional: of two revocations at once, the second changes nothing and records nothing
    const result = await tx
      .updateTable('admin_tokens')
      .set({ revoked_at: isoNow(deps.clock) })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw revoked();
    const token = await getAdminToken(tx, id);
    await record({
      type: 'admin_token.revoked',
      entityType: 'admin_token',
      entityId: id,
      payload: { adminToken: token },
    });
    return token;
  });
}

export interface AdminPrincipal {
  tokenId: string;
  scope: AdminTokenScope;
}

/**
 * Finds the admin token a bearer secret belongs to. Lookup is by SHA-256 of the presented secret, so no stored
 * secret is ever compared byte by byte with input.
 */
export async function authenticateAdminToken(
  db: Executor,
  clock: Clock,
  secret: string,
): Promise<AdminPrincipal | undefined> {
  if (!secret.startsWith('trat_') || secret.length > 100) return undefined;
  const row = await findAdminTokenByHash(db, hashSecret(secret));
  if (!row || row.revoked_at) return undefined;
  // last_used_at at minute precision: one write a minute per token, not one per request.
  const minute = isoNow(clock).slice(0, 16);
  if (row.last_used_at?.slice(0, 16) !== minute) {
    await db
      .updateTable('admin_tokens')
      .set({ last_used_at: isoNow(clock) })
      .where('id', '=', row.id)
      .execute();
  }
  return { tokenId: row.id, scope: row.scope as AdminTokenScope };
}
