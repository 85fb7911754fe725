export {
  type Actor,
  type AuditEntry,
  type Change,
  type ChangeFeedEntry,
  latestChangeSeq,
  listAuditEntries,
  readChangesSince,
  notifyOutboxWrite,
  OUTBOX_CHANNEL,
  OUTBOX_LOCK_KEY,
  recordChange,
  recordChanges,
  systemActor,
} from './changes.store.js';
export { type ChangeDeps, runChange, runChanges } from './run-change.js';
export {
  checkEventPayload,
  type EventDefinition,
  type EventType,
  eventCatalogue,
  eventDefinition,
  eventTypes,
  WebhookEndpointView,
} from './catalogue.js';
