/** Table types of consumer webhooks (migration 0017_consumer_webhooks), kept inside the webhooks context. */
import type { JsonText, Timestamp } from '../store/index.js';
import type { WebhookEndpointTable } from './webhook-tables.js';

/**
 * A webhook endpoint with the columns migration 0017 adds: a partner's endpoint names the application it was
 * registered for (and that application's account and service); the provider's own endpoints have nulls there.
 */
export type ConsumerEndpointTable = WebhookEndpointTable & {
  application_id: string | null;
  account_id: string | null;
  service_id: string | null;
};

export interface ServiceEventTypeTable {
  service_id: string;
  /** `<resource>.<verb>`, e.g. `paymentrequest.paid` */
  name: string;
  description: string;
  /** the JSON Schema of the payload */
  schema: JsonText;
  /** an example payload, valid against the schema */
  example: JsonText;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PublishedEventTable {
  /** also the body's `eventId` */
  id: string;
  service_id: string;
  type: string;
  application_id: string | null;
  account_id: string;
  payload: JsonText;
  idempotency_key: string | null;
  /** sha256 of the request as first published under the key */
  request_hash: string;
  /** messages made for it (one per subscribed endpoint) */
  messages: number;
  created_at: Timestamp;
}

export type ConsumerTables = {
  webhook_endpoints: ConsumerEndpointTable;
  service_event_types: ServiceEventTypeTable;
  published_events: PublishedEventTable;
};
