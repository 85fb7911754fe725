/** Table types of the usage tables (migration 0002_usage), joined to the store's `Database` with `withTables`. */
import type { Generated } from 'kysely';

export type Granularity = 'minute' | 'hour' | 'day';

export interface UsageMetricCountTable {
  granularity: string;
  /** ISO 8601 start of the bucket. */
  bucket: string;
  service_id: string;
  application_id: string;
  account_id: string;
  metric_id: string;
  value: number;
}

export interface UsageCallTable {
  /** ISO 8601 start of the minute. */
  bucket: string;
  /** '' when the call matched no service. */
  service_id: string;
  /** '' when the call was refused before an application was known. */
  application_id: string;
  account_id: string;
  /** '' when the plan names no end user or the call carried none. */
  end_user: string;
  client_ip: string;
  status: number;
  calls: number;
  latency_ms_sum: number;
  latency_ms_max: number;
  bytes_in: number;
  bytes_out: number;
}

/** Calls per minute, application, route, status class and latency bucket (migration 0008_insights). */
export interface UsageRouteCallTable {
  bucket: string;
  service_id: string;
  application_id: string;
  /** The id of the first mapping rule that matched; '' when none did. */
  route: string;
  /** '2xx' | '3xx' | '4xx' | '429' | '5xx' */
  status_class: string;
  /** Index of the log-spaced latency bucket (see call-patterns.ts). */
  latency_bucket: number;
  calls: number;
}

/** Counted call patterns per minute (migration 0008_insights). */
export interface UsageCallPatternTable {
  bucket: string;
  service_id: string;
  application_id: string;
  /**
   * 'after_create': a read following the application's last create; 'early_retry': a call before Retry-After
   * passed; 'repeat_failure': the same request again within 5 s of its failure.
   */
  kind: string;
  route: string;
  /** The create's route for 'after_create'; the failure's class ('4xx' | '5xx') for 'repeat_failure'; '' otherwise. */
  prior_route: string;
  /** The lag's upper bound in seconds: 'after_create' 1, 2, 5, 10, 30, 60; 'repeat_failure' 1, 2, 5; 0 otherwise. */
  lag: number;
  calls: number;
}

/** Flushed sums not yet in the tables above (migration 0021_usage_journal, see usage-journal.ts). */
export interface UsageJournalTable {
  seq: Generated<number>;
  written_at: string;
  /** The sums as usage-journal.ts encodes them. */
  body: string;
}

export type UsageTables = {
  usage_journal: UsageJournalTable;
  usage_metric_counts: UsageMetricCountTable;
  usage_calls: UsageCallTable;
  usage_route_calls: UsageRouteCallTable;
  usage_call_patterns: UsageCallPatternTable;
};
