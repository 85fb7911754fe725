/** All SQL of usage: the additive upserts of a flush and the chart queries. */
import { sql } from 'kysely';
import type { Executor } from '../store/index.js';
import type { Granularity, UsageCallTable, UsageMetricCountTable, UsageTables } from './usage-tables.js';

/** Rows per INSERT: keeps SQLite under its bound-parameter limit and PostgreSQL statements small. */
const CHUNK = 400;

function usageDb(db: Executor) {
  return db.withTables<UsageTables>();
}

/** Adds a batch of aggregated counts in one transaction: all of it is counted, or none (and it is retried). */
export async function addUsage(
  db: Executor,
  metricRows: readonly UsageMetricCountTable[],
  callRows: readonly UsageCallTable[],
): Promise<void> {
  const write = async (tx: Executor) => {
    const u = usageDb(tx);
    for (let i = 0; i < metricRows.length; i += CHUNK) {
      await u
        .insertInto('usage_metric_counts')
        .values(metricRows.slice(i, i + CHUNK))
        .onConflict((oc) =>
          oc.columns(['granularity', 'application_id', 'metric_id', 'bucket']).doUpdateSet({
            value: sql`usage_metric_counts.value + excluded.value`,
          }),
        )
        .execute();
    }
    for (let i = 0; i < callRows.length; i += CHUNK) {
      await u
        .insertInto('usage_calls')
        .values(callRows.slice(i, i + CHUNK))
        .onConflict((oc) =>
          oc
            .columns(['bucket', 'service_id', 'application_id', 'end_user', 'client_ip', 'status'])
            .doUpdateSet({
              calls: sql`usage_calls.calls + excluded.calls`,
              latency_ms_sum: sql`usage_calls.latency_ms_sum + excluded.latency_ms_sum`,
              latency_ms_max: sql`case when usage_calls.latency_ms_max > excluded.latency_ms_max then usage_calls.latency_ms_max else excluded.latency_ms_max end`,
              bytes_in: sql`usage_calls.bytes_in + excluded.bytes_in`,
              bytes_out: sql`usage_calls.bytes_out + excluded.bytes_out`,
            }),
        )
        .execute();
    }
  };
  if (db.isTransaction) await write(db);
  else await db.transaction().execute(write);
}

export interface MetricCountFilter {
  granularity: Granularity;
  from: string;
  to: string;
  serviceId?: string | undefined;
  applicationId?: string | undefined;
  accountId?: string | undefined;
  metricId?: string | undefined;
}

/** Sums per metric and bucket in `[from, to)`. */
export async function selectMetricCounts(
  db: Executor,
  f: MetricCountFilter,
): Promise<{ metric_id: string; bucket: string; value: number }[]> {
  let q = usageDb(db)
    .selectFrom('usage_metric_counts')
    .select((eb) => ['metric_id', 'bucket', eb.fn.sum<number>('value').as('value')])
    .where('granularity', '=', f.granularity)
    .where('bucket', '>=', f.from)
    .where('bucket', '<', f.to);
  if (f.serviceId) q = q.where('service_id', '=', f.serviceId);
  if (f.applicationId) q = q.where('application_id', '=', f.applicationId);
  if (f.accountId) q = q.where('account_id', '=', f.accountId);
  if (f.metricId) q = q.where('metric_id', '=', f.metricId);
  const rows = await q.groupBy(['metric_id', 'bucket']).orderBy('bucket').execute();
  return rows.map((r) => ({ metric_id: r.metric_id, bucket: r.bucket, value: Number(r.value) }));
}

export interface CallFilter {
  granularity: Granularity;
  from: string;
  to: string;
  serviceId?: string | undefined;
  applicationId?: string | undefined;
}

export interface CallRow {
  bucket: string;
  calls: number;
  client_errors: number;
  server_errors: number;
  latency_ms_sum: number;
  latency_ms_max: number;
  bytes_in: number;
  bytes_out: number;
}

/** Call counts, errors, latency and bytes per bucket; hours and days group minutes by their ISO prefix. */
export async function selectCalls(db: Executor, f: CallFilter): Promise<CallRow[]> {
  const width = f.granularity === 'minute' ? 16 : f.granularity === 'hour' ? 13 : 10;
  const bucketExpr = sql<string>`substr(bucket, 1, ${sql.lit(width)})`;
  let q = usageDb(db)
    .selectFrom('usage_calls')
    .select((eb) => [
      bucketExpr.as('bucket'),
      eb.fn.sum<number>('calls').as('calls'),
      sql<number>`sum(case when status >= 400 and status < 500 then calls else 0 end)`.as('client_errors'),
      sql<number>`sum(case when status >= 500 then calls else 0 end)`.as('server_errors'),
      eb.fn.sum<number>('latency_ms_sum').as('latency_ms_sum'),
      eb.fn.max<number>('latency_ms_max').as('latency_ms_max'),
      eb.fn.sum<number>('bytes_in').as('bytes_in'),
      eb.fn.sum<number>('bytes_out').as('bytes_out'),
    ])
    .where('bucket', '>=', f.from)
    .where('bucket', '<', f.to);
  if (f.serviceId) q = q.where('service_id', '=', f.serviceId);
  if (f.applicationId) q = q.where('application_id', '=', f.applicationId);
  const rows = await q.groupBy(bucketExpr).orderBy(bucketExpr).execute();
  return rows.map((r) => ({
    bucket: r.bucket,
    calls: Number(r.calls),
    client_errors: Number(r.client_errors),
    server_errors: Number(r.server_errors),
    latency_ms_sum: Number(r.latency_ms_sum),
    latency_ms_max: Number(r.latency_ms_max),
    bytes_in: Number(r.bytes_in),
    bytes_out: Number(r.bytes_out),
  }));
}
