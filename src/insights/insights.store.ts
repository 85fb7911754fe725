/** All SQL of insights: reads of the per-minute usage aggregates, findings, settings and quota alerts. */
import { sql } from 'kysely';
import { type Executor, toPage, type Page } from '../store/index.js';
import type { InsightFindingTable, InsightTables } from './insights-tables.js';

function idb(db: Executor) {
  return db.withTables<InsightTables>();
}

export interface RouteCallRow {
  application_id: string;
  route: string;
  status_class: string;
  latency_bucket: number;
  calls: number;
}

/** Calls per application, route, status class and latency bucket in `[from, to)` (minute buckets). */
export async function selectRouteCalls(
  db: Executor,
  f: { serviceId?: string; applicationId?: string; from: string; to: string },
): Promise<RouteCallRow[]> {
  let q = idb(db)
    .selectFrom('usage_route_calls')
    .select((eb) => [
      'application_id',
      'route',
      'status_class',
      'latency_bucket',
      eb.fn.sum<number>('calls').as('calls'),
    ])
    .where('bucket', '>=', f.from)
    .where('bucket', '<', f.to);
  if (f.serviceId) q = q.where('service_id', '=', f.serviceId);
  if (f.applicationId) q = q.where('application_id', '=', f.applicationId);
  const rows = await q.groupBy(['application_id', 'route', 'status_class', 'latency_bucket']).execute();
  return rows.map((r) => ({ ...r, latency_bucket: Number(r.latency_bucket), calls: Number(r.calls) }));
}

export interface PatternRow {
  application_id: string;
  kind: string;
  route: string;
  prior_route: string;
  lag: number;
  calls: number;
}

export async function selectPatterns(
  db: Executor,
  f: { serviceId: string; from: string; to: string },
): Promise<PatternRow[]> {
  const rows = await idb(db)
    .selectFrom('usage_call_patterns')
    .select((eb) => [
      'application_id',
      'kind',
      'route',
      'prior_route',
      'lag',
      eb.fn.sum<number>('calls').as('calls'),
    ])
    .where('service_id', '=', f.serviceId)
    .where('bucket', '>=', f.from)
    .where('bucket', '<', f.to)
    .groupBy(['application_id', 'kind', 'route', 'prior_route', 'lag'])
    .execute();
  return rows.map((r) => ({ ...r, lag: Number(r.lag), calls: Number(r.calls) }));
}

export interface TimelinePoint {
  at: string;
  calls: number;
  clientErrors: number;
  rateLimited: number;
  serverErrors: number;
  earlyRetries: number;
  readsAfterCreate: number;
}

/** One application's minutes with calls in `[from, to)`, the latest `max` of them, oldest first. */
export async function selectTimeline(
  db: Executor,
  f: { applicationId: string; from: string; to: string; max: number },
): Promise<TimelinePoint[]> {
  const calls = await idb(db)
    .selectFrom('usage_route_calls')
    .select([
      'bucket',
      sql<number>`sum(calls)`.as('calls'),
      sql<number>`sum(case when status_class = '4xx' then calls else 0 end)`.as('client_errors'),
      sql<number>`sum(case when status_class = '429' then calls else 0 end)`.as('rate_limited'),
      sql<number>`sum(case when status_class = '5xx' then calls else 0 end)`.as('server_errors'),
    ])
    .where('application_id', '=', f.applicationId)
    .where('bucket', '>=', f.from)
    .where('bucket', '<', f.to)
    .groupBy('bucket')
    .orderBy('bucket', 'desc')
    .limit(f.max)
    .execute();
  const patterns = await idb(db)
    .selectFrom('usage_call_patterns')
    .select(['bucket', 'kind', sql<number>`sum(calls)`.as('calls')])
    .where('application_id', '=', f.applicationId)
    .where('bucket', '>=', f.from)
    .where('bucket', '<', f.to)
    .groupBy(['bucket', 'kind'])
    .execute();
  const points = new Map<string, TimelinePoint>();
  for (const r of calls) {
    points.set(r.bucket, {
      at: r.bucket,
      calls: Number(r.calls),
      clientErrors: Number(r.client_errors),
      rateLimited: Number(r.rate_limited),
      serverErrors: Number(r.server_errors),
      earlyRetries: 0,
      readsAfterCreate: 0,
    });
  }
  for (const r of patterns) {
    const p = points.get(r.bucket);
    if (!p) continue;
    if (r.kind === 'early_retry') p.earlyRetries += Number(r.calls);
    if (r.kind === 'after_create') p.readsAfterCreate += Number(r.calls);
  }
  return [...points.values()].sort((a, b) => (a.at < b.at ? -1 : 1));
}

