/**
 * Operations on the catalog. Each takes its dependencies, checks the rules that span entities, and makes its
 * change in one transaction with its audit entry and domain event.
 */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { TrellisError, invalid, isoNow, newId, notFound } from '../kernel/index.js';
import { type Executor, type PageRequest, flag, isUniqueViolation } from '../store/index.js';
import {
  findHitsMetric,
  findMappingRuleRow,
  findMetricRow,
  findPlan,
  findPlanLimitRow,
  findServiceRow,
  listMappingRuleRows,
  listMetricRows,
  listPlans as listPlanRows,
  listServiceRows,
  nextRulePosition,
  toMappingRule,
  toMetric,
  toPlanLimit,
  toService,
} from './catalog.store.js';
import type {
  MappingRule,
  MappingRuleCreate,
  MappingRuleUpdate,
  Metric,
  MetricCreate,
  MetricUpdate,
  Plan,
  PlanCreate,
  PlanLimit,
  PlanLimitCreate,
  PlanUpdate,
  Service,
  ServiceCreate,
  ServiceUpdate,
} from './schemas.js';

/** 10 MiB: large enough for uploads, small enough that one request cannot exhaust the gateway. */
export const defaultMaxBodyBytes = 10 * 1024 * 1024;

async function conflictOnDuplicate<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isUniqueViolation(err)) throw new TrellisError('conflict', `${what} already exists.`);
    throw err;
  }
}

// services

export async function getService(db: Executor, id: string): Promise<Service> {
  const row = await findServiceRow(db, id);
  if (!row) throw notFound('service', id);
  return toService(row);
}

export function listServices(db: Executor, page: PageRequest) {
  return listServiceRows(db, page);
}

export async function createService(deps: ChangeDeps, actor: Actor, input: ServiceCreate): Promise<Service> {
  const now = isoNow(deps.clock);
  const id = newId('service');
  return conflictOnDuplicate(`A service with system name "${input.systemName}"`, () =>
    runChange(deps, actor, async (tx, record) => {
      await tx
        .insertInto('services')
        .values({
          id,
          name: input.name,
          system_name: input.systemName,
          description: input.description ?? '',
          upstream_production: input.upstreamProduction,
          upstream_sandbox: input.upstreamSandbox ?? input.upstreamProduction,
          auth_mode: input.authMode ?? 'user_key',
          credentials_location: input.credentialsLocation ?? 'header',
          user_key_name: input.userKeyName ?? 'X-API-Key',
          app_id_name: input.appIdName ?? 'X-App-Id',
          app_key_name: input.appKeyName ?? 'X-App-Key',
          secret_token: input.secretToken ?? null,
          gateway_host: input.gatewayHost ?? '',
          gateway_path_prefix: input.gatewayPathPrefix ?? `/${input.systemName}`,
          limiter_mode: input.limiterMode ?? 'strict',
          limiter_failure_mode: input.limiterFailureMode ?? 'open',
          max_body_bytes: input.maxBodyBytes ?? defaultMaxBodyBytes,
          openapi: null,
          created_at: now,
          updated_at: now,
        })
        .execute();
      const hitsId = newId('metric');
      await tx
        .insertInto('metrics')
        .values({
          id: hitsId,
          service_id: id,
          system_name: 'hits',
          friendly_name: 'Hits',
          unit: 'hit',
          description: 'Every call to the API.',
          parent_id: null,
          created_at: now,
        })
        .execute();
      const service = toService((await findServiceRow(tx, id))!);
      await record({ type: 'service.created', entityType: 'service', entityId: id, payload: { service } });
      return service;
    }),
  );
}

