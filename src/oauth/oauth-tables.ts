/** Table types of the OAuth context (migration 0004_oauth), kept here so other contexts never see them. */
import type { JsonText, Timestamp } from '../store/index.js';

export interface OAuthModelTable {
  /** oidc-provider model name: Grant, AuthorizationCode, RefreshToken, Session, Interaction … */
  model: string;
  id: string;
  payload: JsonText;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  expires_at: Timestamp | null;
  consumed_at: Timestamp | null;
}

export interface OAuthSigningKeyTable {
  kid: string;
  alg: string;
  /** next | current | retired */
  state: string;
  public_jwk: JsonText;
  /** The private JWK, sealed with the key-encryption secret (see key-encryption.ts). */
  private_jwk: string;
  created_at: Timestamp;
  activated_at: Timestamp | null;
  retired_at: Timestamp | null;
  expires_at: Timestamp | null;
}

export interface OAuthSecretTable {
  name: string;
  /** Sealed (see key-encryption.ts). */
  value: string;
  created_at: Timestamp;
}

export interface OAuthServiceSettingsTable {
  service_id: string;
  access_token_ttl: number;
  refresh_token_ttl: number;
  login_url: string;
  /** Sealed secret that signs login assertions; null until one is generated. */
  login_secret: string | null;
  /** trellis | external */
  token_issuer: string;
  external_issuer: string;
  external_jwks_url: string;
  external_audience: string;
  external_client_claim: string;
  updated_at: Timestamp;
}

export interface OAuthClientSettingsTable {
  application_id: string;
  redirect_uris: JsonText;
  external_client_id: string | null;
  updated_at: Timestamp;
}

export interface OAuthRevocationTable {
  /** token (a JWT's jti) | grant (every token of a grant) */
  kind: string;
  id: string;
  revoked_at: Timestamp;
  expires_at: Timestamp;
}

export interface OAuthTokenCountTable {
  /** Start of the hour, ISO 8601 UTC. */
  bucket: Timestamp;
  application_id: string;
  service_id: string;
  account_id: string;
  grant_type: string;
  count: number;
}

export type OAuthTables = {
  oauth_models: OAuthModelTable;
  oauth_signing_keys: OAuthSigningKeyTable;
  oauth_secrets: OAuthSecretTable;
  oauth_service_settings: OAuthServiceSettingsTable;
  oauth_client_settings: OAuthClientSettingsTable;
  oauth_revocations: OAuthRevocationTable;
  oauth_token_counts: OAuthTokenCountTable;
};
