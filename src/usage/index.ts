/**
 * Usage: what every gateway call adds, summed per minute (with hour and day rollups) and queried for charts.
 * The gateway records; the control API and the portal query.
 */
export {
  type UsageLogger,
  type UsageRecord,
  UsageRecorder,
  type UsageRecorderOptions,
  type UsageRecorderStats,
  type UsageSink,
} from './usage-recorder.js';
export {
  ceilTo,
  floorTo,
  queryTraffic,
  queryUsage,
  type TrafficPoint,
  type TrafficQuery,
  type UsagePoint,
  type UsageQuery,
  type UsageSeries,
} from './usage-queries.js';
export { type ApplicationUsage, selectApplicationUsage } from './usage.store.js';
export { type UsageWriter, databaseWriter, threadWriter, usageWriterFor } from './usage-writer.js';
export type {
  Granularity,
  UsageCallPatternTable,
  UsageRouteCallTable,
  UsageTables,
} from './usage-tables.js';
export {
  addCertificationCalls,
  type CertificationCallRow,
  type CertificationMark,
} from './certification-calls.js';
export {
  CallPatterns,
  FOLLOW_LAGS,
  LATENCY_BASE,
  LATENCY_BUCKETS,
  latencyBucket,
  latencyOfBucket,
  statusClass,
} from './call-patterns.js';
