/**
 * Certification runs (issue 11). A partner starts a run on a sandbox application of a service with a plan; for its
 * window the sandbox gateway injects the plan's faults into that application's calls (`src/gateway/
 * certification-faults.ts`) and logs them; `evaluateRun` judges it:
 *
 *   running ──judged──▶ passed | failed          running ──cancel──▶ cancelled
 *
 * The automated checks are judged once the run has seen `minCalls` calls, or at `ends_at` on whatever it saw, and
 * are then kept. The run fails as soon as a required check failed; it passes when every required check passed and
 * every required manual item's latest evidence is accepted — which may come after `ends_at` (a review judges the
 * run again). One running run per application (a unique index holds it even when two starts race).
 */
import { type Application, getApplication } from '../access/index.js';
import { getService } from '../catalog/catalog.js';
import { type Actor, type ChangeDeps, runChange, systemActor } from '../events/index.js';
import { serviceInsightSettings } from '../insights/index.js';
import { type Clock, TrellisError, isoNow, newId, notFound, systemClock } from '../kernel/index.js';
import { type Db, type Executor, isUniqueViolation } from '../store/index.js';
import { type CallRow, judgeChecks } from './certification-checks.js';
import type { CertificationPlan, CertificationRun, CheckResult, RunState } from './certification-schemas.js';
import type { CertificationRunTable } from './certification-tables.js';
import { actorLabel, cdb, findCertificationPlan } from './certification.js';
import { approveGoLive, goLiveOf } from './golive.js';

function toRun(r: CertificationRunTable): CertificationRun {
  return {
    id: r.id,
    applicationId: r.application_id,
    serviceId: r.service_id,
    accountId: r.account_id,
    state: r.state as RunState,
    plan: JSON.parse(r.plan) as CertificationPlan,
    startedAt: r.started_at,
    endsAt: r.ends_at,
    finishedAt: r.finished_at,
    results: JSON.parse(r.results) as CheckResult[],
    startedBy: r.started_by,
  };
}

export async function getCertificationRun(db: Executor, id: string): Promise<CertificationRun> {
  const row = await cdb(db)
    .selectFrom('certification_runs')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) throw notFound('certification run', id);
  return toRun(row);
}

/** The runs of an application, newest first (at most `limit`). */
export async function listCertificationRuns(
  db: Executor,
  applicationId: string,
  limit = 50,
): Promise<CertificationRun[]> {
  const rows = await cdb(db)
    .selectFrom('certification_runs')
    .selectAll()
    .where('application_id', '=', applicationId)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map(toRun);
}

function runPayload(app: Application, run: CertificationRun) {
  return {
    application: app,
    applicationId: app.id,
    accountId: app.accountId,
    serviceId: app.serviceId,
    run,
    runId: run.id,
  };
}

/**
 * Starts a run on a sandbox application (the partner from the portal, or the provider on their behalf). Refused
 * with `409 invalid_state` for a production application, a service without a plan or without a sandbox, or while
 * another run of the application is running. Emits `certification.started`: gateways start injecting at once.
 */
