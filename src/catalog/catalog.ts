/**
 * Operations on the catalog. Each takes its dependencies, checks the rules that span entities, and makes its
 * change in one transaction with its audit entry and domain event.
 */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { compileRule } from '../gateway/mapping-rules.js';
import { TrellisError, generateSecret, invalid, isoNow, newId, notFound } from '../kernel/index.js';
import {
  type Executor,
  type PageRequest,
  deleteRow,
  flag,
  isUniqueViolation,
  lockRow,
} from '../store/index.js';
import {
  type MappingRuleKey,
  findHitsMetric,
  findMappingRuleByKey,
  findMappingRuleRow,
  findMetricRow,
  findPlan,
  findPlanLimitByKey,
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
  EndUserLimit,
  EndUserLimitSet,
  LimitWarning,
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
  PlanWithWarnings,
  Service,
  ServiceCreate,
  ServiceUpdate,
} from './schemas.js';
import { SECRET_TOKEN_PATTERN, type ServiceView } from './schemas.js';

/** 10 MiB: large enough for uploads, small enough that one request cannot exhaust the gateway. */
export const defaultMaxBodyBytes = 10 * 1024 * 1024;

/** True when an update names no field: an empty PATCH changes nothing (and records nothing). */
export function isEmptyUpdate(input: object): boolean {
  return Object.values(input).every((v) => v === undefined);
}

async function conflictOnDuplicate<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isUniqueViolation(err)) throw new TrellisError('conflict', `${what} already exists.`);
    throw err;
  }
}

// services

const secretTokenPattern = new RegExp(SECRET_TOKEN_PATTERN);

/** The schema's rule again, for callers that are not the management API (console, apply, code). */
function checkedSecretToken(token: string | null): string | null {
  if (token !== null && !secretTokenPattern.test(token)) {
    throw invalid([{ field: 'secretToken', message: 'must be 8…256 visible ASCII characters' }]);
  }
  return token;
}

/** A new service's secret token: the one given, none when null is given, else a generated one (as 3scale does). */
function secretTokenOf(token: string | null | undefined): string | null {
  return token === undefined ? generateSecret('serviceSecretToken') : checkedSecretToken(token);
}

/** What a read-only admin token may see of a service: everything but its secret token. */
export function withoutSecretToken(service: Service): ServiceView {
  const { secretToken: _hidden, ...visible } = service;
  return visible;
}

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
          // no sandbox unless the provider names one: a sandbox key must never reach the production upstream
          upstream_sandbox: input.upstreamSandbox ?? '',
          auth_mode: input.authMode ?? 'user_key',
          credentials_location: input.credentialsLocation ?? 'header',
          user_key_name: input.userKeyName ?? 'X-API-Key',
          app_id_name: input.appIdName ?? 'X-App-Id',
          app_key_name: input.appKeyName ?? 'X-App-Key',
          secret_token: secretTokenOf(input.secretToken),
          gateway_host: input.gatewayHost ?? '',
          gateway_path_prefix: input.gatewayPathPrefix ?? `/${input.systemName}`,
          limiter_mode: input.limiterMode ?? 'strict',
          limiter_failure_mode: input.limiterFailureMode ?? 'open',
          max_body_bytes: input.maxBodyBytes ?? defaultMaxBodyBytes,
          forward_bearer_token: input.forwardBearerToken ? 1 : 0,
          end_user_key_source: input.endUserKeySource ?? 'header',
          end_user_key_name: input.endUserKeyName ?? '',
          portal_state: input.portalState ?? 'published',
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
      // the audit log is readable by read-only tokens and the outbox will feed webhooks: no secret in either
      await record({
        type: 'service.created',
        entityType: 'service',
        entityId: id,
        payload: { service: withoutSecretToken(service) },
      });
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
  if (isEmptyUpdate(input)) return getService(deps.db, id);
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
        ...(input.secretToken !== undefined && { secret_token: checkedSecretToken(input.secretToken) }),
        ...(input.gatewayHost !== undefined && { gateway_host: input.gatewayHost }),
        ...(input.gatewayPathPrefix !== undefined && { gateway_path_prefix: input.gatewayPathPrefix }),
        ...(input.limiterMode !== undefined && { limiter_mode: input.limiterMode }),
        ...(input.limiterFailureMode !== undefined && { limiter_failure_mode: input.limiterFailureMode }),
        ...(input.maxBodyBytes !== undefined && { max_body_bytes: input.maxBodyBytes }),
        ...(input.forwardBearerToken !== undefined && {
          forward_bearer_token: input.forwardBearerToken ? 1 : 0,
        }),
        ...(input.endUserKeySource !== undefined && { end_user_key_source: input.endUserKeySource }),
        ...(input.endUserKeyName !== undefined && { end_user_key_name: input.endUserKeyName }),
        ...(input.portalState !== undefined && { portal_state: input.portalState }),
        updated_at: isoNow(deps.clock),
      })
      .where('id', '=', id)
      .execute();
    const service = await getService(tx, id);
    // the audit log is readable by read-only tokens and the outbox will feed webhooks: no secret in either
    await record({
      type: 'service.updated',
      entityType: 'service',
      entityId: id,
      payload: { service: withoutSecretToken(service) },
    });
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
    if (!(await deleteRow(tx, 'services', id))) throw notFound('service', id);
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

