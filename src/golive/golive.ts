/**
 * Go-live: a partner asks to take a sandbox application to production; the provider approves in one click (a
 * production application of its own, with its own app id and keys, is made), rejects with a comment, or later
 * revokes production. The first production key is collected once by the partner and shown only to them.
 *
 *   requested ──approve──▶ approved ──revoke──▶ revoked
 *       └──────reject────▶ rejected
 *
 * A request can be made again after a rejection or a revocation; never while one waits or production is live.
 * When the service has a certification plan, a request needs a passed certification run of the application
 * (`409 certification_required` otherwise), and the plan's `autoApprove` approves it at once.
 */
import type { Updateable } from 'kysely';
import {
  type Application,
  type NewSecret,
  getApplication,
  insertApplicationKey,
  insertApplicationWithoutKey,
} from '../access/index.js';
import { type Actor, type ChangeDeps, runChange, systemActor } from '../events/index.js';
import { TrellisError, isoNow, newId, notFound } from '../kernel/index.js';
import { type Executor, lockRow } from '../store/index.js';
import { cdb, findCertificationPlan } from './certification.js';
import type { GoLiveRequestTable, GoLiveTables } from './golive-tables.js';
import type { GoLiveRequest, GoLiveState } from './schemas.js';

function gdb(db: Executor) {
  return db.withTables<GoLiveTables>();
}

function toRequest(r: GoLiveRequestTable): GoLiveRequest {
  return {
    id: r.id,
    applicationId: r.application_id,
    accountId: r.account_id,
    serviceId: r.service_id,
    state: r.state as GoLiveState,
    note: r.note,
    decisionComment: r.decision_comment,
    productionApplicationId: r.production_application_id,
    keyCollected: r.key_collected_at !== null,
    requestedAt: r.requested_at,
    decidedAt: r.decided_at,
    revokedAt: r.revoked_at,
    updatedAt: r.updated_at,
  };
}

export async function getGoLiveRequest(db: Executor, id: string): Promise<GoLiveRequest> {
  const row = await gdb(db).selectFrom('golive_requests').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('go-live request', id);
  return toRequest(row);
}

export interface GoLiveFilter {
  state?: string | undefined;
  applicationId?: string | undefined;
  accountId?: string | undefined;
  serviceId?: string | undefined;
}

/** Requests, newest first (at most `limit`). */
export async function listGoLiveRequests(
  db: Executor,
  filter: GoLiveFilter,
  limit = 200,
): Promise<GoLiveRequest[]> {
  let q = gdb(db).selectFrom('golive_requests').selectAll();
  if (filter.state) q = q.where('state', '=', filter.state);
  if (filter.applicationId) q = q.where('application_id', '=', filter.applicationId);
  if (filter.accountId) q = q.where('account_id', '=', filter.accountId);
  if (filter.serviceId) q = q.where('service_id', '=', filter.serviceId);
  const rows = await q.orderBy('id', 'desc').limit(limit).execute();
  return rows.map(toRequest);
}

/** The latest request of a sandbox application, or of the production application it made; null if none. */
export async function goLiveOf(db: Executor, applicationId: string): Promise<GoLiveRequest | null> {
  const row = await gdb(db)
    .selectFrom('golive_requests')
    .selectAll()
    .where((eb) =>
      eb.or([eb('application_id', '=', applicationId), eb('production_application_id', '=', applicationId)]),
    )
    .orderBy('id', 'desc')
    .executeTakeFirst();
  return row ? toRequest(row) : null;
}

function payload(app: Application, request: GoLiveRequest, extra: Record<string, unknown> = {}) {
  return {
    application: app,
    applicationId: app.id,
    accountId: app.accountId,
    serviceId: app.serviceId,
    request,
    ...extra,
  };
}

function wrongState(request: GoLiveRequest, action: string, allowed: string): TrellisError {
  return new TrellisError(
    'invalid_state',
    `The go-live request ${request.id} is ${request.state}; only a request that is ${allowed} can be ${action}.`,
    { requestId: request.id, state: request.state },
  );
}

/**
 * Moves a request on from `from` in one conditional write, so that of two decisions taken at once (approve on
 * one control process, reject on another) the second finds the request moved and is refused with the state it
 * found, instead of overwriting the first.
 */