export async function updateService(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  input: ServiceUpdate,
): Promise<Service> {
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, id);
    await tx
      .updateTable('services')
      .set({
        ...(input.name !== undefined && { name: input.name }),
        ...(input.description !== undefined && { description: input.description }),
        ...(input.upstreamProduction !== undefined && { upstream_production: input.upstreamProduction }),
        ...(input.upstreamSandbox !== undefined && { upstream_sandbox: input.upstreamSandbox }),
        ...(input.authMode !== undefined && { auth_mode: input.authMode }),
        ...(input.credentialsLocation !== undefined && { credentials_location: input.credentialsLocation }),
        ...(input.userKeyName !== undefined && { user_key_name: input.userKeyName }),
        ...(input.appIdName !== undefined && { app_id_name: input.appIdName }),
        ...(input.appKeyName !== undefined && { app_key_name: input.appKeyName }),
        ...(input.secretToken !== undefined && { secret_token: input.secretToken }),
        ...(input.gatewayHost !== undefined && { gateway_host: input.gatewayHost }),
        ...(input.gatewayPathPrefix !== undefined && { gateway_path_prefix: input.gatewayPathPrefix }),
        ...(input.limiterMode !== undefined && { limiter_mode: input.limiterMode }),
        ...(input.limiterFailureMode !== undefined && { limiter_failure_mode: input.limiterFailureMode }),
        ...(input.maxBodyBytes !== undefined && { max_body_bytes: input.maxBodyBytes }),
        updated_at: isoNow(deps.clock),
      })
      .where('id', '=', id)
      .execute();
    const service = await getService(tx, id);
    await record({ type: 'service.updated', entityType: 'service', entityId: id, payload: { service } });
    return service;
  });
}

export async function deleteService(deps: ChangeDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    await getService(tx, id);
    const app = await tx
      .selectFrom('applications')
      .select('id')
      .where('service_id', '=', id)
      .executeTakeFirst();
    if (app)
      throw new TrellisError('invalid_state', 'The service still has applications; delete them first.');
    await tx.deleteFrom('services').where('id', '=', id).execute();
    await record({
      type: 'service.deleted',
      entityType: 'service',
      entityId: id,
      payload: { serviceId: id },
    });
  });
}

/** Stores the OpenAPI document of a service (as given: JSON text). */
export async function setServiceOpenapi(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  document: Record<string, unknown>,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    await getService(tx, id);
    await tx
      .updateTable('services')
      .set({ openapi: JSON.stringify(document), updated_at: isoNow(deps.clock) })
      .where('id', '=', id)
      .execute();
    await record({
      type: 'service.openapi_updated',
      entityType: 'service',
      entityId: id,
      payload: { serviceId: id },
    });
  });
}

export async function getServiceOpenapi(db: Executor, id: string): Promise<Record<string, unknown> | null> {
  const row = await findServiceRow(db, id);
  if (!row) throw notFound('service', id);
  return row.openapi === null ? null : (JSON.parse(row.openapi) as Record<string, unknown>);
}

// metrics and methods

export async function listMetrics(db: Executor, serviceId: string): Promise<Metric[]> {
  await getService(db, serviceId);
  return listMetricRows(db, serviceId);
}

export async function getMetric(db: Executor, serviceId: string, id: string): Promise<Metric> {
  const row = await findMetricRow(db, id);
  if (!row || row.service_id !== serviceId) throw notFound('metric', id);
  return toMetric(row);
}

/** Creates a metric (`kind: 'metric'`) or a method, a child of `hits` (`kind: 'method'`). */
export async function createMetric(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  kind: 'metric' | 'method',
  input: MetricCreate,
): Promise<Metric> {
  return conflictOnDuplicate(`A metric or method "${input.systemName}"`, () =>
    runChange(deps, actor, async (tx, record) => {
      await getService(tx, serviceId);
      const id = newId('metric');
      const parentId = kind === 'method' ? (await findHitsMetric(tx, serviceId)).id : null;
      await tx
        .insertInto('metrics')
        .values({
          id,
          service_id: serviceId,
          system_name: input.systemName,
          friendly_name: input.friendlyName,
          unit: input.unit ?? 'hit',
          description: input.description ?? '',
          parent_id: parentId,
          created_at: isoNow(deps.clock),
        })
        .execute();
      const metric = await getMetric(tx, serviceId, id);
      await record({
        type: `${kind}.created`,
        entityType: 'metric',
        entityId: id,
        payload: { metric, serviceId },
      });
      return metric;
    }),
  );
}