export interface ServiceApplication {
  id: string;
  account_id: string;
  name: string;
  created_at: string;
}

export async function selectServiceApplications(
  db: Executor,
  serviceId: string,
): Promise<ServiceApplication[]> {
  return db
    .selectFrom('applications')
    .select(['id', 'account_id', 'name', 'created_at'])
    .where('service_id', '=', serviceId)
    .where('state', '=', 'live')
    .execute();
}

/** The last day each application of a service had usage recorded (day rollups). */
export async function selectLastActiveDays(db: Executor, serviceId: string): Promise<Map<string, string>> {
  const rows = await idb(db)
    .selectFrom('usage_metric_counts')
    .select((eb) => ['application_id', eb.fn.max<string>('bucket').as('last')])
    .where('granularity', '=', 'day')
    .where('service_id', '=', serviceId)
    .groupBy('application_id')
    .execute();
  return new Map(rows.map((r) => [r.application_id, r.last]));
}

export async function selectServiceIds(db: Executor): Promise<string[]> {
  const rows = await db.selectFrom('services').select('id').orderBy('id').execute();
  return rows.map((r) => r.id);
}

// settings

export async function selectSettings(db: Executor, serviceId: string): Promise<string | null> {
  const row = await idb(db)
    .selectFrom('insight_settings')
    .select('settings')
    .where('service_id', '=', serviceId)
    .executeTakeFirst();
  return row?.settings ?? null;
}

export async function upsertSettings(
  db: Executor,
  serviceId: string,
  settings: string,
  now: string,
): Promise<void> {
  await idb(db)
    .insertInto('insight_settings')
    .values({ service_id: serviceId, settings, updated_at: now })
    .onConflict((oc) => oc.column('service_id').doUpdateSet({ settings, updated_at: now }))
    .execute();
}

// findings

export async function selectLiveFindings(db: Executor, serviceId: string): Promise<InsightFindingTable[]> {
  return idb(db)
    .selectFrom('insight_findings')
    .selectAll()
    .where('service_id', '=', serviceId)
    .where('state', '!=', 'resolved')
    .execute();
}

