/**
 * Webhooks (issue 9): provider endpoints, the worker that fans the outbox out into signed deliveries, the
 * delivery log, and the management API routes. See docs/webhooks.md.
 */
export {
  createEndpoint,
  defaultRotationGraceSeconds,
  deleteEndpoint,
  getEndpoint,
  listEndpointMessages,
  listEndpoints,
  recoverFailedMessages,
  replayMessage,
  rotateEndpointSecret,
  sendTestMessage,
  updateEndpoint,
  type WebhookDeps,
  webhookDeps,
} from './endpoints.js';
export { retryJitter, retrySchedule, nextRetryDelay, parseRetryAfter } from './schedule.js';
export { generateSigningSecret, signatureHeader, webhookHeaders } from './signing.js';
export * from './schemas.js';
export {
  type AttemptOutcome,
  createWebhookWorker,
  messageBody,
  responseExcerptBytes,
  type TickResult,
  type WebhookSender,
  type WebhookWorker,
  type WebhookWorkerDeps,
  type WebhookWorkerOptions,
} from './worker.js';
export { webhookAdminRoutes } from './admin-routes.js';
export { queueFigures } from './webhooks.store.js';
// consumer webhooks: event types services declare, publishing, partners' endpoints
export * from './consumer-schemas.js';
export {
  createConsumerEndpoint,
  deleteConsumerEndpoint,
  getConsumerEndpoint,
  listConsumerEndpoints,
  updateConsumerEndpoint,
} from './consumer-endpoints.js';
export {
  declareEventType,
  deleteEventType,
  getServiceEventType,
  listServiceEventTypes,
  updateEventType,
} from './consumer-event-types.js';
export { publishEvent } from './consumer-publish.js';