export async function startCertificationRun(
  deps: ChangeDeps,
  actor: Actor,
  applicationId: string,
): Promise<CertificationRun> {
  try {
    return await runChange(deps, actor, async (tx, record) => {
      const app = await getApplication(tx, applicationId);
      if (app.environment !== 'sandbox')
        throw new TrellisError(
          'invalid_state',
          'Certification runs on the sandbox application; this one is a production application.',
        );
      if (app.state !== 'live')
        throw new TrellisError(
          'invalid_state',
          `The application is ${app.state}: only a live sandbox application can be certified.`,
        );
      const plan = await findCertificationPlan(tx, app.serviceId);
      if (!plan)
        throw new TrellisError(
          'invalid_state',
          'The service has no certification plan: there is nothing to certify against yet.',
        );
      const service = await getService(tx, app.serviceId);
      if (!service.upstreamSandbox)
        throw new TrellisError(
          'invalid_state',
          'The service has no sandbox: a certification run needs sandbox calls to watch.',
        );
      const running = await cdb(tx)
        .selectFrom('certification_runs')
        .select('id')
        .where('application_id', '=', app.id)
        .where('state', '=', 'running')
        .executeTakeFirst();
      if (running) throw alreadyRunning(running.id);
      const now = deps.clock.now();
      const id = newId('certificationRun', now);
      await cdb(tx)
        .insertInto('certification_runs')
        .values({
          id,
          application_id: app.id,
          service_id: app.serviceId,
          account_id: app.accountId,
          state: 'running',
          plan: JSON.stringify(plan.plan),
          started_at: new Date(now).toISOString(),
          ends_at: new Date(now + plan.plan.windowMinutes * 60_000).toISOString(),
          finished_at: null,
          results: '[]',
          started_by: actorLabel(actor),
        })
        .execute();
      const run = await getCertificationRun(tx, id);
      await record({
        type: 'certification.started',
        entityType: 'application',
        entityId: app.id,
        payload: runPayload(app, run),
      });
      return run;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw alreadyRunning(null);
    throw err;
  }
}

function alreadyRunning(runId: string | null): TrellisError {
  return new TrellisError(
    'invalid_state',
    'A certification run of this application is already running; cancel it or wait for its result.',
    runId === null ? undefined : { runId },
  );
}

/** Cancels a running run (the gateway stops injecting). Emits `certification.cancelled`. */
export async function cancelCertificationRun(
  deps: ChangeDeps,
  actor: Actor,
  runId: string,
): Promise<CertificationRun> {
  return runChange(deps, actor, async (tx, record) => {
    const before = await getCertificationRun(tx, runId);
    const now = isoNow(deps.clock);
    const done = await cdb(tx)
      .updateTable('certification_runs')
      .set({ state: 'cancelled', finished_at: now })
      .where('id', '=', runId)
      .where('state', '=', 'running')
      .executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1)
      throw new TrellisError(
        'invalid_state',
        `The run ${runId} is ${before.state}; only a running run can be cancelled.`,
        { runId, state: before.state },
      );
    const run = await getCertificationRun(tx, runId);
    await record({
      type: 'certification.cancelled',
      entityType: 'application',
      entityId: run.applicationId,
      payload: runPayload(await getApplication(tx, run.applicationId), run),
    });
    return run;
  });
}

/** The calls the gateway logged for a run, in order. */
export async function runCalls(db: Executor, runId: string, limit = 20_000): Promise<CallRow[]> {
  return cdb(db)
    .selectFrom('certification_calls')
    .selectAll()
    .where('run_id', '=', runId)
    .orderBy('at')
    .orderBy('id')
    .limit(limit)
    .execute();
}

/** The manual items' results: the latest upload of each item and its review. */
async function manualResults(db: Executor, run: CertificationRun): Promise<CheckResult[]> {
  if (run.plan.manualItems.length === 0) return [];
  const rows = await cdb(db)
    .selectFrom('certification_evidence')
    .select(['id', 'item_key', 'review_state', 'review_comment', 'uploaded_at'])
    .where('run_id', '=', run.id)
    .orderBy('id', 'desc')
    .execute();
  return run.plan.manualItems.map((item) => {
    const latest = rows.find((r) => r.item_key === item.key);
    const uploads = rows.filter((r) => r.item_key === item.key).length;
    const state = latest?.review_state ?? 'missing';
    return {
      kind: `manual:${item.key}`,
      required: item.required,
      passed: state === 'accepted' ? true : state === 'rejected' ? false : null,
      evidence: { numbers: { uploads }, timeline: [] },
      advice:
        state === 'missing'
          ? `Upload the evidence for "${item.title}".`
          : state === 'pending'
            ? 'Waiting for the provider to review the latest upload.'
            : state === 'rejected'
              ? `Rejected: ${latest!.review_comment} — upload a new one.`
              : '',
    };
  });
}

function depsOf(target: ChangeDeps | Db, clock: Clock | undefined): ChangeDeps {
  return 'db' in target && 'clock' in target ? target : { db: target as Db, clock: clock ?? systemClock };
}

/**
 * Judges a run (see the module comment) and stores its results; emits `certification.passed` / `certification.failed`
 * when it ends, and on a pass approves a waiting go-live request when the plan says `autoApprove`. Called by the
 * certification job for running runs, and after every evidence review. A run that is not running is returned as it
 * is. Takes change deps, or a database (with the system clock) for callers that have only that.
 */
export async function evaluateRun(
  target: ChangeDeps | Db,
  runId: string,
  options: { clock?: Clock } = {},
): Promise<CertificationRun> {
  const deps = depsOf(target, options.clock);
  const db = deps.db;
  const run = await getCertificationRun(db, runId);
  if (run.state !== 'running') return run;
  const now = deps.clock.now();
  const calls = await runCalls(db, runId);
  const previous = run.results.filter((r) => !r.kind.startsWith('manual:'));
  const judgedBefore = previous.length > 0 && previous.every((r) => r.passed !== null);
  let checks: CheckResult[];
  if (judgedBefore) {
    checks = previous;
  } else {
    const due = calls.length >= run.plan.minCalls || now >= Date.parse(run.endsAt);
    const settings = await serviceInsightSettings(db, run.serviceId);
    const rules = new Map(
      (
        await db
          .selectFrom('mapping_rules')
          .select(['id', 'http_method', 'pattern'])
          .where('service_id', '=', run.serviceId)
          .execute()
      ).map((r) => [r.id, r]),
    );
    const eventTypes = await db
      .withTables<{ service_event_types: { service_id: string; name: string } }>()
      .selectFrom('service_event_types')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('service_id', '=', run.serviceId)
      .executeTakeFirst();
    checks = judgeChecks({
      calls,
      plan: run.plan,
      settings,
      rules,
      webhookEventTypes: Number(eventTypes?.n ?? 0),
    });
    if (!due)
      checks = checks.map((c) => ({
        ...c,
        passed: null,
        advice: `Not judged yet: ${calls.length} of ${run.plan.minCalls} calls seen (judged then, or at ${run.endsAt}).`,
      }));
  }
  const manual = await manualResults(db, run);
  const results = [...checks, ...manual];
  const required = results.filter((r) => r.required);
  const checksJudged = checks.every((c) => c.passed !== null);
  const state: RunState = !checksJudged
    ? 'running'
    : checks.some((c) => c.required && c.passed === false)
      ? 'failed'
      : required.every((r) => r.passed === true)
        ? 'passed'
        : 'running';
  if (state === 'running') {
    await cdb(db)
      .updateTable('certification_runs')
      .set({ results: JSON.stringify(results) })
      .where('id', '=', runId)
      .where('state', '=', 'running')
      .execute();
    return getCertificationRun(db, runId);
  }
  return finishRun(deps, run, state, results);
}

async function finishRun(
  deps: ChangeDeps,
  run: CertificationRun,
  state: 'passed' | 'failed',
  results: CheckResult[],
): Promise<CertificationRun> {
  return runChange(deps, systemActor, async (tx, record) => {
    const done = await cdb(tx)
      .updateTable('certification_runs')
      .set({ state, results: JSON.stringify(results), finished_at: isoNow(deps.clock) })
      .where('id', '=', run.id)
      .where('state', '=', 'running')
      .executeTakeFirst();
    const after = await getCertificationRun(tx, run.id);
    // judged meanwhile by another worker or a review: that one announced it
    if (Number(done.numUpdatedRows) !== 1) return after;
    const app = await getApplication(tx, run.applicationId);
    await record({
      type: state === 'passed' ? 'certification.passed' : 'certification.failed',
      entityType: 'application',
      entityId: app.id,
      payload: runPayload(app, after),
    });
    return after;
  }).then(async (after) => {
    if (after.state === 'passed' && after.plan.autoApprove) await autoApprove(deps, after);
    return after;
  });
}

/** A run that passed with `autoApprove`: its application's waiting go-live request is approved at once. */
async function autoApprove(deps: ChangeDeps, run: CertificationRun): Promise<void> {
  const request = await goLiveOf(deps.db, run.applicationId);
  if (request?.state !== 'requested' || request.applicationId !== run.applicationId) return;
  try {
    await approveGoLive(deps, systemActor, request.id, {
      comment: `Approved automatically: certification run ${run.id} passed.`,
    });
  } catch (err) {
    // decided meanwhile by the provider: their decision stands
    if (!(err instanceof TrellisError && err.code === 'invalid_state')) throw err;
  }
}

/** Judges every running run (the certification job); returns how many ended. */
export async function judgeRunningRuns(deps: ChangeDeps): Promise<number> {
  const ids = await cdb(deps.db)
    .selectFrom('certification_runs')
    .select('id')
    .where('state', '=', 'running')
    .orderBy('id')
    .limit(1000)
    .execute();
  let ended = 0;
  for (const { id } of ids) {
    const run = await evaluateRun(deps, id);
    if (run.state !== 'running') ended++;
  }
  return ended;
}
