/**
 * Declarative configuration: a document listing services with their metrics, methods, mapping rules and plans
 * (with limits), as `trellis apply -f trellis.yaml` takes it and `trellis export` writes it.
 *
 * Identity is by system name (services, metrics, methods, plans); a mapping rule is its verb, pattern and metric
 * (declared once per service: `repeatedRules`), else its verb and pattern with the metric changed; a limit its
 * metric, period and scope. Mapping rules, limits and disabled methods of a declared service or plan are
 * synced exactly. Services, metrics, methods and plans missing from the document are kept unless `prune` is set.
 * A service's `certification:` is its certification plan (issue 11), written whole when it differs; left out, the
 * plan is left as it is. A service's `eventTypes:` are the event types it publishes to partners' webhooks
 * (issue 9, src/webhooks/consumer-declarative.ts), kept the same way.
 * Applying the same document twice changes nothing.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { type Actor, type ChangeDeps, runChanges } from '../events/index.js';
import { CertificationPlanInput } from '../golive/certification-schemas.js';
import { findCertificationPlan, normalizePlan, putCertificationPlan } from '../golive/certification.js';
import { invalid } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import { runInApplyTurn } from './apply-turn.store.js';
import * as catalog from './catalog.js';
import * as s from './schemas.js';
import { exportEventTypes, planEventTypes } from '../webhooks/consumer-declarative.js';
import { EventTypeDecl } from '../webhooks/consumer-schemas.js';

const MetricDecl = T.Object(
  {
    systemName: s.SystemName,
    friendlyName: T.String({ minLength: 1, maxLength: 200 }),
    unit: T.Optional(T.String({ minLength: 1, maxLength: 50 })),
    description: T.Optional(T.String({ maxLength: 10_000 })),
    parent: T.Optional(
      T.Union([T.Literal('hits'), T.Null()], {
        description:
          'metrics: `hits` to count on hits too (methods always do); set when the metric is created',
      }),
    ),
  },
  { additionalProperties: false },
);

const RuleDecl = T.Object(
  {
    httpMethod: s.HttpMethod,
    pattern: T.String({ minLength: 1, maxLength: 1000, pattern: '^/' }),
    metric: T.String({ description: 'system name of a metric or method' }),
    delta: T.Optional(T.Integer({ minimum: 1 })),
    last: T.Optional(T.Boolean()),
  },
  { additionalProperties: false },
);

const LimitDecl = T.Object(
  {
    metric: T.String(),
    period: s.Period,
    value: T.Integer({ minimum: 0 }),
    scope: T.Optional(s.LimitScope),
  },
  { additionalProperties: false },
);

/** An end-user limit of the whole service (every plan's end users, unless the plan sets its own). */
const EndUserLimitDecl = T.Object(
  { metric: T.String(), period: s.Period, value: T.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);

const PlanDecl = T.Object(
  {
    ...T.Omit(s.PlanCreate, []).properties,
    default: T.Optional(T.Boolean()),
    limits: T.Optional(T.Array(LimitDecl)),
    disabledMethods: T.Optional(T.Array(T.String())),
  },
  { additionalProperties: false },
);

const ServiceDecl = T.Object(
  {
    ...s.ServiceCreate.properties,
    metrics: T.Optional(T.Array(MetricDecl)),
    methods: T.Optional(T.Array(MetricDecl)),
    endUserLimits: T.Optional(T.Array(EndUserLimitDecl)),
    mappingRules: T.Optional(T.Array(RuleDecl)),
    plans: T.Optional(T.Array(PlanDecl)),
    certification: T.Optional(CertificationPlanInput),
    eventTypes: T.Optional(T.Array(EventTypeDecl)),
  },
  { additionalProperties: false },
);

export const DeclarativeConfig = T.Object(
  { services: T.Array(ServiceDecl) },
  { additionalProperties: false, description: 'trellis.yaml' },
);
export type DeclarativeConfig = Static<typeof DeclarativeConfig>;
type ServiceDecl = Static<typeof ServiceDecl>;
type PlanDecl = Static<typeof PlanDecl>;

/** A problem of a document that its schema does not see, at its place (`['services', 0, 'mappingRules', 3]`). */
export interface DocumentProblem {
  path: (string | number)[];
  message: string;
}

/**
 * The mapping rules a document declares twice in one service: the same verb, pattern and metric (whatever the
 * delta). Every rule that matches a call counts it, so the second would count each call twice; the catalog refuses
 * it (`mapping_rule_exists`), and an apply is refused before it starts, naming both places.
 */
export function repeatedRules(doc: DeclarativeConfig): DocumentProblem[] {
  const problems: DocumentProblem[] = [];
  doc.services.forEach((service, serviceIndex) => {
    const first = new Map<string, number>();
    (service.mappingRules ?? []).forEach((rule, ruleIndex) => {
      const key = `${rule.httpMethod} ${rule.pattern} ${rule.metric}`;
      const earlier = first.get(key);
      if (earlier === undefined) first.set(key, ruleIndex);
      else
        problems.push({
          path: ['services', serviceIndex, 'mappingRules', ruleIndex],
          message: `the same rule as mappingRules.${earlier} (${rule.httpMethod} ${rule.pattern} on ${rule.metric}): a call would count twice`,
        });
    });
  });
  return problems;
}

/** One step of an apply, as `--dry-run` prints it. */
export interface ApplyStep {
  op: 'create' | 'update' | 'delete';
  what: string;
  /** Fields that change, for updates. */
  fields?: string[];
  run: (deps: ChangeDeps, actor: Actor) => Promise<void>;
}

const serviceFields = [
  'name',
  'description',
  'upstreamProduction',
  'upstreamSandbox',
  'authMode',
  'credentialsLocation',
  'userKeyName',
  'appIdName',
  'appKeyName',
  'secretToken',
  'gatewayHost',
  'gatewayPathPrefix',
  'limiterMode',
  'limiterFailureMode',
  'maxBodyBytes',
  'forwardBearerToken',
  'endUserKeySource',
  'endUserKeyName',
] as const;

function changed<T extends object>(
  current: T,
  wanted: Partial<T>,
  fields: readonly (keyof T)[],
): (keyof T)[] {
  return fields.filter((f) => wanted[f] !== undefined && wanted[f] !== current[f]);
}

function pick<T extends object>(o: Partial<T>, fields: (keyof T)[]): Partial<T> {
  return Object.fromEntries(fields.map((f) => [f, o[f]])) as Partial<T>;
}

/**
 * Works out what applying `doc` would change, as steps in order. Steps on entities created by an earlier step
 * resolve their ids when they run.
 */
export async function planApply(
  db: Executor,
  doc: DeclarativeConfig,
  options: { prune?: boolean } = {},
): Promise<ApplyStep[]> {
  const repeated = repeatedRules(doc);
  if (repeated.length > 0) {
    throw invalid(repeated.map((p) => ({ field: p.path.join('.'), message: p.message })));
  }
  const steps: ApplyStep[] = [];
  const existing = (await catalog.listServices(db, { limit: 10_000 })).data;
  for (const decl of doc.services) {
    const current = existing.find((x) => x.systemName === decl.systemName);
    const {
      metrics: _m,
      methods: _me,
      mappingRules: _r,
      plans: _p,
      endUserLimits: _eu,
      certification: _c,
      eventTypes: _et,
      ...settings
    } = decl;
    if (!current) {
      steps.push({
        op: 'create',
        what: `service ${decl.systemName}`,
        run: async (deps, actor) => {
          await catalog.createService(deps, actor, settings);
        },
      });
    } else {
      const fields = changed(current, settings as Partial<s.Service>, serviceFields);
      if (fields.length > 0) {
        steps.push({
          op: 'update',
          what: `service ${decl.systemName}`,
          fields: fields.map(String),
          run: async (deps, actor) => {
            await catalog.updateService(
              deps,
              actor,
              current.id,
              pick(settings as Partial<s.Service>, fields) as s.ServiceUpdate,
            );
          },
        });
      }
    }
    steps.push(...(await planServiceChildren(db, decl, current?.id, options)));
    // consumer webhooks: the event types the service publishes to partners (issue 9)
    const service = { systemName: decl.systemName, id: current?.id };
    steps.push(...(await planEventTypes(db, service, decl.eventTypes, !!options.prune, serviceIdOf)));
    if (decl.certification !== undefined) {
      const wanted = normalizePlan(decl.certification);
      const have = current ? await findCertificationPlan(db, current.id) : null;
      if (JSON.stringify(have?.plan) !== JSON.stringify(wanted)) {
        const input = decl.certification;
        steps.push({
          op: have ? 'update' : 'create',
          what: `certification plan ${decl.systemName}`,
          run: async (deps, actor) => {
            await putCertificationPlan(deps, actor, await serviceIdOf(deps.db, decl.systemName), input);
          },
        });
      }
    }
  }
  if (options.prune) {
    for (const svc of existing) {
      if (!doc.services.some((d) => d.systemName === svc.systemName)) {
        steps.push({
          op: 'delete',
          what: `service ${svc.systemName}`,
          run: (deps, actor) => catalog.deleteService(deps, actor, svc.id),
        });
      }
    }
  }
  return steps;
}

async function serviceIdOf(db: Executor, systemName: string): Promise<string> {
  const all = (await catalog.listServices(db, { limit: 10_000 })).data;
  const svc = all.find((x) => x.systemName === systemName);
  if (!svc) throw new Error(`service ${systemName} was not created`);
  return svc.id;
}

async function metricIdOf(db: Executor, serviceId: string, systemName: string): Promise<string> {
  const m = (await catalog.listMetrics(db, serviceId)).find((x) => x.systemName === systemName);
  if (!m) throw new Error(`no metric or method "${systemName}" in the service`);
  return m.id;
}

async function planServiceChildren(
  db: Executor,
  decl: ServiceDecl,
  serviceId: string | undefined,
  options: { prune?: boolean },
): Promise<ApplyStep[]> {
  const steps: ApplyStep[] = [];
  const svcName = decl.systemName;
  const metrics = serviceId ? await catalog.listMetrics(db, serviceId) : [];
  const names = new Map(metrics.map((m) => [m.id, m.systemName]));
  const declaredMetricNames = new Set([
    'hits',
    ...(decl.metrics ?? []).map((m) => m.systemName),
    ...(decl.methods ?? []).map((m) => m.systemName),
  ]);

  for (const [kind, list] of [
    ['metric', decl.metrics],
    ['method', decl.methods],
  ] as const) {
    for (const m of list ?? []) {
      const current = metrics.find((x) => x.systemName === m.systemName);
      if (!current) {
        steps.push({
          op: 'create',
          what: `${kind} ${svcName}/${m.systemName}`,
          run: async (deps, actor) => {
            await catalog.createMetric(deps, actor, await serviceIdOf(deps.db, svcName), kind, m);
          },
        });
        continue;
      }
      const fields = changed(current, m, ['friendlyName', 'unit', 'description'] as const);
      if (fields.length > 0) {
        steps.push({
          op: 'update',
          what: `${kind} ${svcName}/${m.systemName}`,
          fields: fields.map(String),
          run: async (deps, actor) => {
            await catalog.updateMetric(
              deps,
              actor,
              current.serviceId,
              current.id,
              pick(m as Partial<s.Metric>, fields) as s.MetricUpdate,
            );
          },
        });
      }
    }
  }
  if (options.prune) {
    for (const m of metrics) {
      if (!declaredMetricNames.has(m.systemName)) {
        steps.push({
          op: 'delete',
          what: `${m.kind} ${svcName}/${m.systemName}`,
          run: (deps, actor) => catalog.deleteMetric(deps, actor, m.serviceId, m.id),
        });
      }
    }
  }

  // Mapping rules are synced exactly, in the order written: each declared rule is one rule of the service, and
  // any other rule is deleted, a second rule of the same verb and pattern too (left by applies that raced before
  // they took turns; every matching rule counts, so it counted the call twice). A declared rule is matched with the
  // rule of its verb, pattern and metric first, and only then with one of its verb and pattern whose metric it
  // changes: rules are unique by verb, pattern and metric (migration 0022), so giving a rule the metric of another
  // rule of its verb and pattern would be refused.
  if (decl.mappingRules !== undefined) {
    const rules = serviceId ? await catalog.listMappingRules(db, serviceId) : [];
    const key = (verb: string, pattern: string) => `${verb} ${pattern}`;
    const wanted = decl.mappingRules.map((r, i) => ({ ...r, position: i + 1 }));
    const matched = new Set<string>();
    const matchOf = new Map<(typeof wanted)[number], s.MappingRule>();
    for (const exact of [true, false]) {
      for (const r of wanted) {
        if (matchOf.has(r)) continue;
        const current = rules.find(
          (x) =>
            !matched.has(x.id) &&
            key(x.httpMethod, x.pattern) === key(r.httpMethod, r.pattern) &&
            (!exact || names.get(x.metricId) === r.metric),
        );
        if (!current) continue;
        matched.add(current.id);
        matchOf.set(r, current);
      }
    }
    for (const r of wanted) {
      const current = matchOf.get(r);
      const desc = `mapping rule ${svcName}: ${r.httpMethod} ${r.pattern}`;
      if (!current) {
        steps.push({
          op: 'create',
          what: desc,
          run: async (deps, actor) => {
            const sid = await serviceIdOf(deps.db, svcName);
            await catalog.createMappingRule(deps, actor, sid, {
              httpMethod: r.httpMethod,
              pattern: r.pattern,
              metricId: await metricIdOf(deps.db, sid, r.metric),
              delta: r.delta ?? 1,
              position: r.position,
              last: r.last ?? false,
            });
          },
        });
        continue;
      }
      const diffs: string[] = [];
      if (names.get(current.metricId) !== r.metric) diffs.push('metric');
      if (current.delta !== (r.delta ?? 1)) diffs.push('delta');
      if (current.last !== (r.last ?? false)) diffs.push('last');
      if (current.position !== r.position) diffs.push('position');
      if (diffs.length > 0) {
        steps.push({
          op: 'update',
          what: desc,
          fields: diffs,
          run: async (deps, actor) => {
            await catalog.updateMappingRule(deps, actor, current.serviceId, current.id, {
              metricId: await metricIdOf(deps.db, current.serviceId, r.metric),
              delta: r.delta ?? 1,
              last: r.last ?? false,
              position: r.position,
            });
          },
        });
      }
    }
    for (const current of rules) {
      if (!matched.has(current.id)) {
        steps.push({
          op: 'delete',
          what: `mapping rule ${svcName}: ${current.httpMethod} ${current.pattern}`,
          run: (deps, actor) => catalog.deleteMappingRule(deps, actor, current.serviceId, current.id),
        });
      }
    }
  }

  // End-user limits of the service are synced exactly, like a plan's limits.
  if (decl.endUserLimits !== undefined) {
    const have = serviceId ? await catalog.listEndUserLimits(db, serviceId) : [];
    const key = (metric: string, period: string) => `${metric}/${period}`;
    for (const l of decl.endUserLimits) {
      const match = have.find((h) => key(names.get(h.metricId) ?? '', h.period) === key(l.metric, l.period));
      if (match && match.value === l.value) continue;
      steps.push({
        op: match ? 'update' : 'create',
        what: `end-user limit ${svcName}: ${l.metric} per ${l.period} = ${l.value}`,
        run: async (deps, actor) => {
          const id = await serviceIdOf(deps.db, svcName);
          await catalog.setEndUserLimit(deps, actor, id, {
            metricId: await metricIdOf(deps.db, id, l.metric),
            period: l.period,
            value: l.value,
          });
        },
      });
    }
    for (const h of have) {
      if (
        !decl.endUserLimits.some(
          (l) => key(l.metric, l.period) === key(names.get(h.metricId) ?? '', h.period),
        )
      ) {
        steps.push({
          op: 'delete',
          what: `end-user limit ${svcName}: ${names.get(h.metricId)} per ${h.period}`,
          run: (deps, actor) => catalog.deleteEndUserLimit(deps, actor, h.serviceId, h.id),
        });
      }
    }
  }

  const plans = serviceId ? await catalog.listPlans(db, { serviceId }) : [];
  for (const p of decl.plans ?? [])
    steps.push(
      ...planPlan(
        svcName,
        p,
        plans.find((x) => x.systemName === p.systemName),
        names,
      ),
    );
  if (options.prune) {
    for (const p of plans) {
      if (!(decl.plans ?? []).some((d) => d.systemName === p.systemName)) {
        steps.push({
          op: 'delete',
          what: `plan ${svcName}/${p.systemName}`,
          run: (deps, actor) => catalog.deletePlan(deps, actor, p.id),
        });
      }
    }
  }
  return steps;
}

function planPlan(
  svcName: string,
  decl: PlanDecl,
  current: s.Plan | undefined,
  metricNames: Map<string, string>,
): ApplyStep[] {
  const steps: ApplyStep[] = [];
  const name = `plan ${svcName}/${decl.systemName}`;
  const { limits, disabledMethods, default: isDefault, ...settings } = decl;
  const planIdOf = async (db: Executor) => {
    const sid = await serviceIdOf(db, svcName);
    const plan = (await catalog.listPlans(db, { serviceId: sid })).find(
      (x) => x.systemName === decl.systemName,
    );
    if (!plan) throw new Error(`${name} was not created`);
    return { plan, serviceId: sid };
  };
  if (!current) {
    steps.push({
      op: 'create',
      what: name,
      run: async (deps, actor) => {
        await catalog.createPlan(deps, actor, await serviceIdOf(deps.db, svcName), settings);
      },
    });
  } else {
    const fields = changed(
      current,
      settings as Partial<s.Plan>,
      [
        'name',
        'description',
        'state',
        'approvalRequired',
        'trialDays',
        'endUserKeySource',
        'endUserKeyName',
      ] as const,
    );
    if (fields.length > 0) {
      steps.push({
        op: 'update',
        what: name,
        fields: fields.map(String),
        run: async (deps, actor) => {
          await catalog.updatePlan(
            deps,
            actor,
            current.id,
            pick(settings as Partial<s.Plan>, fields) as s.PlanUpdate,
          );
        },
      });
    }
  }
  if (isDefault && !current?.isDefault) {
    steps.push({
      op: 'update',
      what: name,
      fields: ['default'],
      run: async (deps, actor) => {
        await catalog.makeDefaultPlan(deps, actor, (await planIdOf(deps.db)).plan.id);
      },
    });
  }
  if (limits !== undefined) {
    const have = current?.limits ?? [];
    const key = (metric: string, period: string, scope: string) => `${metric}/${period}/${scope}`;
    for (const l of limits) {
      const scope = l.scope ?? 'application';
      const match = have.find(
        (h) => key(metricNames.get(h.metricId) ?? '', h.period, h.scope) === key(l.metric, l.period, scope),
      );
      if (match && match.value === l.value) continue;
      steps.push({
        op: match ? 'update' : 'create',
        what: `limit ${svcName}/${decl.systemName}: ${l.metric} per ${l.period}${scope === 'end_user' ? ' per end user' : ''} = ${l.value}`,
        run: async (deps, actor) => {
          const { plan, serviceId } = await planIdOf(deps.db);
          await catalog.setPlanLimit(deps, actor, plan.id, {
            metricId: await metricIdOf(deps.db, serviceId, l.metric),
            period: l.period,
            value: l.value,
            scope,
          });
        },
      });
    }
    for (const h of have) {
      if (
        !limits.some(
          (l) =>
            key(l.metric, l.period, l.scope ?? 'application') ===
            key(metricNames.get(h.metricId) ?? '', h.period, h.scope),
        )
      ) {
        steps.push({
          op: 'delete',
          what: `limit ${svcName}/${decl.systemName}: ${metricNames.get(h.metricId)} per ${h.period}`,
          run: (deps, actor) => catalog.deletePlanLimit(deps, actor, h.planId, h.id),
        });
      }
    }
  }
  if (disabledMethods !== undefined) {
    const have = new Set((current?.disabledMetricIds ?? []).map((id) => metricNames.get(id) ?? id));
    const want = new Set(disabledMethods);
    for (const m of want) {
      if (have.has(m)) continue;
      steps.push({
        op: 'create',
        what: `disabled method ${svcName}/${decl.systemName}: ${m}`,
        run: async (deps, actor) => {
          const { plan, serviceId } = await planIdOf(deps.db);
          await catalog.setMetricEnabled(
            deps,
            actor,
            plan.id,
            await metricIdOf(deps.db, serviceId, m),
            false,
          );
        },
      });
    }
    for (const m of have) {
      if (want.has(m)) continue;
      steps.push({
        op: 'delete',
        what: `disabled method ${svcName}/${decl.systemName}: ${m}`,
        run: async (deps, actor) => {
          const { plan, serviceId } = await planIdOf(deps.db);
          await catalog.setMetricEnabled(deps, actor, plan.id, await metricIdOf(deps.db, serviceId, m), true);
        },
      });
    }
  }
  return steps;
}

/**
 * Runs the steps in order; a failure stops the run and names the step. Each step is its own transaction, unless
 * `deps` are those of {@link runChanges} (as in {@link applyDeclarative}): then all are in its one transaction.
 */
export async function runApply(deps: ChangeDeps, actor: Actor, steps: ApplyStep[]): Promise<void> {
  for (const step of steps) {
    try {
      await step.run(deps, actor);
    } catch (err) {
      throw new Error(`${step.op} ${step.what}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * Makes the catalog match `doc` (what `trellis apply` does): all or nothing, and in turn with every other apply on
 * the database. One transaction takes the apply turn (apply-turn.store.ts), works out the steps, runs them, and
 * commits; so two applies of one file at once end with the file's catalog, the second finding nothing to do,
 * and a failing step leaves the catalog as it was (the error names the step). `onPlanned` sees the steps before
 * they run. Returns the steps run (none when the catalog already matched).
 * @example await applyDeclarative(deps, actor, doc, { onPlanned: (steps) => print(steps) })
 */
export async function applyDeclarative(
  deps: ChangeDeps,
  actor: Actor,
  doc: DeclarativeConfig,
  options: { prune?: boolean; onPlanned?: (steps: ApplyStep[]) => void } = {},
): Promise<ApplyStep[]> {
  return runInApplyTurn(deps, async (inOne, tx) => {
    const steps = await planApply(tx, doc, { prune: options.prune ?? false });
    options.onPlanned?.(steps);
    await runApply(inOne, actor, steps);
    return steps;
  });
}

/** The whole catalog as a declarative document (what `trellis export` prints). */
export async function exportCatalog(db: Executor): Promise<DeclarativeConfig> {
  const services = (await catalog.listServices(db, { limit: 10_000 })).data;
  const out: ServiceDecl[] = [];
  for (const svc of services) {
    const metrics = await catalog.listMetrics(db, svc.id);
    const names = new Map(metrics.map((m) => [m.id, m.systemName]));
    const rules = await catalog.listMappingRules(db, svc.id);
    const plans = await catalog.listPlans(db, { serviceId: svc.id });
    const certification = await findCertificationPlan(db, svc.id);
    const eventTypes = await exportEventTypes(db, svc.id);
    const metricDecl = (m: s.Metric) => ({
      systemName: m.systemName,
      friendlyName: m.friendlyName,
      unit: m.unit,
      ...(m.description && { description: m.description }),
      ...(m.kind === 'metric' && m.parentId !== null && { parent: 'hits' as const }),
    });
    out.push({
      name: svc.name,
      systemName: svc.systemName,
      ...(svc.description && { description: svc.description }),
      upstreamProduction: svc.upstreamProduction,
      upstreamSandbox: svc.upstreamSandbox,
      authMode: svc.authMode,
      credentialsLocation: svc.credentialsLocation,
      userKeyName: svc.userKeyName,
      appIdName: svc.appIdName,
      appKeyName: svc.appKeyName,
      secretToken: svc.secretToken,
      gatewayHost: svc.gatewayHost,
      gatewayPathPrefix: svc.gatewayPathPrefix,
      limiterMode: svc.limiterMode,
      limiterFailureMode: svc.limiterFailureMode,
      maxBodyBytes: svc.maxBodyBytes,
      forwardBearerToken: svc.forwardBearerToken,
      endUserKeySource: svc.endUserKeySource,
      endUserKeyName: svc.endUserKeyName,
      endUserLimits: (await catalog.listEndUserLimits(db, svc.id)).map((l) => ({
        metric: names.get(l.metricId) ?? l.metricId,
        period: l.period as s.Period,
        value: l.value,
      })),
      metrics: metrics.filter((m) => m.kind === 'metric' && m.systemName !== 'hits').map(metricDecl),
      methods: metrics.filter((m) => m.kind === 'method').map(metricDecl),
      mappingRules: rules.map((r) => ({
        httpMethod: r.httpMethod as Static<typeof s.HttpMethod>,
        pattern: r.pattern,
        metric: names.get(r.metricId) ?? r.metricId,
        ...(r.delta !== 1 && { delta: r.delta }),
        ...(r.last && { last: true }),
      })),
      plans: plans.map((p) => ({
        name: p.name,
        systemName: p.systemName,
        ...(p.description && { description: p.description }),
        state: p.state,
        approvalRequired: p.approvalRequired,
        trialDays: p.trialDays,
        endUserKeySource: p.endUserKeySource,
        endUserKeyName: p.endUserKeyName,
        ...(p.isDefault && { default: true }),
        limits: p.limits.map((l) => ({
          metric: names.get(l.metricId) ?? l.metricId,
          period: l.period as s.Period,
          value: l.value,
          ...(l.scope !== 'application' && { scope: l.scope as 'end_user' }),
        })),
        disabledMethods: p.disabledMetricIds.map((id) => names.get(id) ?? id),
      })),
      ...(certification && { certification: certification.plan }),
      ...(eventTypes && { eventTypes }),
    });
  }
  return { services: out };
}
