export {
  type Actor,
  type AuditEntry,
  type Change,
  type ChangeFeedEntry,
  latestChangeSeq,
  listAuditEntries,
  readChangesSince,
  recordChange,
  systemActor,
} from './changes.store.js';
export { type ChangeDeps, runChange } from './run-change.js';
