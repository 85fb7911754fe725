/** Developer accounts (organizations), their users and invitations. */
import type { Change } from '../events/index.js';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import {
  type Clock,
  TrellisError,
  generateSecret,
  hashPassword,
  hashSecret,
  invalid,
  isoNow,
  newId,
  notFound,
  verifyPassword,
} from '../kernel/index.js';
import {
  type Executor,
  type PageRequest,
  type Tx,
  deleteRow,
  isUniqueViolation,
  lockRow,
} from '../store/index.js';
import {
  findAccountRow,
  findInvitationByTokenHash,
  findUserByEmail,
  findUserRow,
  listAccountRows,
  listInvitationRows,
  listUserRows,
  toAccount,
  toInvitation,
  toUser,
} from './access.store.js';
import { checkCustomFields } from './custom-fields.js';
import type {
  Account,
  AccountCreate,
  AccountUpdate,
  Invitation,
  InvitationCreate,
  User,
  UserCreate,
  UserUpdate,
} from './schemas.js';

type Record_ = (change: Change) => Promise<void>;

/** Invitations expire after a week. */
const invitationLifetimeMs = 7 * 24 * 3600 * 1000;

export async function getAccount(db: Executor, id: string): Promise<Account> {
  const row = await findAccountRow(db, id);
  if (!row) throw notFound('account', id);
  return toAccount(row);
}

export function listAccounts(db: Executor, filter: { state?: string; q?: string }, page: PageRequest) {
  return listAccountRows(db, filter, page);
}

/** Inserts an account inside a caller's transaction (signup express composes this). */
export async function insertAccount(
  tx: Tx,
  clock: Clock,
  record: Record_,
  input: AccountCreate,
  prefix = 'customFields',
): Promise<Account> {
  const customFields = await checkCustomFields(tx, 'account', input.customFields, { prefix });
  const id = newId('account');
  const now = isoNow(clock);
  await tx
    .insertInto('accounts')
    .values({
      id,
      name: input.name,
      state: input.state ?? 'approved',
      custom_fields: JSON.stringify(customFields),
      created_at: now,
      updated_at: now,
    })
    .execute();
  const account = await getAccount(tx, id);
  await record({
    type: 'account.created',
    entityType: 'account',
    entityId: id,
    payload: { account, accountId: id },
  });
  return account;
}

export function createAccount(deps: ChangeDeps, actor: Actor, input: AccountCreate): Promise<Account> {
  return runChange(deps, actor, (tx, record) => insertAccount(tx, deps.clock, record, input));
}

export async function updateAccount(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  input: AccountUpdate,
): Promise<Account> {
  return runChange(deps, actor, async (tx, record) => {
    // PATCHes at once (two control processes) merge their custom fields one after the other: none is lost
    await lockRow(tx, 'accounts', id);
    const before = await getAccount(tx, id);
    const customFields =
      input.customFields === undefined
        ? before.customFields
        : await checkCustomFields(tx, 'account', input.customFields, { existing: before.customFields });
    await tx
      .updateTable('accounts')
      .set({
        ...(input.name !== undefined && { name: input.name }),
        custom_fields: JSON.stringify(customFields),
        updated_at: isoNow(deps.clock),
      })
      .where('id', '=', id)
      .execute();
    const account = await getAccount(tx, id);
    await record({
      type: 'account.updated',
      entityType: 'account',
      entityId: id,
      payload: { account, accountId: id },
    });
    return account;
  });
}

const accountTransitions = {
  approve: { from: ['pending'], to: 'approved', event: 'account.approved' },
  suspend: { from: ['pending', 'approved'], to: 'suspended', event: 'account.suspended' },
  resume: { from: ['suspended'], to: 'approved', event: 'account.resumed' },
} as const;

/** approve (pending → approved), suspend (→ suspended), resume (suspended → approved). */
export async function transitionAccount(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  action: keyof typeof accountTransitions,
): Promise<Account> {
  const t = accountTransitions[action];
  const refused = (state: string) =>
    new TrellisError('invalid_state', `An account that is ${state} cannot be ${action}d.`);
  return runChange(deps, actor, async (tx, record) => {
    const before = await getAccount(tx, id);
    if (!(t.from as readonly string[]).includes(before.state)) throw refused(before.state);
    // conditional on the state read: of two transitions at once (two control processes), the second is refused
    const moved = await tx
      .updateTable('accounts')
      .set({ state: t.to, updated_at: isoNow(deps.clock) })
      .where('id', '=', id)
      .where('state', 'in', t.from)
      .executeTakeFirst();
    if (Number(moved.numUpdatedRows) !== 1) throw refused((await getAccount(tx, id)).state);
    const account = await getAccount(tx, id);
    await record({ type: t.event, entityType: 'account', entityId: id, payload: { account, accountId: id } });
    return account;
  });
}