export async function updateMetric(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  id: string,
  input: MetricUpdate,
): Promise<Metric> {
  return runChange(deps, actor, async (tx, record) => {
    await getMetric(tx, serviceId, id);
    await tx
      .updateTable('metrics')
      .set({
        ...(input.friendlyName !== undefined && { friendly_name: input.friendlyName }),
        ...(input.unit !== undefined && { unit: input.unit }),
        ...(input.description !== undefined && { description: input.description }),
      })
      .where('id', '=', id)
      .execute();
    const metric = await getMetric(tx, serviceId, id);
    await record({
      type: `${metric.kind}.updated`,
      entityType: 'metric',
      entityId: id,
      payload: { metric, serviceId },
    });
    return metric;
  });
}

export async function deleteMetric(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  id: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const metric = await getMetric(tx, serviceId, id);
    if (metric.systemName === 'hits')
      throw new TrellisError('invalid_state', 'The hits metric cannot be deleted.');
    await tx.deleteFrom('metrics').where('id', '=', id).execute();
    await record({
      type: `${metric.kind}.deleted`,
      entityType: 'metric',
      entityId: id,
      payload: { metric, serviceId },
    });
  });
}

// mapping rules

export async function listMappingRules(db: Executor, serviceId: string): Promise<MappingRule[]> {
  await getService(db, serviceId);
  return listMappingRuleRows(db, serviceId);
}

export async function getMappingRule(db: Executor, serviceId: string, id: string): Promise<MappingRule> {
  const row = await findMappingRuleRow(db, id);
  if (!row || row.service_id !== serviceId) throw notFound('mapping rule', id);
  return toMappingRule(row);
}

async function checkRuleMetric(db: Executor, serviceId: string, metricId: string): Promise<void> {
  const metric = await findMetricRow(db, metricId);
  if (!metric || metric.service_id !== serviceId) {
    throw invalid([{ field: 'metricId', message: `no metric or method ${metricId} in this service` }]);
  }
}

export async function createMappingRule(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  input: MappingRuleCreate,
): Promise<MappingRule> {
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    await checkRuleMetric(tx, serviceId, input.metricId);
    const id = newId('mappingRule');
    await tx
      .insertInto('mapping_rules')
      .values({
        id,
        service_id: serviceId,
        http_method: input.httpMethod,
        pattern: input.pattern,
        metric_id: input.metricId,
        delta: input.delta ?? 1,
        position: input.position ?? (await nextRulePosition(tx, serviceId)),
        last: flag(input.last ?? false),
        created_at: isoNow(deps.clock),
      })
      .execute();
    const rule = await getMappingRule(tx, serviceId, id);
    await record({
      type: 'mapping_rule.created',
      entityType: 'mapping_rule',
      entityId: id,
      payload: { rule, serviceId },
    });
    return rule;
  });
}

export async function updateMappingRule(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  id: string,
  input: MappingRuleUpdate,
): Promise<MappingRule> {
  return runChange(deps, actor, async (tx, record) => {
    await getMappingRule(tx, serviceId, id);
    if (input.metricId !== undefined) await checkRuleMetric(tx, serviceId, input.metricId);
    await tx
      .updateTable('mapping_rules')
      .set({
        ...(input.httpMethod !== undefined && { http_method: input.httpMethod }),
        ...(input.pattern !== undefined && { pattern: input.pattern }),
        ...(input.metricId !== undefined && { metric_id: input.metricId }),
        ...(input.delta !== undefined && { delta: input.delta }),
        ...(input.position !== undefined && { position: input.position }),
        ...(input.last !== undefined && { last: flag(input.last) }),
      })
      .where('id', '=', id)
      .execute();
    const rule = await getMappingRule(tx, serviceId, id);
    await record({
      type: 'mapping_rule.updated',
      entityType: 'mapping_rule',
      entityId: id,
      payload: { rule, serviceId },
    });
    return rule;
  });
}

