/** Table types of the webhooks context (migration 0009_webhooks), kept here so other contexts never see them. */
import type { Flag, JsonText, Timestamp } from '../store/index.js';

export interface WebhookEndpointTable {
  id: string;
  url: string;
  description: string;
  /** JSON array of event types; ["*"]: every type */
  event_types: JsonText;
  enabled: Flag;
  /** why Trellis disabled it (gone: the endpoint answered 410); null when enabled, or disabled by hand */
  disabled_reason: string | null;
  /** the signing secret (`whsec_…`), sealed (see oauth/key-encryption.ts) */
  secret: string;
  secret_prefix: string;
  /** the secret before the last rotation, sealed; signs beside the current one until it expires */
  previous_secret: string | null;
  previous_secret_expires_at: Timestamp | null;
  /** deliveries per second the provider allows (migration 0018); null: no limit */
  rate_per_second?: number | null;
  /** the owner's lower rate (never above the provider's); null: the provider's */
  owner_rate_per_second?: number | null;
  /** the first failed attempt since the last success; null while it succeeds */
  failing_since?: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookMessageTable {
  /** also the `webhook-id` header: the same on every attempt */
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  /** the JSON body, fixed when the message is made */
  body: string;
  /** pending | succeeded | failed */
  state: string;
  attempts: number;
  next_attempt_at: Timestamp;
  /** a worker's lease: nobody else claims the message before then */
  locked_until: Timestamp | null;
  locked_by: string | null;
  last_status: number | null;
  last_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookAttemptTable {
  id: string;
  message_id: string;
  endpoint_id: string;
  attempted_at: Timestamp;
  /** the HTTP status; null when there was no answer (refused, timed out, redirected) */
  status: number | null;
  /** succeeded | failed */
  outcome: string;
  latency_ms: number;
  /** at most 1 KiB of the answer */
  response_excerpt: string;
  error: string | null;
}

export type WebhookTables = {
  webhook_endpoints: WebhookEndpointTable;
  webhook_messages: WebhookMessageTable;
  webhook_attempts: WebhookAttemptTable;
};
