/**
 * Table types of the browser-facing tables (migration 0003_portal), joined to the store's `Database` with
 * `withTables`. The console shares sessions, login attempts and keys with the portal.
 */

export interface WebSessionTable {
  /** SHA-256 of the cookie value. */
  token_hash: string;
  /** developer | admin */
  kind: string;
  /** The user (developer) or admin user the session belongs to. */
  subject_id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
}

export interface PasswordResetTable {
  token_hash: string;
  user_id: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface LoginAttemptTable {
  id: string;
  /** What is throttled: `developer:email:<e-mail>`, `admin:ip:<address>` … */
  key: string;
  at: string;
}

export interface SsoTokenUsedTable {
  token_hash: string;
  expires_at: string;
}

export interface WebKeyTable {
  name: string;
  value: string;
  created_at: string;
}

export type PortalTables = {
  web_sessions: WebSessionTable;
  password_resets: PasswordResetTable;
  login_attempts: LoginAttemptTable;
  sso_tokens_used: SsoTokenUsedTable;
  web_keys: WebKeyTable;
};
