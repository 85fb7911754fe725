import type { Kysely } from 'kysely';

/**
 * The OAuth 2.0 authorization server (see src/oauth and docs/oauth.md): what oidc-provider persists (grants,
 * codes, refresh tokens, sessions, interactions), the signing keys, per-service and per-application OAuth
 * settings, revoked JWT access tokens, and tokens issued per application.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const ts = 'varchar(32)';
  const id = 'varchar(40)';

  // One table for every oidc-provider model: rows are looked up by (model, id), by grant (revoking a grant
  // revokes what it issued) and by session uid.
  await db.schema
    .createTable('oauth_models')
    .addColumn('model', 'varchar(40)', (c) => c.notNull())
    .addColumn('id', 'varchar(255)', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('grant_id', 'varchar(255)')
    .addColumn('uid', 'varchar(255)')
    .addColumn('user_code', 'varchar(255)')
    .addColumn('expires_at', ts)
    .addColumn('consumed_at', ts)
    .addPrimaryKeyConstraint('oauth_models_pk', ['model', 'id'])
    .execute();
  await db.schema.createIndex('oauth_models_grant').on('oauth_models').column('grant_id').execute();
  await db.schema.createIndex('oauth_models_uid').on('oauth_models').columns(['model', 'uid']).execute();
  await db.schema.createIndex('oauth_models_expiry').on('oauth_models').column('expires_at').execute();

  await db.schema
    .createTable('oauth_signing_keys')
    .addColumn('kid', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('alg', 'varchar(16)', (c) => c.notNull())
    // next (published, not yet signing) | current (signing) | retired (published until expires_at)
    .addColumn('state', 'varchar(10)', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('private_jwk', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('activated_at', ts)
    .addColumn('retired_at', ts)
    .addColumn('expires_at', ts)
    .execute();

  await db.schema
    .createTable('oauth_secrets')
    .addColumn('name', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('oauth_service_settings')
    .addColumn('service_id', id, (c) => c.primaryKey().references('services.id').onDelete('cascade'))
    .addColumn('access_token_ttl', 'integer', (c) => c.notNull())
    .addColumn('refresh_token_ttl', 'integer', (c) => c.notNull())
    .addColumn('login_url', 'varchar(2000)', (c) => c.notNull())
    .addColumn('login_secret', 'text')
    // trellis: tokens issued by Trellis; external: tokens of another issuer, checked against its JWKS
    .addColumn('token_issuer', 'varchar(10)', (c) => c.notNull())
    .addColumn('external_issuer', 'varchar(2000)', (c) => c.notNull())
    .addColumn('external_jwks_url', 'varchar(2000)', (c) => c.notNull())
    .addColumn('external_audience', 'varchar(500)', (c) => c.notNull())
    .addColumn('external_client_claim', 'varchar(100)', (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('oauth_client_settings')
    .addColumn('application_id', id, (c) => c.primaryKey().references('applications.id').onDelete('cascade'))
    .addColumn('redirect_uris', 'text', (c) => c.notNull())
    .addColumn('external_client_id', 'varchar(255)')
    .addColumn('updated_at', ts, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('oauth_client_settings_external')
    .on('oauth_client_settings')
    .column('external_client_id')
    .execute();

  // JWT access tokens are not stored, so revoking one records its id (or its grant) until it would expire.
  await db.schema
    .createTable('oauth_revocations')
    .addColumn('kind', 'varchar(10)', (c) => c.notNull())
    .addColumn('id', 'varchar(255)', (c) => c.notNull())
    .addColumn('revoked_at', ts, (c) => c.notNull())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .addPrimaryKeyConstraint('oauth_revocations_pk', ['kind', 'id'])
    .execute();
  await db.schema
    .createIndex('oauth_revocations_expiry')
    .on('oauth_revocations')
    .column('expires_at')
    .execute();

  await db.schema
    .createTable('oauth_token_counts')
    .addColumn('bucket', ts, (c) => c.notNull())
    .addColumn('application_id', id, (c) => c.notNull())
    .addColumn('service_id', id, (c) => c.notNull())
    .addColumn('account_id', id, (c) => c.notNull())
    .addColumn('grant_type', 'varchar(40)', (c) => c.notNull())
    .addColumn('count', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('oauth_token_counts_pk', ['application_id', 'grant_type', 'bucket'])
    .execute();
  await db.schema
    .createIndex('oauth_token_counts_service')
    .on('oauth_token_counts')
    .columns(['service_id', 'bucket'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'oauth_token_counts',
    'oauth_revocations',
    'oauth_client_settings',
    'oauth_service_settings',
    'oauth_secrets',
    'oauth_signing_keys',
    'oauth_models',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