export async function deleteMappingRule(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  id: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const rule = await getMappingRule(tx, serviceId, id);
    await tx.deleteFrom('mapping_rules').where('id', '=', id).execute();
    await record({
      type: 'mapping_rule.deleted',
      entityType: 'mapping_rule',
      entityId: id,
      payload: { rule, serviceId },
    });
  });
}

// plans

export async function getPlan(db: Executor, id: string): Promise<Plan> {
  const plan = await findPlan(db, id);
  if (!plan) throw notFound('plan', id);
  return plan;
}

export async function listPlans(
  db: Executor,
  filter: { serviceId?: string; state?: string },
): Promise<Plan[]> {
  if (filter.serviceId) await getService(db, filter.serviceId);
  return listPlanRows(db, filter);
}

export async function createPlan(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  input: PlanCreate,
): Promise<Plan> {
  return conflictOnDuplicate(`A plan "${input.systemName}" in this service`, () =>
    runChange(deps, actor, async (tx, record) => {
      await getService(tx, serviceId);
      const first = !(await tx
        .selectFrom('plans')
        .select('id')
        .where('service_id', '=', serviceId)
        .executeTakeFirst());
      const id = newId('plan');
      const now = isoNow(deps.clock);
      await tx
        .insertInto('plans')
        .values({
          id,
          service_id: serviceId,
          name: input.name,
          system_name: input.systemName,
          description: input.description ?? '',
          state: input.state ?? 'published',
          approval_required: flag(input.approvalRequired ?? false),
          is_default: flag(first),
          trial_days: input.trialDays ?? 0,
          end_user_key_source: input.endUserKeySource ?? 'header',
          end_user_key_name: input.endUserKeyName ?? '',
          created_at: now,
          updated_at: now,
        })
        .execute();
      const plan = await getPlan(tx, id);
      await record({ type: 'plan.created', entityType: 'plan', entityId: id, payload: { plan, serviceId } });
      return plan;
    }),
  );
}

export async function updatePlan(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  input: PlanUpdate,
): Promise<Plan> {
  return runChange(deps, actor, async (tx, record) => {
    await getPlan(tx, id);
    await tx
      .updateTable('plans')
      .set({
        ...(input.name !== undefined && { name: input.name }),
        ...(input.description !== undefined && { description: input.description }),
        ...(input.state !== undefined && { state: input.state }),
        ...(input.approvalRequired !== undefined && { approval_required: flag(input.approvalRequired) }),
        ...(input.trialDays !== undefined && { trial_days: input.trialDays }),
        ...(input.endUserKeySource !== undefined && { end_user_key_source: input.endUserKeySource }),
        ...(input.endUserKeyName !== undefined && { end_user_key_name: input.endUserKeyName }),
        updated_at: isoNow(deps.clock),
      })
      .where('id', '=', id)
      .execute();
    const plan = await getPlan(tx, id);
    await record({
      type: 'plan.updated',
      entityType: 'plan',
      entityId: id,
      payload: { plan, serviceId: plan.serviceId },
    });
    return plan;
  });
}

export async function deletePlan(deps: ChangeDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const plan = await getPlan(tx, id);
    const app = await tx.selectFrom('applications').select('id').where('plan_id', '=', id).executeTakeFirst();
    if (app)
      throw new TrellisError(
        'invalid_state',
        'Applications are on this plan; move them to another plan first.',
      );
    await tx.deleteFrom('plans').where('id', '=', id).execute();
    await record({
      type: 'plan.deleted',
      entityType: 'plan',
      entityId: id,
      payload: { plan, serviceId: plan.serviceId },
    });
  });
}

