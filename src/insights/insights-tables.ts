/** Table types of insights (migration 0008_insights), joined to the store's `Database` with `withTables`. */
import type { UsageTables } from '../usage/index.js';

export interface InsightFindingTable {
  id: string;
  service_id: string;
  application_id: string;
  account_id: string;
  /** token_churn | poll_after_create | retry_storm | error_rate | latency_rise | dormant */
  kind: string;
  /** What within the kind the finding is about (a route pair, a status class, ''): one open finding per subject. */
  subject: string;
  /** low | medium | high */
  severity: string;
  /** open | acknowledged | resolved */
  state: string;
  first_seen: string;
  last_seen: string;
  resolved_at: string | null;
  /** JSON: { numbers, timeline } */
  evidence: string;
  advice: string;
  created_at: string;
  updated_at: string;
  /** `application|kind|subject` while not resolved, null once resolved: unique (migration 0013). */
  open_key: string | null;
}

export interface InsightSettingsTable {
  service_id: string;
  /** JSON object; absent keys take the defaults. */
  settings: string;
  updated_at: string;
}

export interface QuotaAlertTable {
  application_id: string;
  limit_id: string;
  window_start: string;
  level: number;
  used: number;
  limit_value: number;
  announced_at: string;
}

/** The latest round of a periodic job some worker claimed (migration 0020): one row per job. */
export interface JobRoundTable {
  job: string;
  /** ISO start of the round, a multiple of the job's interval. */
  round_start: string;
  /** The worker that claimed it. */
  holder: string;
  claimed_at: string;
}

export type InsightTables = UsageTables & {
  insight_findings: InsightFindingTable;
  insight_settings: InsightSettingsTable;
  quota_alerts: QuotaAlertTable;
  job_rounds: JobRoundTable;
};