/**
 * Creates a metric (`kind: 'metric'`: standalone, or a child of hits with `parent: 'hits'`) or a method, always a
 * child of `hits` (`kind: 'method'`). A call counted on a child counts on hits too.
 */
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
      const childOfHits = kind === 'method' || input.parent === 'hits';
      const parentId = childOfHits ? (await findHitsMetric(tx, serviceId)).id : null;
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
          kind,
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
  if (isEmptyUpdate(input)) return getMetric(deps.db, serviceId, id);
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
    if (!(await deleteRow(tx, 'metrics', id))) throw notFound('metric', id);
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

/**
 * The refusal of a rule the same as one the service has (verb, pattern and metric, whatever the delta: migration
 * 0022): every rule that matches a call counts it, so the two would count each call twice.
 */
function mappingRuleExists(key: MappingRuleKey, existingId: string | undefined): TrellisError {
  return new TrellisError(
    'mapping_rule_exists',
    `This service already has a mapping rule ${key.httpMethod} ${key.pattern} on this metric${
      existingId === undefined ? '' : ` (${existingId})`
    }: a second one would count every call it matches twice.`,
    existingId === undefined ? undefined : { ruleId: existingId },
  );
}

/** Refuses a write that would give the service a second rule with `key`; the rule `exceptId` is the one written. */
async function refuseSameRule(db: Executor, key: MappingRuleKey, exceptId?: string): Promise<void> {
  const existing = await findMappingRuleByKey(db, key, exceptId);
  if (existing) throw mappingRuleExists(key, existing.id);
}

/**
 * What a failed write of the rule `key` throws. Two writes of the same rule at once both pass `refuseSameRule` on
 * PostgreSQL (neither sees the other's row); the unique index refuses the second, and that is `mapping_rule_exists`
 * too, naming the rule that won.
 */
async function sameRuleRefused(
  deps: ChangeDeps,
  key: MappingRuleKey | undefined,
  err: unknown,
): Promise<never> {
  if (key === undefined || !isUniqueViolation(err)) throw err;
  // in the transaction of runChanges (apply), PostgreSQL refuses every statement after the violation
  const winner = deps.db.isTransaction ? undefined : await findMappingRuleByKey(deps.db, key);
  throw mappingRuleExists(key, winner?.id);
}

/**
 * Adds a rule at `position` (default: after the last). Refused with `mapping_rule_exists` when the service has a
 * rule of the same verb, pattern and metric.
 */
export async function createMappingRule(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  input: MappingRuleCreate,
): Promise<MappingRule> {
  const key = { serviceId, httpMethod: input.httpMethod, pattern: input.pattern, metricId: input.metricId };
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    await checkRuleMetric(tx, serviceId, input.metricId);
    await refuseSameRule(tx, key);
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
  }).catch((err: unknown) => sameRuleRefused(deps, key, err));
}

/** Changes a rule; refused with `mapping_rule_exists` when it would become the same as another rule. */
export async function updateMappingRule(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  id: string,
  input: MappingRuleUpdate,
): Promise<MappingRule> {
  if (isEmptyUpdate(input)) return getMappingRule(deps.db, serviceId, id);
  let key: MappingRuleKey | undefined;
  return runChange(deps, actor, async (tx, record) => {
    const current = await getMappingRule(tx, serviceId, id);
    if (input.metricId !== undefined) await checkRuleMetric(tx, serviceId, input.metricId);
    if (input.httpMethod !== undefined || input.pattern !== undefined || input.metricId !== undefined) {
      key = {
        serviceId,
        httpMethod: input.httpMethod ?? current.httpMethod,
        pattern: input.pattern ?? current.pattern,
        metricId: input.metricId ?? current.metricId,
      };
      await refuseSameRule(tx, key, id);
    }
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
  }).catch((err: unknown) => sameRuleRefused(deps, key, err));
}

