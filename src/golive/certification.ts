/**
 * Certification (issue 11): a plan per service — the automated checks judged on a sandbox application's own traffic,
 * the faults the sandbox gateway injects into that traffic during a run, the manual items the provider reviews —
 * and the runs a partner starts. `evaluateRun` is the one place a run is judged (helper code of the evidence review
 * calls it after every review, so a run can pass on the last acceptance).
 */
import { Value } from '@sinclair/typebox/value';
import { getService } from '../catalog/catalog.js';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { type FieldProblem, TrellisError, invalid, isoNow } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import {
  CertificationPlan,
  type CertificationPlanInput,
  type CertificationPlanView,
} from './certification-schemas.js';
import type { CertificationTables } from './certification-tables.js';

export function cdb(db: Executor) {
  return db.withTables<CertificationTables>();
}

/** `<actor type>:<actor id>`, as the certification tables record who did something. */
export function actorLabel(actor: Actor): string {
  return actor.id === null ? actor.type : `${actor.type}:${actor.id}`;
}

/** Whether the fault a check needs to judge anything is injected by the plan. */
const checkNeeds: Partial<Record<string, { fault: (p: CertificationPlan) => boolean; sentence: string }>> = {
  retry_after: {
    fault: (p) => p.faults.rateLimitEvery > 0,
    sentence: 'the retry_after check needs faults.rateLimitEvery above 0 (a 429 to react to)',
  },
  backoff_5xx: {
    fault: (p) => p.faults.serverErrorEvery > 0 || p.faults.unavailableEvery > 0,
    sentence: 'the backoff_5xx check needs faults.serverErrorEvery or faults.unavailableEvery above 0',
  },
  expired_token: {
    fault: (p) => p.faults.expiredTokenEvery > 0,
    sentence: 'the expired_token check needs faults.expiredTokenEvery above 0',
  },
  slow_answer: {
    fault: (p) => p.faults.slowEvery > 0 && p.faults.slowMs > 0,
    sentence: 'the slow_answer check needs faults.slowEvery and faults.slowMs above 0',
  },
};

/**
 * The full plan from an input (defaults filled in), or a `validation_failed` error naming every problem: duplicate
 * check kinds or item keys, a check whose fault is off, a slow fault without a delay.
 */
export function normalizePlan(input: CertificationPlanInput): CertificationPlan {
  const raw = structuredClone(input) as Record<string, unknown>;
  raw.faults ??= {};
  const plan = Value.Default(CertificationPlan, raw) as CertificationPlan;
  const problems: FieldProblem[] = [...Value.Errors(CertificationPlan, plan)].map((e) => ({
    field: e.path.replace(/^\//, '').replaceAll('/', '.') || 'plan',
    message: e.message,
  }));
  if (problems.length > 0) throw invalid(problems);
  const kinds = new Set<string>();
  plan.checks.forEach((c, i) => {
    if (kinds.has(c.kind)) problems.push({ field: `checks.${i}.kind`, message: `${c.kind} is listed twice` });
    kinds.add(c.kind);
    const need = checkNeeds[c.kind];
    if (need && !need.fault(plan)) problems.push({ field: `checks.${i}.kind`, message: need.sentence });
  });
  const keys = new Set<string>();
  plan.manualItems.forEach((m, i) => {
    if (keys.has(m.key))
      problems.push({ field: `manualItems.${i}.key`, message: `${m.key} is listed twice` });
    keys.add(m.key);
  });
  if (plan.faults.slowEvery > 0 && plan.faults.slowMs === 0)
    problems.push({ field: 'faults.slowMs', message: 'a slow fault needs slowMs above 0' });
  if (problems.length > 0) throw invalid(problems);
  return plan;
}

export async function findCertificationPlan(
  db: Executor,
  serviceId: string,
): Promise<CertificationPlanView | null> {
  const row = await cdb(db)
    .selectFrom('certification_plans')
    .selectAll()
    .where('service_id', '=', serviceId)
    .executeTakeFirst();
  if (!row) return null;
  return {
    serviceId: row.service_id,
    plan: JSON.parse(row.plan) as CertificationPlan,
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}

/** A service's plan; 404 when the service has none (or does not exist). */
export async function getCertificationPlan(db: Executor, serviceId: string): Promise<CertificationPlanView> {
  await getService(db, serviceId);
  const plan = await findCertificationPlan(db, serviceId);
  if (!plan) throw notFoundPlan(serviceId);
  return plan;
}

function notFoundPlan(serviceId: string) {
  return new TrellisError(
    'not_found',
    `The service ${serviceId} has no certification plan; PUT /services/${serviceId}/certification-plan writes one.`,
  );
}

/** Writes (creates or replaces) a service's plan. Emits `certification_plan.updated` (audit log, outbox). */
export async function putCertificationPlan(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  input: CertificationPlanInput,
): Promise<CertificationPlanView> {
  const plan = normalizePlan(input);
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    const now = isoNow(deps.clock);
    const values = { plan: JSON.stringify(plan), updated_at: now, updated_by: actorLabel(actor) };
    await cdb(tx)
      .insertInto('certification_plans')
      .values({ service_id: serviceId, ...values })
      .onConflict((oc) => oc.column('service_id').doUpdateSet(values))
      .execute();
    const view = (await findCertificationPlan(tx, serviceId))!;
    await record({
      type: 'certification_plan.updated',
      entityType: 'certification_plan',
      entityId: serviceId,
      payload: { serviceId, plan: view },
    });
    return view;
  });
}

/** Removes a service's plan (go-live no longer asks for a passed run). Emits `certification_plan.deleted`. */
export async function deleteCertificationPlan(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const before = await getCertificationPlan(tx, serviceId);
    const deleted = await cdb(tx)
      .deleteFrom('certification_plans')
      .where('service_id', '=', serviceId)
      .executeTakeFirst();
    // of two deletions at once (two control processes), the one that removed nothing answers as it would after
    // the other: one deletion, one event
    if (Number(deleted.numDeletedRows) === 0) throw notFoundPlan(serviceId);
    await record({
      type: 'certification_plan.deleted',
      entityType: 'certification_plan',
      entityId: serviceId,
      payload: { serviceId, plan: before },
    });
  });
}