export async function deleteAccount(deps: ChangeDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const account = await getAccount(tx, id);
    if (!(await deleteRow(tx, 'accounts', id))) throw notFound('account', id);
    await record({
      type: 'account.deleted',
      entityType: 'account',
      entityId: id,
      payload: { account, accountId: id },
    });
  });
}

// users

export async function getUser(db: Executor, id: string): Promise<User> {
  const row = await findUserRow(db, id);
  if (!row) throw notFound('user', id);
  return toUser(row);
}

export async function listUsers(db: Executor, accountId: string): Promise<User[]> {
  await getAccount(db, accountId);
  return listUserRows(db, accountId);
}

/** Inserts a user inside a caller's transaction. */
export async function insertUser(
  tx: Tx,
  clock: Clock,
  record: Record_,
  accountId: string,
  input: UserCreate,
  prefix = 'customFields',
): Promise<User> {
  await getAccount(tx, accountId);
  const customFields = await checkCustomFields(tx, 'user', input.customFields, { prefix });
  if (await findUserByEmail(tx, input.email)) {
    throw new TrellisError('conflict', `A user with e-mail ${input.email} already exists.`);
  }
  const id = newId('user');
  const now = isoNow(clock);
  try {
    await tx
      .insertInto('users')
      .values({
        id,
        account_id: accountId,
        email: input.email.toLowerCase(),
        name: input.name,
        role: input.role ?? 'admin',
        password_hash: input.password ? await hashPassword(input.password) : null,
        custom_fields: JSON.stringify(customFields),
        created_at: now,
        updated_at: now,
      })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err))
      throw new TrellisError('conflict', `A user with e-mail ${input.email} already exists.`);
    throw err;
  }
  const user = await getUser(tx, id);
  await record({ type: 'user.created', entityType: 'user', entityId: id, payload: { user, accountId } });
  return user;
}

export function createUser(
  deps: ChangeDeps,
  actor: Actor,
  accountId: string,
  input: UserCreate,
): Promise<User> {
  return runChange(deps, actor, (tx, record) => insertUser(tx, deps.clock, record, accountId, input));
}

export async function updateUser(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  input: UserUpdate,
): Promise<User> {
  return runChange(deps, actor, async (tx, record) => {
    // a demotion checks that the account keeps another admin: demotions and deletions at once (two control
    // processes) check one after the other, under the account's lock, taken before the user's as deleteUser does
    if (input.role === 'member') await lockRow(tx, 'accounts', (await getUser(tx, id)).accountId);
    // PATCHes at once (two control processes) merge their custom fields one after the other: none is lost
    await lockRow(tx, 'users', id);
    const before = await getUser(tx, id);
    if (input.role === 'member' && before.role === 'admin') await ensureAnotherAdmin(tx, before);
    const customFields =
      input.customFields === undefined
        ? before.customFields
        : await checkCustomFields(tx, 'user', input.customFields, { existing: before.customFields });
    await tx
      .updateTable('users')
      .set({
        ...(input.name !== undefined && { name: input.name }),
        ...(input.role !== undefined && { role: input.role }),
        ...(input.password !== undefined && { password_hash: await hashPassword(input.password) }),
        custom_fields: JSON.stringify(customFields),
        updated_at: isoNow(deps.clock),
      })
      .where('id', '=', id)
      .execute();
    const user = await getUser(tx, id);
    await record({
      type: 'user.updated',
      entityType: 'user',
      entityId: id,
      payload: { user, accountId: user.accountId },
    });
    return user;
  });
}

/** The user with this e-mail (any case), if any. */
export async function findUserByEmailAddress(db: Executor, email: string): Promise<User | undefined> {
  const row = await findUserByEmail(db, email);
  return row ? toUser(row) : undefined;
}

/**
 * Checks a developer's e-mail and password (the portal's login); unknown e-mails and users without a password
 * cost the same argon2 work, so timing tells nothing about who has an account.
 */
export async function verifyUserLogin(
  db: Executor,
  email: string,
  password: string,
): Promise<User | undefined> {
  const row = await findUserByEmail(db, email);
  // A fixed argon2 hash of a random password: verifying against it costs what a real verification costs.
  const decoy =
    '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhhc2g';
  const ok = await verifyPassword(row?.password_hash ?? decoy, password);
  return row?.password_hash && ok ? toUser(row) : undefined;
}