export async function deleteMappingRule(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  id: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const rule = await getMappingRule(tx, serviceId, id);
    if (!(await deleteRow(tx, 'mapping_rules', id))) throw notFound('mapping rule', id);
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
      // the service's first plan is its default: two first plans made at once must not both see none
      await lockRow(tx, 'services', serviceId);
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
  if (isEmptyUpdate(input)) return getPlan(deps.db, id);
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
    if (!(await deleteRow(tx, 'plans', id))) throw notFound('plan', id);
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
    // one statement, so two identical requests at once both end with the one limit (no unique conflict)
    await tx
      .insertInto('plan_limits')
      .values({
        id: newId('planLimit'),
        plan_id: planId,
        metric_id: input.metricId,
        period: input.period,
        value: input.value,
        scope,
        created_at: isoNow(deps.clock),
      })
      .onConflict((oc) =>
        oc.columns(['plan_id', 'metric_id', 'period', 'scope']).doUpdateSet({ value: input.value }),
      )
      .execute();
    const limit = toPlanLimit(
      (await findPlanLimitByKey(tx, { planId, metricId: input.metricId, period: input.period, scope }))!,
    );
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
    if (!(await deleteRow(tx, 'plan_limits', limitId))) throw notFound('limit', limitId);
    await record({
      type: 'plan.limit_deleted',
      entityType: 'plan',
      entityId: planId,
      payload: { limitId, serviceId: plan.serviceId },
    });
  });
}

/**
 * The limits of a plan that do not do what they say: a limit on a metric no mapping rule counts (directly, or
 * through a method or metric counted on it) can never be reached; a limit on hits does not apply to calls that only
 * standalone metrics count (unless a catch-all rule counts every call on hits).
 */
export async function limitWarnings(db: Executor, plan: Plan): Promise<LimitWarning[]> {
  if (plan.limits.length === 0) return [];
  const metrics = new Map((await listMetricRows(db, plan.serviceId)).map((m) => [m.id, m]));
  const rules = await listMappingRuleRows(db, plan.serviceId);
  const counted = new Set<string>();
  for (const r of rules) {
    counted.add(r.metricId);
    const parentId = metrics.get(r.metricId)?.parentId;
    if (parentId) counted.add(parentId);
  }
  const hits = [...metrics.values()].find((m) => m.systemName === 'hits');
  const everyCallOnHits = rules.some(
    (r) =>
      r.httpMethod === 'ANY' &&
      (r.pattern === '/' || r.pattern === '/*') &&
      (r.metricId === hits?.id || metrics.get(r.metricId)?.parentId === hits?.id),
  );
  const standalone = [
    ...new Set(
      rules
        .map((r) => metrics.get(r.metricId))
        .filter((m): m is Metric => m !== undefined && m.parentId === null && m.id !== hits?.id)
        .map((m) => m.systemName),
    ),
  ];
  // A call matched both by a rule on hits and by a rule on one of its children counts twice on hits (3scale's
  // semantics: the child's count goes to its parent too), so a limit on hits is reached at half the calls.
  const onHits = rules.filter((r) => r.metricId === hits?.id).map((r) => ({ r, c: compileRule(r) }));
  const twice = rules
    .filter((r) => hits !== undefined && metrics.get(r.metricId)?.parentId === hits.id)
    .flatMap((child) => {
      const sample = child.pattern
        .split('?')[0]!
        .replace(/\$$/, '')
        .replace(/\{[^}]*\}/g, 'p');
      const both = onHits.find(
        ({ c }) =>
          (c.method === 'ANY' || child.httpMethod === 'ANY' || c.method === child.httpMethod) &&
          c.query.length === 0 &&
          c.path.test(sample),
      );
      return both
        ? [`${child.httpMethod} ${child.pattern} (also ${both.r.httpMethod} ${both.r.pattern})`]
        : [];
    });
  const warnings: LimitWarning[] = [];
  for (const limit of plan.limits) {
    const metric = metrics.get(limit.metricId);
    const name = metric?.systemName ?? limit.metricId;
    const what = `The limit of ${limit.value} ${name} per ${limit.period}${limit.scope === 'end_user' ? ' per end user' : ''}`;
    if (!counted.has(limit.metricId)) {
      warnings.push({
        limitId: limit.id,
        metricId: limit.metricId,
        message: `${what} can never be reached: no mapping rule counts ${name}${metric?.id === hits?.id ? ' or a method or metric counted on it' : ''}.`,
      });
    } else if (limit.metricId === hits?.id && !everyCallOnHits && standalone.length > 0) {
      warnings.push({
        limitId: limit.id,
        metricId: limit.metricId,
        message: `${what} does not apply to calls counted only on the standalone metrics ${standalone.join(', ')}: create them with parent hits, or count every call on hits.`,
      });
    }
    if (limit.metricId === hits?.id && twice.length > 0) {
      warnings.push({
        limitId: limit.id,
        metricId: limit.metricId,
        message: `${what} counts some calls twice: they match a rule on hits and a rule on a method or metric counted on hits: ${twice.slice(0, 5).join('; ')}.`,
      });
    }
  }
  return warnings;
}