async function moveRequest(
  db: Executor,
  requestId: string,
  from: GoLiveState,
  action: string,
  set: Updateable<GoLiveRequestTable>,
): Promise<void> {
  const moved = await gdb(db)
    .updateTable('golive_requests')
    .set(set)
    .where('id', '=', requestId)
    .where('state', '=', from)
    .executeTakeFirst();
  if (Number(moved.numUpdatedRows) !== 1)
    throw wrongState(await getGoLiveRequest(db, requestId), action, from);
}

/** The latest passed certification run of an application, or null. */
export async function passedRunOf(db: Executor, applicationId: string): Promise<{ id: string } | null> {
  const row = await cdb(db)
    .selectFrom('certification_runs')
    .select('id')
    .where('application_id', '=', applicationId)
    .where('state', '=', 'passed')
    .orderBy('id', 'desc')
    .executeTakeFirst();
  return row ?? null;
}

/**
 * The partner (portal, or the provider on their behalf) asks to take a sandbox application live. With a
 * certification plan on the service, only after a passed run; with `autoApprove`, the request is approved at once
 * (the answer is then the approved request).
 */
export async function requestGoLive(
  deps: ChangeDeps,
  actor: Actor,
  applicationId: string,
  input: { note?: string | undefined },
): Promise<GoLiveRequest> {
  const { request, autoApprove } = await runChange(deps, actor, async (tx, record) => {
    // one open request per application: requests made at once wait here, and each sees the one before it
    await lockRow(tx, 'applications', applicationId);
    const app = await getApplication(tx, applicationId);
    if (app.environment !== 'sandbox')
      throw new TrellisError(
        'invalid_state',
        'This is a production application: go-live is asked for from the sandbox application.',
      );
    if (app.state !== 'live')
      throw new TrellisError(
        'invalid_state',
        `The application is ${app.state}: only a live sandbox application can ask to go live.`,
      );
    const latest = await goLiveOf(tx, app.id);
    if (latest?.state === 'requested')
      throw new TrellisError('invalid_state', 'A go-live request of this application is already waiting.', {
        requestId: latest.id,
      });
    if (latest?.state === 'approved')
      throw new TrellisError('invalid_state', 'This application is already live in production.', {
        requestId: latest.id,
        productionApplicationId: latest.productionApplicationId,
      });
    const plan = await findCertificationPlan(tx, app.serviceId);
    const passed = plan ? await passedRunOf(tx, app.id) : null;
    if (plan && !passed)
      throw new TrellisError(
        'certification_required',
        'This API asks for a passed certification run before go-live: start one from the application page, ' +
          'and the report card says what to fix.',
      );
    const now = isoNow(deps.clock);
    const id = newId('goliveRequest');
    await gdb(tx)
      .insertInto('golive_requests')
      .values({
        id,
        application_id: app.id,
        account_id: app.accountId,
        service_id: app.serviceId,
        state: 'requested',
        note: input.note?.trim() ?? '',
        decision_comment: '',
        production_application_id: null,
        requested_at: now,
        decided_at: null,
        revoked_at: null,
        key_collected_at: null,
        updated_at: now,
      })
      .execute();
    const request = await getGoLiveRequest(tx, id);
    await record({
      type: 'application.golive_requested',
      entityType: 'application',
      entityId: app.id,
      payload: payload(app, request),
    });
    return { request, autoApprove: plan?.plan.autoApprove === true && passed !== null ? passed.id : null };
  });
  if (autoApprove === null) return request;
  const approved = await approveGoLive(deps, systemActor, request.id, {
    comment: `Approved automatically: certification run ${autoApprove} passed.`,
  });
  return approved.request;
}

/**
 * The provider approves: a production application is made for the same account, service and plan (its own app
 * id; no key yet — the partner collects the first one, shown once to them). Emits `application.promoted`.
 */
export async function approveGoLive(
  deps: ChangeDeps,
  actor: Actor,
  requestId: string,
  input: { comment?: string | undefined },
): Promise<{ request: GoLiveRequest; productionApplication: Application }> {
  return runChange(deps, actor, async (tx, record) => {
    const before = await getGoLiveRequest(tx, requestId);
    if (before.state !== 'requested') throw wrongState(before, 'approved', 'requested');
    const sandbox = await getApplication(tx, before.applicationId);
    const production = await insertApplicationWithoutKey(tx, deps.clock, record, {
      accountId: sandbox.accountId,
      serviceId: sandbox.serviceId,
      planId: sandbox.planId,
      name: `${sandbox.name} (production)`,
      description: sandbox.description,
      environment: 'production',
      allowedIps: sandbox.allowedIps,
      customFields: sandbox.customFields,
    });
    const now = isoNow(deps.clock);
    await moveRequest(tx, requestId, 'requested', 'approved', {
      state: 'approved',
      production_application_id: production.id,
      decision_comment: input.comment?.trim() ?? '',
      decided_at: now,
      updated_at: now,
    });
    const request = await getGoLiveRequest(tx, requestId);
    await record({
      type: 'application.promoted',
      entityType: 'application',
      entityId: production.id,
      payload: payload(production, request, { sandboxApplicationId: sandbox.id }),
    });
    return { request, productionApplication: production };
  });
}

