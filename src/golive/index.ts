/** The path to live (issue 11): go-live requests, the provider's decision, production keys collected once. */
export * from './schemas.js';
export type { GoLiveTables } from './golive-tables.js';
export {
  approveGoLive,
  collectProductionKey,
  getGoLiveRequest,
  goLiveOf,
  listGoLiveRequests,
  rejectGoLive,
  requestGoLive,
  revokeProduction,
  type GoLiveFilter,
} from './golive.js';
export { goliveAdminRoutes } from './admin-routes.js';
export { type Funnel, type FunnelAccount, programmeFunnel } from './funnel.js';
export * from './certification-schemas.js';
export type { CertificationTables } from './certification-tables.js';
export * from './evidence-schemas.js';
export {
  evidenceTooLarge,
  getEvidence,
  getEvidenceFile,
  imageTypeOf,
  listEvidence,
  reviewEvidence,
  uploadEvidence,
  type EvidenceFile,
  type EvidenceUpload,
} from './evidence.js';
export {
  checkWords,
  faultSentences,
  latestRuns,
  reportCard,
  runningRuns,
  type CheckLine,
  type ItemLine,
  type ReportCard,
} from './evidence-report.js';
export { evidenceAdminRoutes, sendEvidenceImage } from './evidence-routes.js';
export {
  deleteCertificationPlan,
  findCertificationPlan,
  getCertificationPlan,
  normalizePlan,
  putCertificationPlan,
} from './certification.js';
export {
  cancelCertificationRun,
  evaluateRun,
  getCertificationRun,
  judgeRunningRuns,
  listCertificationRuns,
  runCalls,
  startCertificationRun,
} from './certification-runs.js';
export { judgeChecks } from './certification-checks.js';
export { CERTIFICATION_JUDGE_MS, CertificationJob } from './certification-job.js';
