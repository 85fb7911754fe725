/** All SQL of the OAuth context. Store functions take an `Executor`, so callers decide the transaction. */
import { sql } from 'kysely';
import type { Executor } from '../store/index.js';
import type {
  OAuthClientSettingsTable,
  OAuthServiceSettingsTable,
  OAuthSigningKeyTable,
  OAuthTables,
} from './oauth-tables.js';

function oauthDb(db: Executor) {
  return db.withTables<OAuthTables>();
}

// ---- oidc-provider models --------------------------------------------------------------------------------

export interface ModelRow {
  model: string;
  id: string;
  payload: string;
  grantId: string | null;
  uid: string | null;
  userCode: string | null;
  expiresAt: string | null;
}

/** Inserts or replaces one model instance (oidc-provider saves the same id again when it changes). */
export async function upsertModel(db: Executor, row: ModelRow): Promise<void> {
  const values = {
    model: row.model,
    id: row.id,
    payload: row.payload,
    grant_id: row.grantId,
    uid: row.uid,
    user_code: row.userCode,
    expires_at: row.expiresAt,
    consumed_at: null,
  };
  await oauthDb(db)
    .insertInto('oauth_models')
    .values(values)
    .onConflict((oc) =>
      oc.columns(['model', 'id']).doUpdateSet({
        payload: values.payload,
        grant_id: values.grant_id,
        uid: values.uid,
        user_code: values.user_code,
        expires_at: values.expires_at,
      }),
    )
    .execute();
}

export interface StoredModel {
  payload: string;
  consumedAt: string | null;
}

type ModelKey = 'id' | 'uid' | 'user_code';

/** A model instance that has not expired, by id, session uid or user code. */
export async function findModel(
  db: Executor,
  model: string,
  key: ModelKey,
  value: string,
  nowIso: string,
): Promise<StoredModel | undefined> {
  const row = await oauthDb(db)
    .selectFrom('oauth_models')
    .select(['payload', 'consumed_at'])
    .where('model', '=', model)
    .where(key, '=', value)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso)]))
    .executeTakeFirst();
  return row && { payload: row.payload, consumedAt: row.consumed_at };
}

/**
 * Marks a model instance (a code, a refresh token …) as used, once: the update is conditional, so of requests
 * racing with the same instance exactly one gets `true` (PostgreSQL re-checks `consumed_at` after the winner's
 * row lock, SQLite runs one write at a time). `false`: already used, or gone.
 */