/** The provider rejects, saying why (the partner reads the comment). */
export async function rejectGoLive(
  deps: ChangeDeps,
  actor: Actor,
  requestId: string,
  input: { comment: string },
): Promise<GoLiveRequest> {
  return runChange(deps, actor, async (tx, record) => {
    const before = await getGoLiveRequest(tx, requestId);
    if (before.state !== 'requested') throw wrongState(before, 'rejected', 'requested');
    const now = isoNow(deps.clock);
    await moveRequest(tx, requestId, 'requested', 'rejected', {
      state: 'rejected',
      decision_comment: input.comment.trim(),
      decided_at: now,
      updated_at: now,
    });
    const request = await getGoLiveRequest(tx, requestId);
    const app = await getApplication(tx, request.applicationId);
    await record({
      type: 'application.golive_rejected',
      entityType: 'application',
      entityId: app.id,
      payload: payload(app, request),
    });
    return request;
  });
}

/**
 * The provider revokes production: the production application is suspended and every key of it revoked, so the
 * gateway refuses them at once; the sandbox application carries on. The partner may ask again later.
 */
export async function revokeProduction(
  deps: ChangeDeps,
  actor: Actor,
  requestId: string,
  input: { comment: string },
): Promise<GoLiveRequest> {
  return runChange(deps, actor, async (tx, record) => {
    const before = await getGoLiveRequest(tx, requestId);
    if (before.state !== 'approved') throw wrongState(before, 'revoked', 'approved');
    const now = isoNow(deps.clock);
    // the request moves first: a second revocation at once is refused before it touches the keys
    await moveRequest(tx, requestId, 'approved', 'revoked', {
      state: 'revoked',
      decision_comment: input.comment.trim(),
      revoked_at: now,
      updated_at: now,
    });
    if (before.productionApplicationId !== null) {
      const productionId = before.productionApplicationId;
      await tx
        .updateTable('credentials')
        .set({ state: 'revoked', revoked_at: now })
        .where('application_id', '=', productionId)
        .where('state', '=', 'active')
        .execute();
      await tx
        .updateTable('applications')
        .set({ state: 'suspended', updated_at: now })
        .where('id', '=', productionId)
        .execute();
    }
    const request = await getGoLiveRequest(tx, requestId);
    const app = await getApplication(tx, request.productionApplicationId ?? request.applicationId);
    await record({
      type: 'application.production_revoked',
      entityType: 'application',
      entityId: app.id,
      payload: payload(app, request),
    });
    return request;
  });
}

/**
 * The partner collects the first production key of an approved request: made now, returned once, never shown
 * to the provider. A second collection is refused (further keys: the production application's own key page).
 */
export async function collectProductionKey(
  deps: ChangeDeps,
  actor: Actor,
  requestId: string,
): Promise<{ request: GoLiveRequest; secret: NewSecret }> {
  return runChange(deps, actor, async (tx, record) => {
    const before = await getGoLiveRequest(tx, requestId);
    if (before.state !== 'approved' || before.productionApplicationId === null)
      throw wrongState(before, 'given its production key', 'approved');
    const now = isoNow(deps.clock);
    // still approved: a revocation that committed meanwhile leaves no key to collect
    const claimed = await gdb(tx)
      .updateTable('golive_requests')
      .set({ key_collected_at: now, updated_at: now })
      .where('id', '=', requestId)
      .where('state', '=', 'approved')
      .where('key_collected_at', 'is', null)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) {
      const current = await getGoLiveRequest(tx, requestId);
      if (current.state !== 'approved') throw wrongState(current, 'given its production key', 'approved');
      throw new TrellisError(
        'invalid_state',
        'The first production key was already collected; add another from the production application.',
      );
    }
    const secret = await insertApplicationKey(tx, deps.clock, record, before.productionApplicationId);
    return { request: await getGoLiveRequest(tx, requestId), secret };
  });
}
