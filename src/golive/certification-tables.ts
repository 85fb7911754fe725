import type { Generated } from 'kysely';

/** Table types of certification (migration 0015_certification), joined to the store's `Database` with `withTables`. */
export interface CertificationPlanTable {
  service_id: string;
  /** The plan, JSON (see `CertificationPlan`). */
  plan: string;
  updated_at: string;
  /** `<actor type>:<actor id>` */
  updated_by: string;
}

export interface CertificationRunTable {
  id: string;
  application_id: string;
  service_id: string;
  account_id: string;
  /** running | passed | failed | cancelled */
  state: string;
  /** The plan at the start, JSON. */
  plan: string;
  started_at: string;
  ends_at: string;
  finished_at: string | null;
  /** JSON: `CheckResult[]` (empty while running). */
  results: string;
  started_by: string;
}

export interface CertificationEvidenceTable {
  id: string;
  run_id: string;
  item_key: string;
  /** image/png | image/jpeg | image/webp | image/gif */
  content_type: string;
  bytes: Buffer;
  size: number;
  sha256: string;
  uploaded_by: string;
  uploaded_at: string;
  /** pending | accepted | rejected */
  review_state: string;
  review_comment: string;
  reviewed_by: string | null;
  reviewed_at: string | null;
}

/** One call of a run as the gateway saw it (written by the usage flush). */
export interface CertificationCallTable {
  id: Generated<number>;
  run_id: string;
  /** ISO 8601 with milliseconds. */
  at: string;
  method: string;
  path: string;
  /** The first mapping rule that matched, '' when none. */
  route: string;
  status: number;
  /** '' | rate_limit | server_error | unavailable | slow | expired_token */
  fault: string;
  retry_after_s: number;
  idempotency_key: string;
  credential: string;
  latency_ms: number;
}

export type CertificationTables = {
  certification_calls: CertificationCallTable;
  certification_plans: CertificationPlanTable;
  certification_runs: CertificationRunTable;
  certification_evidence: CertificationEvidenceTable;
};