export async function consumeModel(
  db: Executor,
  model: string,
  id: string,
  nowIso: string,
): Promise<boolean> {
  const result = await oauthDb(db)
    .updateTable('oauth_models')
    .set({ consumed_at: nowIso })
    .where('model', '=', model)
    .where('id', '=', id)
    .where('consumed_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** The grant a model instance belongs to, consumed or not, expired or not. */
export async function findModelGrantId(db: Executor, model: string, id: string): Promise<string | undefined> {
  const row = await oauthDb(db)
    .selectFrom('oauth_models')
    .select('grant_id')
    .where('model', '=', model)
    .where('id', '=', id)
    .executeTakeFirst();
  return row?.grant_id ?? undefined;
}

export async function destroyModel(db: Executor, model: string, id: string): Promise<void> {
  await oauthDb(db).deleteFrom('oauth_models').where('model', '=', model).where('id', '=', id).execute();
}

/** Deletes everything a grant issued (codes, refresh tokens …) of one model. */
export async function destroyModelsOfGrant(db: Executor, model: string, grantId: string): Promise<void> {
  await oauthDb(db)
    .deleteFrom('oauth_models')
    .where('model', '=', model)
    .where('grant_id', '=', grantId)
    .execute();
}

export async function deleteExpiredModels(db: Executor, nowIso: string): Promise<number> {
  const result = await oauthDb(db)
    .deleteFrom('oauth_models')
    .where('expires_at', 'is not', null)
    .where('expires_at', '<=', nowIso)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

// ---- signing keys and secrets ----------------------------------------------------------------------------

export type SigningKeyRow = OAuthSigningKeyTable;

export async function listSigningKeys(db: Executor): Promise<SigningKeyRow[]> {
  return oauthDb(db).selectFrom('oauth_signing_keys').selectAll().orderBy('created_at').execute();
}

/** Public keys only: what verifiers need, and nothing they must not see. */
export async function listPublicKeys(
  db: Executor,
): Promise<{ kid: string; state: string; public_jwk: string; expires_at: string | null }[]> {
  return oauthDb(db)
    .selectFrom('oauth_signing_keys')
    .select(['kid', 'state', 'public_jwk', 'expires_at'])
    .orderBy('created_at')
    .execute();
}

export async function insertSigningKey(db: Executor, row: SigningKeyRow): Promise<void> {
  await oauthDb(db).insertInto('oauth_signing_keys').values(row).execute();
}

export async function updateSigningKey(
  db: Executor,
  kid: string,
  fields: Partial<Pick<SigningKeyRow, 'state' | 'activated_at' | 'retired_at' | 'expires_at'>>,
): Promise<void> {
  await oauthDb(db).updateTable('oauth_signing_keys').set(fields).where('kid', '=', kid).execute();
}

export async function deleteExpiredSigningKeys(db: Executor, nowIso: string): Promise<void> {
  await oauthDb(db)
    .deleteFrom('oauth_signing_keys')
    .where('state', '=', 'retired')
    .where('expires_at', '<=', nowIso)
    .execute();
}

/** Reads a named secret, creating it first when missing; concurrent creators agree on the first one written. */
export async function findOrCreateSecret(
  db: Executor,
  name: string,
  create: () => string,
  nowIso: string,
): Promise<string> {
  await oauthDb(db)
    .insertInto('oauth_secrets')
    .values({ name, value: create(), created_at: nowIso })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await oauthDb(db)
    .selectFrom('oauth_secrets')
    .select('value')
    .where('name', '=', name)
    .executeTakeFirstOrThrow();
  return row.value;
}

// ---- settings ---------------------------------------------------------------------------------------------

export type ServiceSettingsRow = OAuthServiceSettingsTable;
export type ClientSettingsRow = OAuthClientSettingsTable;

export async function findServiceSettings(
  db: Executor,
  serviceId: string,
): Promise<ServiceSettingsRow | undefined> {
  return oauthDb(db)
    .selectFrom('oauth_service_settings')
    .selectAll()
    .where('service_id', '=', serviceId)
    .executeTakeFirst();
}

export async function upsertServiceSettings(db: Executor, row: ServiceSettingsRow): Promise<void> {
  const { service_id: _id, ...rest } = row;
  await oauthDb(db)
    .insertInto('oauth_service_settings')
    .values(row)
    .onConflict((oc) => oc.column('service_id').doUpdateSet(rest))
    .execute();
}

export async function findClientSettings(
  db: Executor,
  applicationId: string,
): Promise<ClientSettingsRow | undefined> {
  return oauthDb(db)
    .selectFrom('oauth_client_settings')
    .selectAll()
    .where('application_id', '=', applicationId)
    .executeTakeFirst();
}

export async function upsertClientSettings(db: Executor, row: ClientSettingsRow): Promise<void> {
  const { application_id: _id, ...rest } = row;
  await oauthDb(db)
    .insertInto('oauth_client_settings')
    .values(row)
    .onConflict((oc) => oc.column('application_id').doUpdateSet(rest))
    .execute();
}

/** Services whose tokens come from another issuer, with their settings. */
export async function listExternalIssuerServices(db: Executor): Promise<ServiceSettingsRow[]> {
  return oauthDb(db)
    .selectFrom('oauth_service_settings')
    .selectAll()
    .where('token_issuer', '=', 'external')
    .execute();
}

/** Applications known by the client id another issuer gave them. */
export async function listExternalClients(
  db: Executor,
): Promise<{ service_id: string; app_id: string; external_client_id: string }[]> {
  const rows = await oauthDb(db)
    .selectFrom('oauth_client_settings as c')
    .innerJoin('applications as a', 'a.id', 'c.application_id')
    .select(['a.service_id', 'a.app_id', 'c.external_client_id'])
    .where('c.external_client_id', 'is not', null)
    .execute();
  return rows.flatMap((r) =>
    r.external_client_id
      ? [{ service_id: r.service_id, app_id: r.app_id, external_client_id: r.external_client_id }]
      : [],
  );
}

// ---- clients ----------------------------------------------------------------------------------------------

export interface ClientApplicationRow {
  application_id: string;
  app_id: string;
  name: string;
  app_state: string;
  account_id: string;
  account_state: string;
  service_id: string;
  service_system_name: string;
  auth_mode: string;
  plan_id: string;
}

/** The application behind an OAuth client id (its `app_id`), with what decides whether it may get tokens. */
export async function findClientApplication(
  db: Executor,
  appId: string,
): Promise<ClientApplicationRow | undefined> {
  return oauthDb(db)
    .selectFrom('applications as a')
    .innerJoin('accounts as acc', 'acc.id', 'a.account_id')
    .innerJoin('services as s', 's.id', 'a.service_id')
    .select([
      'a.id as application_id',
      'a.app_id',
      'a.name',
      'a.state as app_state',
      'a.account_id',
      'acc.state as account_state',
      'a.service_id',
      's.system_name as service_system_name',
      's.auth_mode',
      'a.plan_id',
    ])
    .where('a.app_id', '=', appId)
    .executeTakeFirst();
}

/** Hashes of the active client secrets of an application (several while a secret is being rotated). */
export async function listActiveClientSecretHashes(db: Executor, applicationId: string): Promise<string[]> {
  const rows = await oauthDb(db)
    .selectFrom('credentials')
    .select('secret_hash')
    .where('application_id', '=', applicationId)
    .where('kind', '=', 'client_secret')
    .where('state', '=', 'active')
    .execute();
  return rows.map((r) => r.secret_hash);
}

// ---- revocations ------------------------------------------------------------------------------------------

export interface Revocation {
  kind: 'token' | 'grant';
  id: string;
  expiresAt: string;
}

export async function insertRevocation(db: Executor, r: Revocation, nowIso: string): Promise<void> {
  await oauthDb(db)
    .insertInto('oauth_revocations')
    .values({ kind: r.kind, id: r.id, revoked_at: nowIso, expires_at: r.expiresAt })
    .onConflict((oc) => oc.columns(['kind', 'id']).doNothing())
    .execute();
}

export async function listRevocations(db: Executor, nowIso: string): Promise<Revocation[]> {
  const rows = await oauthDb(db)
    .selectFrom('oauth_revocations')
    .select(['kind', 'id', 'expires_at'])
    .where('expires_at', '>', nowIso)
    .execute();
  return rows.map((r) => ({
    kind: r.kind === 'grant' ? 'grant' : 'token',
    id: r.id,
    expiresAt: r.expires_at,
  }));
}

export async function isRevoked(db: Executor, kind: 'token' | 'grant', id: string): Promise<boolean> {
  const row = await oauthDb(db)
    .selectFrom('oauth_revocations')
    .select('id')
    .where('kind', '=', kind)
    .where('id', '=', id)
    .executeTakeFirst();
  return row !== undefined;
}

export async function deleteExpiredRevocations(db: Executor, nowIso: string): Promise<void> {
  await oauthDb(db).deleteFrom('oauth_revocations').where('expires_at', '<=', nowIso).execute();
}

// ---- tokens issued ----------------------------------------------------------------------------------------

export interface TokenCount {
  bucket: string;
  applicationId: string;
  serviceId: string;
  accountId: string;
  grantType: string;
  count: number;
}

/** Adds to the hourly count of tokens issued (additive, so several control processes may write). */
export async function addTokenCounts(db: Executor, counts: readonly TokenCount[]): Promise<void> {
  for (const c of counts) {
    await oauthDb(db)
      .insertInto('oauth_token_counts')
      .values({
        bucket: c.bucket,
        application_id: c.applicationId,
        service_id: c.serviceId,
        account_id: c.accountId,
        grant_type: c.grantType,
        count: c.count,
      })
      .onConflict((oc) =>
        oc
          .columns(['application_id', 'grant_type', 'bucket'])
          .doUpdateSet({ count: sql`oauth_token_counts.count + excluded.count` }),
      )
      .execute();
  }
}

export async function selectTokenCounts(
  db: Executor,
  filter: { applicationId?: string; serviceId?: string; from: string; to: string },
): Promise<TokenCount[]> {
  let q = oauthDb(db)
    .selectFrom('oauth_token_counts')
    .selectAll()
    .where('bucket', '>=', filter.from)
    .where('bucket', '<', filter.to);
  if (filter.applicationId) q = q.where('application_id', '=', filter.applicationId);
  if (filter.serviceId) q = q.where('service_id', '=', filter.serviceId);
  const rows = await q.orderBy('bucket').execute();
  return rows.map((r) => ({
    bucket: r.bucket,
    applicationId: r.application_id,
    serviceId: r.service_id,
    accountId: r.account_id,
    grantType: r.grant_type,
    count: Number(r.count),
  }));
}
