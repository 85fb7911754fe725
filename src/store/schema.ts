/**
 * Table types of the Trellis database. Both dialects store the same shapes: ids and timestamps (ISO 8601, UTC)
 * as text, flags as integers 0/1, JSON documents as text. That keeps one set of queries for SQLite and PostgreSQL.
 */
import type { ColumnType, Generated } from 'kysely';

/** 0 or 1 */
export type Flag = number;
/** An ISO 8601 UTC timestamp. */
export type Timestamp = string;
/** A JSON document stored as text. */
export type JsonText = string;

export interface ServiceTable {
  id: string;
  name: string;
  system_name: string;
  description: string;
  upstream_production: string;
  upstream_sandbox: string;
  /** user_key | app_id_app_key | oauth2 */
  auth_mode: string;
  /** header | query */
  credentials_location: string;
  user_key_name: string;
  app_id_name: string;
  app_key_name: string;
  secret_token: string | null;
  /** Requests whose Host header equals this are routed to the service (empty: any host). */
  gateway_host: string;
  /** Requests whose path starts with this are routed to the service; the prefix is removed upstream. */
  gateway_path_prefix: string;
  /** strict | batched */
  limiter_mode: string;
  /** open | closed: what the gateway does when the shared counters are unreachable */
  limiter_failure_mode: string;
  max_body_bytes: number;
  /** 1: an `oauth2` service's bearer token goes upstream; 0 (default): it is stripped */
  forward_bearer_token: Generated<Flag>;
  /** header | claim: where the service's end-user limits find the end user (migration 0010) */
  end_user_key_source: Generated<string>;
  /** the header or claim; empty: a plan names its own, or the verified token's `sub` (migration 0010) */
  end_user_key_name: Generated<string>;
  /** draft | published: whether the portal lists the service (with a published plan) (migration 0012) */
  portal_state: Generated<string>;
  openapi: JsonText | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** End-user limits of a whole service, whatever the application's plan (migration 0010). */
export interface ServiceEndUserLimitTable {
  id: string;
  service_id: string;
  metric_id: string;
  period: string;
  value: number;
  created_at: Timestamp;
}

export interface MetricTable {
  id: string;
  service_id: string;
  system_name: string;
  friendly_name: string;
  unit: string;
  description: string;
  /** null for standalone metrics (hits among them); the hits metric id for methods and metrics counted on hits */
  parent_id: string | null;
  /** metric | method (migration 0007; rows written without it are metrics) */
  kind: ColumnType<string, string | undefined, string>;
  created_at: Timestamp;
}

export interface MappingRuleTable {
  id: string;
  service_id: string;
  http_method: string;
  pattern: string;
  metric_id: string;
  delta: number;
  position: number;
  last: Flag;
  created_at: Timestamp;
}

export interface PlanTable {
  id: string;
  service_id: string;
  name: string;
  system_name: string;
  description: string;
  /** published | hidden */
  state: string;
  approval_required: Flag;
  is_default: Flag;
  trial_days: number;
  /** header | claim: where the end user of an application is identified, for end-user limits */
  end_user_key_source: string;
  end_user_key_name: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PlanLimitTable {
  id: string;
  plan_id: string;
  metric_id: string;
  /** minute | hour | day | week | month | year | eternity */
  period: string;
  value: number;
  /** application | end_user */
  scope: string;
  created_at: Timestamp;
}

export interface PlanDisabledMetricTable {
  plan_id: string;
  metric_id: string;
}

export interface AccountTable {
  id: string;
  name: string;
  /** pending | approved | suspended */
  state: string;
  custom_fields: JsonText;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface UserTable {
  id: string;
  account_id: string;
  email: string;
  name: string;
  /** admin | member */
  role: string;
  password_hash: string | null;
  custom_fields: JsonText;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface InvitationTable {
  id: string;
  account_id: string;
  email: string;
  role: string;
  token_hash: string;
  expires_at: Timestamp;
  accepted_at: Timestamp | null;
  created_at: Timestamp;
}

export interface ApplicationTable {
  id: string;
  account_id: string;
  service_id: string;
  plan_id: string;
  name: string;
  description: string;
  /** pending | live | suspended */
  state: string;
  /** sandbox | production */
  environment: string;
  /** Public identifier (app_id mode and OAuth client id). */
  app_id: string;
  /** JSON array of IPs and CIDRs; empty array: any address */
  allowed_ips: JsonText;
  custom_fields: JsonText;
  /** a plan the developer asked to move to, awaiting the provider */
  requested_plan_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CredentialTable {
  id: string;
  application_id: string;
  /** user_key | app_key | client_secret */
  kind: string;
  secret_hash: string;
  display_prefix: string;
  /** active | revoked */
  state: string;
  created_at: Timestamp;
  revoked_at: Timestamp | null;
  /** the latest call with this key, written by the usage flush (migration 0014); null: never used */
  last_used_at: Generated<Timestamp | null>;
}

export interface CustomFieldTable {
  id: string;
  /** account | user | application */
  target: string;
  name: string;
  label: string;
  required: Flag;
  /** JSON array of the allowed values (a select); empty text: free text (migration 0007) */
  choices: ColumnType<string, string | undefined, string>;
  /** forms list built-in and custom fields by position (migration 0007) */
  position: ColumnType<number, number | undefined, number>;
  created_at: Timestamp;
}

export interface AdminUserTable {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AdminTokenTable {
  id: string;
  name: string;
  /** read | read_write */
  scope: string;
  secret_hash: string;
  display_prefix: string;
  admin_user_id: string | null;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

export interface SettingTable {
  key: string;
  value: JsonText;
  updated_at: Timestamp;
}

export interface AuditLogTable {
  id: string;
  at: Timestamp;
  /** admin_token | admin_user | developer | system */
  actor_type: string;
  actor_id: string | null;
  action: string;
  entity_type: string;
  entity_id: string;
  data: JsonText;
}

/** The outbox: every domain event, written in the transaction of the change it describes. */
export interface EventTable {
  /** Monotonic sequence, the order workers drain in. */
  seq: Generated<number>;
  id: string;
  type: string;
  occurred_at: Timestamp;
  entity_type: string;
  entity_id: string;
  payload: JsonText;
  dispatched_at: Timestamp | null;
}

export interface Database {
  services: ServiceTable;
  metrics: MetricTable;
  mapping_rules: MappingRuleTable;
  plans: PlanTable;
  plan_limits: PlanLimitTable;
  service_end_user_limits: ServiceEndUserLimitTable;
  plan_disabled_metrics: PlanDisabledMetricTable;
  accounts: AccountTable;
  users: UserTable;
  invitations: InvitationTable;
  applications: ApplicationTable;
  credentials: CredentialTable;
  custom_fields: CustomFieldTable;
  admin_users: AdminUserTable;
  admin_tokens: AdminTokenTable;
  settings: SettingTable;
  audit_log: AuditLogTable;
  events: EventTable;
}
