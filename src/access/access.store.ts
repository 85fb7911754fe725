/** SQL of the access context. Rows are mapped to API shapes here. */
import type { Selectable } from 'kysely';
import {
  type AccountTable,
  type AdminTokenTable,
  type AdminUserTable,
  type ApplicationTable,
  type CredentialTable,
  type CustomFieldTable,
  type Executor,
  type InvitationTable,
  type PageRequest,
  type UserTable,
  toPage,
} from '../store/index.js';
import type {
  Account,
  AdminToken,
  AdminUser,
  Application,
  Credential,
  CustomField,
  Invitation,
  User,
} from './schemas.js';

const parseFields = (text: string) => JSON.parse(text) as Record<string, string>;

export function toAccount(r: Selectable<AccountTable>): Account {
  return {
    id: r.id,
    name: r.name,
    state: r.state as Account['state'],
    customFields: parseFields(r.custom_fields),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function toUser(r: Selectable<UserTable>): User {
  return {
    id: r.id,
    accountId: r.account_id,
    email: r.email,
    name: r.name,
    role: r.role as User['role'],
    hasPassword: r.password_hash !== null,
    customFields: parseFields(r.custom_fields),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function toInvitation(r: Selectable<InvitationTable>): Invitation {
  return {
    id: r.id,
    accountId: r.account_id,
    email: r.email,
    role: r.role as Invitation['role'],
    expiresAt: r.expires_at,
    acceptedAt: r.accepted_at,
    createdAt: r.created_at,
  };
}

export function toCredential(r: Selectable<CredentialTable>): Credential {
  return {
    id: r.id,
    kind: r.kind as Credential['kind'],
    displayPrefix: r.display_prefix,
    state: r.state as Credential['state'],
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at ?? null,
  };
}

function toApplication(r: Selectable<ApplicationTable>, credentials: Credential[]): Application {
  return {
    id: r.id,
    accountId: r.account_id,
    serviceId: r.service_id,
    planId: r.plan_id,
    requestedPlanId: r.requested_plan_id,
    name: r.name,
    description: r.description,
    state: r.state as Application['state'],
    environment: r.environment as Application['environment'],
    appId: r.app_id,
    allowedIps: JSON.parse(r.allowed_ips) as string[],
    customFields: parseFields(r.custom_fields),
    credentials,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function parseChoices(text: string): string[] {
  if (!text) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((c): c is string => typeof c === 'string') : [];
  } catch {
    return [];
  }
}

export function toCustomField(r: Selectable<CustomFieldTable>): CustomField {
  return {
    id: r.id,
    target: r.target as CustomField['target'],
    name: r.name,
    label: r.label,
    required: r.required === 1,
    choices: parseChoices(r.choices),
    position: Number(r.position),
    createdAt: r.created_at,
  };
}

export function toAdminUser(r: Selectable<AdminUserTable>): AdminUser {
  return { id: r.id, email: r.email, name: r.name, createdAt: r.created_at, updatedAt: r.updated_at };
}

export function toAdminToken(r: Selectable<AdminTokenTable>): AdminToken {
  return {
    id: r.id,
    name: r.name,
    scope: r.scope as AdminToken['scope'],
    displayPrefix: r.display_prefix,
    adminUserId: r.admin_user_id,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

// accounts

export async function findAccountRow(db: Executor, id: string) {
  return db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listAccountRows(
  db: Executor,
  filter: { state?: string; q?: string },
  page: PageRequest,
) {
  let q = db
    .selectFrom('accounts')
    .selectAll()
    .orderBy('id')
    .limit(page.limit + 1);
  if (page.cursor) q = q.where('id', '>', page.cursor);
  if (filter.state) q = q.where('state', '=', filter.state);
  if (filter.q) q = q.where('name', 'like', `%${filter.q.replace(/[%_\\]/g, '')}%`);
  return toPage((await q.execute()).map(toAccount), page.limit);
}

// users

export async function findUserRow(db: Executor, id: string) {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findUserByEmail(db: Executor, email: string) {
  return db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst();
}

export async function listUserRows(db: Executor, accountId: string) {
  return (
    await db.selectFrom('users').selectAll().where('account_id', '=', accountId).orderBy('id').execute()
  ).map(toUser);
}

export async function listInvitationRows(db: Executor, accountId: string) {
  return (
    await db.selectFrom('invitations').selectAll().where('account_id', '=', accountId).orderBy('id').execute()
  ).map(toInvitation);
}

export async function findInvitationByTokenHash(db: Executor, hash: string) {
  return db.selectFrom('invitations').selectAll().where('token_hash', '=', hash).executeTakeFirst();
}

// applications

async function hydrateApplications(
  db: Executor,
  rows: Selectable<ApplicationTable>[],
): Promise<Application[]> {
  if (rows.length === 0) return [];
  const creds = await db
    .selectFrom('credentials')
    .selectAll()
    .where(
      'application_id',
      'in',
      rows.map((r) => r.id),
    )
    .orderBy('id')
    .execute();
  return rows.map((r) => toApplication(r, creds.filter((c) => c.application_id === r.id).map(toCredential)));
}

export async function findApplication(db: Executor, id: string): Promise<Application | undefined> {
  const row = await db.selectFrom('applications').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? (await hydrateApplications(db, [row]))[0] : undefined;
}

export interface ApplicationFilter {
  accountId?: string | undefined;
  serviceId?: string | undefined;
  planId?: string | undefined;
  state?: string | undefined;
  environment?: string | undefined;
  q?: string | undefined;
}

export async function listApplicationRows(db: Executor, filter: ApplicationFilter, page: PageRequest) {
  let q = db
    .selectFrom('applications')
    .selectAll()
    .orderBy('id')
    .limit(page.limit + 1);
  if (page.cursor) q = q.where('id', '>', page.cursor);
  if (filter.accountId) q = q.where('account_id', '=', filter.accountId);
  if (filter.serviceId) q = q.where('service_id', '=', filter.serviceId);
  if (filter.planId) q = q.where('plan_id', '=', filter.planId);
  if (filter.state) q = q.where('state', '=', filter.state);
  if (filter.environment) q = q.where('environment', '=', filter.environment);
  if (filter.q) q = q.where('name', 'like', `%${filter.q.replace(/[%_\\]/g, '')}%`);
  const rows = await q.execute();
  return toPage(await hydrateApplications(db, rows), page.limit);
}

export async function countActiveCredentials(
  db: Executor,
  applicationId: string,
  kind: string,
): Promise<number> {
  const row = await db
    .selectFrom('credentials')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('application_id', '=', applicationId)
    .where('kind', '=', kind)
    .where('state', '=', 'active')
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

// custom fields

export async function listCustomFieldRows(db: Executor, target?: string) {
  let q = db.selectFrom('custom_fields').selectAll().orderBy('position').orderBy('id');
  if (target) q = q.where('target', '=', target);
  return (await q.execute()).map(toCustomField);
}

// admin users and tokens

export async function findAdminTokenByHash(db: Executor, hash: string) {
  return db.selectFrom('admin_tokens').selectAll().where('secret_hash', '=', hash).executeTakeFirst();
}

export async function findAdminUserByEmail(db: Executor, email: string) {
  return db.selectFrom('admin_users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst();
}

// settings: rows of one value by key

/** A row of `settings` (the portal settings' document, the uploaded favicon). */
export async function findSettingRow(
  db: Executor,
  key: string,
): Promise<{ value: string; updated_at: string } | undefined> {
  return db.selectFrom('settings').select(['value', 'updated_at']).where('key', '=', key).executeTakeFirst();
}

/**
 * Writes a row of `settings` in one statement (inserts it, or replaces the value of the one there): writers at
 * once (two control processes) all succeed, the last to commit last; an update-then-insert let all but the first
 * inserter fail on the key (409).
 */
export async function upsertSettingRow(db: Executor, key: string, value: string, now: string): Promise<void> {
  await db
    .insertInto('settings')
    .values({ key, value, updated_at: now })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: now }))
    .execute();
}

export async function deleteSettingRow(db: Executor, key: string): Promise<boolean> {
  const r = await db.deleteFrom('settings').where('key', '=', key).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
