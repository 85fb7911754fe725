/** Table types of the usage tables (migration 0002_usage), joined to the store's `Database` with `withTables`. */

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

export type UsageTables = {
  usage_metric_counts: UsageMetricCountTable;
  usage_calls: UsageCallTable;
};