/** Makes a plan the one new applications of its service get when none is named. */
export async function makeDefaultPlan(deps: ChangeDeps, actor: Actor, id: string): Promise<Plan> {
  return runChange(deps, actor, async (tx, record) => {
    const plan = await getPlan(tx, id);
    await tx.updateTable('plans').set({ is_default: 0 }).where('service_id', '=', plan.serviceId).execute();
    await tx.updateTable('plans').set({ is_default: 1 }).where('id', '=', id).execute();
    const updated = await getPlan(tx, id);
    await record({
      type: 'plan.updated',
      entityType: 'plan',
      entityId: id,
      payload: { plan: updated, serviceId: plan.serviceId },
    });
    return updated;
  });
}

async function checkPlanMetric(db: Executor, plan: Plan, metricId: string): Promise<void> {
  const metric = await findMetricRow(db, metricId);
  if (!metric || metric.service_id !== plan.serviceId) {
    throw invalid([{ field: 'metricId', message: `no metric or method ${metricId} in the plan's service` }]);
  }
}

/** Sets a limit of a plan: creates it, or changes the value of the existing one for the same metric and period. */
export async function setPlanLimit(
  deps: ChangeDeps,
  actor: Actor,
  planId: string,
  input: PlanLimitCreate,
): Promise<PlanLimit> {
  return runChange(deps, actor, async (tx, record) => {
    const plan = await getPlan(tx, planId);
    await checkPlanMetric(tx, plan, input.metricId);
    const scope = input.scope ?? 'application';
    const existing = plan.limits.find(
      (l) => l.metricId === input.metricId && l.period === input.period && l.scope === scope,
    );
    const id = existing?.id ?? newId('planLimit');
    if (existing) {
      await tx.updateTable('plan_limits').set({ value: input.value }).where('id', '=', id).execute();
    } else {
      await tx
        .insertInto('plan_limits')
        .values({
          id,
          plan_id: planId,
          metric_id: input.metricId,
          period: input.period,
          value: input.value,
          scope,
          created_at: isoNow(deps.clock),
        })
        .execute();
    }
    const limit = toPlanLimit((await findPlanLimitRow(tx, id))!);
    await record({
      type: 'plan.limit_set',
      entityType: 'plan',
      entityId: planId,
      payload: { limit, serviceId: plan.serviceId },
    });
    return limit;
  });
}

export async function deletePlanLimit(
  deps: ChangeDeps,
  actor: Actor,
  planId: string,
  limitId: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const plan = await getPlan(tx, planId);
    if (!plan.limits.some((l) => l.id === limitId)) throw notFound('limit', limitId);
    await tx.deleteFrom('plan_limits').where('id', '=', limitId).execute();
    await record({
      type: 'plan.limit_deleted',
      entityType: 'plan',
      entityId: planId,
      payload: { limitId, serviceId: plan.serviceId },
    });
  });
}

/** Enables or disables a method (or metric) in a plan: calls to a disabled one are refused by the gateway. */
export async function setMetricEnabled(
  deps: ChangeDeps,
  actor: Actor,
  planId: string,
  metricId: string,
  enabled: boolean,
): Promise<Plan> {
  return runChange(deps, actor, async (tx, record) => {
    const plan = await getPlan(tx, planId);
    await checkPlanMetric(tx, plan, metricId);
    await tx
      .deleteFrom('plan_disabled_metrics')
      .where('plan_id', '=', planId)
      .where('metric_id', '=', metricId)
      .execute();
    if (!enabled)
      await tx.insertInto('plan_disabled_metrics').values({ plan_id: planId, metric_id: metricId }).execute();
    const updated = await getPlan(tx, planId);
    await record({
      type: enabled ? 'plan.metric_enabled' : 'plan.metric_disabled',
      entityType: 'plan',
      entityId: planId,
      payload: { metricId, serviceId: plan.serviceId },
    });
    return updated;
  });
}