/** Inserts a finding; false when an unresolved one of the same key exists (another run opened it). */
export async function insertFinding(db: Executor, row: InsightFindingTable): Promise<boolean> {
  const result = await idb(db)
    .insertInto('insight_findings')
    .values(row)
    .onConflict((oc) => oc.column('open_key').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function updateFinding(
  db: Executor,
  id: string,
  fields: Partial<Omit<InsightFindingTable, 'id'>>,
): Promise<void> {
  await idb(db).updateTable('insight_findings').set(fields).where('id', '=', id).execute();
}

export async function selectFinding(db: Executor, id: string): Promise<InsightFindingTable | undefined> {
  return idb(db).selectFrom('insight_findings').selectAll().where('id', '=', id).executeTakeFirst();
}

export interface FindingFilter {
  applicationId?: string | undefined;
  accountId?: string | undefined;
  serviceId?: string | undefined;
  kind?: string | undefined;
  state?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

/** Findings newest first, paged by id (ids sort by creation time). */
export async function selectFindings(db: Executor, f: FindingFilter): Promise<Page<InsightFindingTable>> {
  let q = idb(db).selectFrom('insight_findings').selectAll();
  if (f.applicationId) q = q.where('application_id', '=', f.applicationId);
  if (f.accountId) q = q.where('account_id', '=', f.accountId);
  if (f.serviceId) q = q.where('service_id', '=', f.serviceId);
  if (f.kind) q = q.where('kind', '=', f.kind);
  if (f.state) q = q.where('state', '=', f.state);
  if (f.cursor) q = q.where('id', '<', f.cursor);
  const rows = await q
    .orderBy('id', 'desc')
    .limit(f.limit + 1)
    .execute();
  return toPage(rows, f.limit);
}

// quota alerts

/** Records a level as announced; false when it already was (another process, or an earlier run). */
export async function claimQuotaAlert(
  db: Executor,
  row: {
    application_id: string;
    limit_id: string;
    window_start: string;
    level: number;
    used: number;
    limit_value: number;
    announced_at: string;
  },
): Promise<boolean> {
  const result = await idb(db)
    .insertInto('quota_alerts')
    .values(row)
    .onConflict((oc) => oc.columns(['application_id', 'limit_id', 'window_start', 'level']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function selectQuotaAlerts(
  db: Executor,
  applicationId: string,
): Promise<
  {
    limit_id: string;
    window_start: string;
    level: number;
    used: number;
    limit_value: number;
    announced_at: string;
  }[]
> {
  const rows = await idb(db)
    .selectFrom('quota_alerts')
    .select(['limit_id', 'window_start', 'level', 'used', 'limit_value', 'announced_at'])
    .where('application_id', '=', applicationId)
    .orderBy('announced_at', 'desc')
    .limit(200)
    .execute();
  return rows.map((r) => ({
    ...r,
    used: Number(r.used),
    limit_value: Number(r.limit_value),
    level: Number(r.level),
  }));
}

/** The applications with the most calls in `[from, to)` (the most engaged partners), with their names. */
export async function selectTopApplications(
  db: Executor,
  f: { from: string; to: string; limit: number },
): Promise<{ application_id: string; name: string; account_id: string; calls: number }[]> {
  const rows = await idb(db)
    .selectFrom('usage_route_calls as u')
    .innerJoin('applications as a', 'a.id', 'u.application_id')
    .select((eb) => ['u.application_id', 'a.name', 'a.account_id', eb.fn.sum<number>('u.calls').as('calls')])
    .where('u.bucket', '>=', f.from)
    .where('u.bucket', '<', f.to)
    .groupBy(['u.application_id', 'a.name', 'a.account_id'])
    .orderBy('calls', 'desc')
    .limit(f.limit)
    .execute();
  return rows.map((r) => ({ ...r, calls: Number(r.calls) }));
}

/**
 * Claims round `roundStart` of a periodic job for `holder`: true for exactly one of several claims of the same
 * round (the row is inserted, or moved forward from an older round; a claim of an older round than the stored one
 * changes nothing). Each statement is atomic on both dialects, so no lock is held across the job's run.
 */
export async function claimJobRound(
  db: Executor,
  claim: { job: string; roundStart: string; holder: string; at: string },
): Promise<boolean> {
  const row = { job: claim.job, round_start: claim.roundStart, holder: claim.holder, claimed_at: claim.at };
  const inserted = await idb(db)
    .insertInto('job_rounds')
    .values(row)
    .onConflict((oc) => oc.column('job').doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) return true;
  const updated = await idb(db)
    .updateTable('job_rounds')
    .set({ round_start: row.round_start, holder: row.holder, claimed_at: row.claimed_at })
    .where('job', '=', claim.job)
    .where('round_start', '<', claim.roundStart)
    .executeTakeFirst();
  return Number(updated.numUpdatedRows) > 0;
}

export interface StaleCredentialRow {
  id: string;
  application_id: string;
  account_id: string;
  kind: string;
  display_prefix: string;
  created_at: string;
  last_used_at: string | null;
}

/**
 * The active keys (`user_key`, `app_key`: the credentials the gateway sees and marks used) of a service's live
 * applications that were never used and are older than `before`, or were last used before it.
 */
export async function selectStaleCredentials(
  db: Executor,
  serviceId: string,
  before: string,
): Promise<StaleCredentialRow[]> {
  return db
    .selectFrom('credentials as c')
    .innerJoin('applications as a', 'a.id', 'c.application_id')
    .select([
      'c.id',
      'c.application_id',
      'a.account_id',
      'c.kind',
      'c.display_prefix',
      'c.created_at',
      'c.last_used_at',
    ])
    .where('a.service_id', '=', serviceId)
    .where('a.state', '=', 'live')
    .where('c.state', '=', 'active')
    .where('c.kind', 'in', ['user_key', 'app_key'])
    .where((eb) =>
      eb.or([
        eb.and([eb('c.last_used_at', 'is', null), eb('c.created_at', '<', before)]),
        eb('c.last_used_at', '<', before),
      ]),
    )
    .orderBy('c.id')
    .execute();
}
