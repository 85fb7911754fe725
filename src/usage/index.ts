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
  queryTraffic,
  queryUsage,
  type TrafficPoint,
  type TrafficQuery,
  type UsagePoint,
  type UsageQuery,
  type UsageSeries,
} from './usage-queries.js';
export type { Granularity, UsageTables } from './usage-tables.js';
