/** SQL of the catalog: services, metrics, mapping rules, plans, limits. Rows are mapped to API shapes here. */
import type { Selectable } from 'kysely';
import type {
  Executor,
  MappingRuleTable,
  MetricTable,
  PageRequest,
  PlanLimitTable,
  PlanTable,
  ServiceTable,
} from '../store/index.js';
import { toPage } from '../store/index.js';
import type { MappingRule, Metric, Plan, PlanLimit, Service } from './schemas.js';

export function toService(r: Selectable<ServiceTable>): Service {
  return {
    id: r.id,
    name: r.name,
    systemName: r.system_name,
    description: r.description,
    upstreamProduction: r.upstream_production,
    upstreamSandbox: r.upstream_sandbox,
    authMode: r.auth_mode as Service['authMode'],
    credentialsLocation: r.credentials_location as Service['credentialsLocation'],
    userKeyName: r.user_key_name,
    appIdName: r.app_id_name,
    appKeyName: r.app_key_name,
    secretToken: r.secret_token,
    gatewayHost: r.gateway_host,
    gatewayPathPrefix: r.gateway_path_prefix,
    limiterMode: r.limiter_mode as Service['limiterMode'],
    limiterFailureMode: r.limiter_failure_mode as Service['limiterFailureMode'],
    maxBodyBytes: Number(r.max_body_bytes),
    forwardBearerToken: Number(r.forward_bearer_token) === 1,
    endUserKeySource: r.end_user_key_source === 'claim' ? 'claim' : 'header',
    endUserKeyName: r.end_user_key_name,
    portalState: r.portal_state === 'draft' ? 'draft' : 'published',
    hasOpenapi: r.openapi !== null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function toMetric(r: Selectable<MetricTable>): Metric {
  return {
    id: r.id,
    serviceId: r.service_id,
    systemName: r.system_name,
    friendlyName: r.friendly_name,
    unit: r.unit,
    description: r.description,
    parentId: r.parent_id,
    kind: r.kind === 'method' ? 'method' : 'metric',
    createdAt: r.created_at,
  };
}

export function toMappingRule(r: Selectable<MappingRuleTable>): MappingRule {
  return {
    id: r.id,
    serviceId: r.service_id,
    httpMethod: r.http_method,
    pattern: r.pattern,
    metricId: r.metric_id,
    delta: Number(r.delta),
    position: Number(r.position),
    last: r.last === 1,
    createdAt: r.created_at,
  };
}

export function toPlanLimit(r: Selectable<PlanLimitTable>): PlanLimit {
  return {
    id: r.id,
    planId: r.plan_id,
    metricId: r.metric_id,
    period: r.period,
    value: Number(r.value),
    scope: r.scope,
  };
}

function toPlan(r: Selectable<PlanTable>, limits: PlanLimit[], disabledMetricIds: string[]): Plan {
  return {
    id: r.id,
    serviceId: r.service_id,
    name: r.name,
    systemName: r.system_name,
    description: r.description,
    state: r.state as Plan['state'],
    approvalRequired: r.approval_required === 1,
    isDefault: r.is_default === 1,
    trialDays: Number(r.trial_days),
    endUserKeySource: r.end_user_key_source as Plan['endUserKeySource'],
    endUserKeyName: r.end_user_key_name,
    limits,
    disabledMetricIds,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

// services

export async function findServiceRow(db: Executor, id: string) {
  return db.selectFrom('services').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findServiceBySystemName(db: Executor, systemName: string) {
  return db.selectFrom('services').selectAll().where('system_name', '=', systemName).executeTakeFirst();
}

export async function listServiceRows(db: Executor, page: PageRequest) {
  let q = db
    .selectFrom('services')
    .selectAll()
    .orderBy('id')
    .limit(page.limit + 1);
  if (page.cursor) q = q.where('id', '>', page.cursor);
  return toPage((await q.execute()).map(toService), page.limit);
}

// metrics

export async function listMetricRows(db: Executor, serviceId: string) {
  return (
    await db.selectFrom('metrics').selectAll().where('service_id', '=', serviceId).orderBy('id').execute()
  ).map(toMetric);
}

export async function findMetricRow(db: Executor, id: string) {
  return db.selectFrom('metrics').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findHitsMetric(db: Executor, serviceId: string) {
  return db
    .selectFrom('metrics')
    .selectAll()
    .where('service_id', '=', serviceId)
    .where('system_name', '=', 'hits')
    .executeTakeFirstOrThrow();
}

// mapping rules

export async function listMappingRuleRows(db: Executor, serviceId: string) {
  return (
    await db
      .selectFrom('mapping_rules')
      .selectAll()
      .where('service_id', '=', serviceId)
      .orderBy('position')
      .orderBy('id')
      .execute()
  ).map(toMappingRule);
}

export async function findMappingRuleRow(db: Executor, id: string) {
  return db.selectFrom('mapping_rules').selectAll().where('id', '=', id).executeTakeFirst();
}

/** What makes a mapping rule the same as another (unique since migration 0022): not its delta, position or `last`. */
export interface MappingRuleKey {
  serviceId: string;
  httpMethod: string;
  pattern: string;
  metricId: string;
}

/** The service's rule with this verb, pattern and metric, other than `exceptId`; at most one exists. */
export async function findMappingRuleByKey(db: Executor, key: MappingRuleKey, exceptId?: string) {
  let query = db
    .selectFrom('mapping_rules')
    .selectAll()
    .where('service_id', '=', key.serviceId)
    .where('http_method', '=', key.httpMethod)
    .where('pattern', '=', key.pattern)
    .where('metric_id', '=', key.metricId);
  if (exceptId !== undefined) query = query.where('id', '<>', exceptId);
  return query.executeTakeFirst();
}

export async function nextRulePosition(db: Executor, serviceId: string): Promise<number> {
  const row = await db
    .selectFrom('mapping_rules')
    .select((eb) => eb.fn.max('position').as('p'))
    .where('service_id', '=', serviceId)
    .executeTakeFirst();
  return row?.p === null || row?.p === undefined ? 1 : Number(row.p) + 1;
}

// plans

async function hydratePlans(db: Executor, rows: Selectable<PlanTable>[]): Promise<Plan[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const limits = await db
    .selectFrom('plan_limits')
    .selectAll()
    .where('plan_id', 'in', ids)
    .orderBy('id')
    .execute();
  const disabled = await db
    .selectFrom('plan_disabled_metrics')
    .selectAll()
    .where('plan_id', 'in', ids)
    .execute();
  return rows.map((r) =>
    toPlan(
      r,
      limits.filter((l) => l.plan_id === r.id).map(toPlanLimit),
      disabled.filter((d) => d.plan_id === r.id).map((d) => d.metric_id),
    ),
  );
}

export async function findPlan(db: Executor, id: string): Promise<Plan | undefined> {
  const row = await db.selectFrom('plans').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? (await hydratePlans(db, [row]))[0] : undefined;
}

export async function listPlans(
  db: Executor,
  filter: { serviceId?: string; state?: string },
): Promise<Plan[]> {
  let q = db.selectFrom('plans').selectAll().orderBy('id');
  if (filter.serviceId) q = q.where('service_id', '=', filter.serviceId);
  if (filter.state) q = q.where('state', '=', filter.state);
  return hydratePlans(db, await q.execute());
}

/** The limit of a plan for one metric, period and scope (at most one: a unique key). */
export async function findPlanLimitByKey(
  db: Executor,
  key: { planId: string; metricId: string; period: string; scope: string },
) {
  return db
    .selectFrom('plan_limits')
    .selectAll()
    .where('plan_id', '=', key.planId)
    .where('metric_id', '=', key.metricId)
    .where('period', '=', key.period)
    .where('scope', '=', key.scope)
    .executeTakeFirst();
}