/** A plan with the warnings of its limits (`limitWarnings`). */
export async function getPlanWithWarnings(db: Executor, id: string): Promise<PlanWithWarnings> {
  const plan = await getPlan(db, id);
  return { ...plan, warnings: await limitWarnings(db, plan) };
}

// end-user limits of a whole service

function toEndUserLimit(r: {
  id: string;
  service_id: string;
  metric_id: string;
  period: string;
  value: number | string;
}): EndUserLimit {
  return {
    id: r.id,
    serviceId: r.service_id,
    metricId: r.metric_id,
    period: r.period,
    value: Number(r.value),
  };
}

/** The end-user limits of a service: every end user of every application, whatever its plan. */
export async function listEndUserLimits(db: Executor, serviceId: string): Promise<EndUserLimit[]> {
  await getService(db, serviceId);
  const rows = await db
    .selectFrom('service_end_user_limits')
    .selectAll()
    .where('service_id', '=', serviceId)
    .orderBy('id')
    .execute();
  return rows.map(toEndUserLimit);
}

/**
 * Sets an end-user limit of a whole service (3scale's end-user plan): it applies to each end user of every
 * application of the service, whatever the application's plan, unless that plan has its own end-user limit on the
 * same metric and period.
 */
export async function setEndUserLimit(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  input: EndUserLimitSet,
): Promise<EndUserLimit> {
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    await checkRuleMetric(tx, serviceId, input.metricId);
    await tx
      .insertInto('service_end_user_limits')
      .values({
        id: newId('planLimit'),
        service_id: serviceId,
        metric_id: input.metricId,
        period: input.period,
        value: input.value,
        created_at: isoNow(deps.clock),
      })
      .onConflict((oc) =>
        oc.columns(['service_id', 'metric_id', 'period']).doUpdateSet({ value: input.value }),
      )
      .execute();
    const row = await tx
      .selectFrom('service_end_user_limits')
      .selectAll()
      .where('service_id', '=', serviceId)
      .where('metric_id', '=', input.metricId)
      .where('period', '=', input.period)
      .executeTakeFirstOrThrow();
    const limit = toEndUserLimit(row);
    await record({
      type: 'service.end_user_limit_set',
      entityType: 'service',
      entityId: serviceId,
      payload: { limit, serviceId },
    });
    return limit;
  });
}

export async function deleteEndUserLimit(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  limitId: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const row = await tx
      .selectFrom('service_end_user_limits')
      .select('id')
      .where('id', '=', limitId)
      .where('service_id', '=', serviceId)
      .executeTakeFirst();
    if (!row) throw notFound('end-user limit', limitId);
    if (!(await deleteRow(tx, 'service_end_user_limits', limitId))) throw notFound('end-user limit', limitId);
    await record({
      type: 'service.end_user_limit_deleted',
      entityType: 'service',
      entityId: serviceId,
      payload: { limitId, serviceId },
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
      await tx
        .insertInto('plan_disabled_metrics')
        .values({ plan_id: planId, metric_id: metricId })
        .onConflict((oc) => oc.columns(['plan_id', 'metric_id']).doNothing())
        .execute();
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
