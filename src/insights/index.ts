/**
 * Insights: what the gateway's per-minute aggregates and the OAuth server's token counts say about how each
 * application calls the API — findings (token churn, poll after create, retry storms, error rates, latency rises,
 * dormant applications) with evidence and advice, integration health, quota alerts.
 */
export { emptyHistogram, type Health, healthOf, percentile, PERCENTILE_ERROR } from './health.js';
export {
  defaultInsightSettings,
  type InsightSettings,
  InsightSettingsPatch,
  InsightSettingsSchema,
  mergeSettings,
} from './settings.js';
export {
  type Detection,
  detect,
  findingKinds,
  type FindingKind,
  proposedPair,
  type Severity,
  windowAt,
} from './detectors.js';
export {
  changeFindingState,
  type FindingView,
  findingView,
  getFinding,
  type InsightsRun,
  listFindings,
  runInsights,
  serviceInsightSettings,
  updateInsightSettings,
} from './insights.js';
export {
  Finding,
  FindingKindSchema,
  FindingPayload,
  FindingStateSchema,
  QuotaAlertPayload,
} from './schemas.js';
export type { InsightTables } from './insights-tables.js';
export { insightsAdminRoutes } from './admin-routes.js';
export { type ApplicationHealth, applicationHealth, type RouteHealth } from './application-health.js';
export {
  QUOTA_LEVELS,
  type QuotaAlertsRun,
  runQuotaAlerts,
} from './quota-alerts.js';
export {
  INSIGHTS_JOB,
  InsightsJob,
  type InsightsJobDeps,
  type InsightsJobOptions,
} from './insights-job.js';
export { selectTopApplications } from './insights.store.js';
export { type PartnerInsights, partnerInsights } from './partner-view.js';
export { insightsMetrics } from './prometheus.js';