/** Refuses to leave the user's account without an admin; the caller holds the account's lock (`lockRow`). */
async function ensureAnotherAdmin(db: Executor, user: User): Promise<void> {
  const admins = (await listUserRows(db, user.accountId)).filter(
    (u) => u.role === 'admin' && u.id !== user.id,
  );
  if (admins.length === 0) {
    throw new TrellisError('invalid_state', 'An account needs at least one admin user.');
  }
}

export async function deleteUser(deps: ChangeDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    // the check that the account keeps another admin, made under the account's lock: two admins deleting (or
    // demoting) each other at once check one after the other, and the second finds itself the last
    await lockRow(tx, 'accounts', (await getUser(tx, id)).accountId);
    const user = await getUser(tx, id);
    if (user.role === 'admin') await ensureAnotherAdmin(tx, user);
    if (!(await deleteRow(tx, 'users', id))) throw notFound('user', id);
    await record({
      type: 'user.deleted',
      entityType: 'user',
      entityId: id,
      payload: { user, accountId: user.accountId },
    });
  });
}

// invitations

export async function listInvitations(db: Executor, accountId: string): Promise<Invitation[]> {
  await getAccount(db, accountId);
  return listInvitationRows(db, accountId);
}

/** Invites someone to an account; the token is returned once, to be mailed to them. */
export async function createInvitation(
  deps: ChangeDeps,
  actor: Actor,
  accountId: string,
  input: InvitationCreate,
): Promise<Invitation & { token: string }> {
  return runChange(deps, actor, async (tx, record) => {
    await getAccount(tx, accountId);
    if (await findUserByEmail(tx, input.email)) {
      throw new TrellisError('conflict', `A user with e-mail ${input.email} already exists.`);
    }
    const token = generateSecret('invitation');
    const id = newId('invitation');
    await tx
      .insertInto('invitations')
      .values({
        id,
        account_id: accountId,
        email: input.email.toLowerCase(),
        role: input.role ?? 'member',
        token_hash: hashSecret(token),
        expires_at: new Date(deps.clock.now() + invitationLifetimeMs).toISOString(),
        accepted_at: null,
        created_at: isoNow(deps.clock),
      })
      .execute();
    const row = await tx.selectFrom('invitations').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const invitation = toInvitation(row);
    await record({
      type: 'invitation.created',
      entityType: 'invitation',
      entityId: id,
      payload: { invitation, accountId },
    });
    return { ...invitation, token };
  });
}

/** Looks up a pending, unexpired invitation by its token (timing-safe: by hash). */
export async function findOpenInvitation(
  db: Executor,
  clock: Clock,
  token: string,
): Promise<Invitation | undefined> {
  const row = await findInvitationByTokenHash(db, hashSecret(token));
  if (!row || row.accepted_at !== null || row.expires_at < isoNow(clock)) return undefined;
  return toInvitation(row);
}

/** Accepts an invitation: creates the user in the inviting account. */
export async function acceptInvitation(
  deps: ChangeDeps,
  actor: Actor,
  token: string,
  input: { name: string; password: string; customFields?: Record<string, string> },
  prefix = 'customFields',
): Promise<User> {
  return runChange(deps, actor, async (tx, record) => {
    const invitation = await findOpenInvitation(tx, deps.clock, token);
    if (!invitation)
      throw invalid([{ field: 'token', message: 'the invitation is unknown, used or expired' }]);
    await tx
      .updateTable('invitations')
      .set({ accepted_at: isoNow(deps.clock) })
      .where('id', '=', invitation.id)
      .execute();
    return insertUser(
      tx,
      deps.clock,
      record,
      invitation.accountId,
      {
        email: invitation.email,
        name: input.name,
        role: invitation.role,
        password: input.password,
        ...(input.customFields && { customFields: input.customFields }),
      },
      prefix,
    );
  });
}

export async function deleteInvitation(
  deps: ChangeDeps,
  actor: Actor,
  accountId: string,
  id: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const row = await tx.selectFrom('invitations').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.account_id !== accountId) throw notFound('invitation', id);
    if (!(await deleteRow(tx, 'invitations', id))) throw notFound('invitation', id);
    await record({
      type: 'invitation.deleted',
      entityType: 'invitation',
      entityId: id,
      payload: { invitation: toInvitation(row), invitationId: id, accountId },
    });
  });
}
