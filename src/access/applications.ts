/** Applications, their credentials (with rotation), their plans and their lifecycle. */
import { randomBytes } from 'node:crypto';
import { getPlan, getService } from '../catalog/index.js';
import type { Change } from '../events/index.js';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import {
  type Clock,
  type FieldProblem,
  type SecretKind,
  TrellisError,
  displayPrefix,
  parseIpRange,
  generateSecret,
  hashSecret,
  invalid,
  isoNow,
  newId,
  notFound,
} from '../kernel/index.js';
import type { ApplicationFilter } from './access.store.js';
import {
  countActiveCredentials,
  findApplication,
  listApplicationRows,
  toCredential,
} from './access.store.js';
import { type Executor, type PageRequest, type Tx, deleteRow, lockRow } from '../store/index.js';
import { getAccount } from './accounts.js';
import { checkCustomFields } from './custom-fields.js';
import type {
  Application,
  ApplicationCreate,
  ApplicationUpdate,
  CreatedApplication,
  Credential,
  NewSecret,
} from './schemas.js';

type Record_ = (change: Change) => Promise<void>;

/** Up to five keys of a kind may be active at once, so a key can be rotated without downtime. */
export const maxActiveKeys = 5;

/** Which credential a service's auth mode gives an application. */
function credentialKindFor(authMode: string): 'user_key' | 'app_key' | 'client_secret' {
  if (authMode === 'app_id_app_key') return 'app_key';
  if (authMode === 'oauth2') return 'client_secret';
  return 'user_key';
}

const secretKindOf: Record<Credential['kind'], SecretKind> = {
  user_key: 'userKey',
  app_key: 'appKey',
  client_secret: 'clientSecret',
};

/**
 * Checks allowed IPs and CIDRs with the parser the gateway matches them with (`kernel/ip-ranges.ts`), so what is
 * stored can match; names each bad entry; returns them normalised (trimmed, lower case).
 */
export function checkAllowedIps(values: string[], field = 'allowedIps'): string[] {
  const problems: FieldProblem[] = [];
  const out = values.map((raw, i) => {
    const v = raw.trim().toLowerCase();
    if (parseIpRange(v) === null)
      problems.push({ field: `${field}[${i}]`, message: `"${raw}" is not an IP address or CIDR range` });
    return v;
  });
  if (problems.length > 0) throw invalid(problems);
  return out;
}

export async function getApplication(db: Executor, id: string): Promise<Application> {
  const app = await findApplication(db, id);
  if (!app) throw notFound('application', id);
  return app;
}

export function listApplications(db: Executor, filter: ApplicationFilter, page: PageRequest) {
  return listApplicationRows(db, filter, page);
}

async function insertCredential(
  tx: Tx,
  clock: Clock,
  applicationId: string,
  kind: Credential['kind'],
): Promise<NewSecret> {
  const value = generateSecret(secretKindOf[kind]);
  const id = newId('credential');
  await tx
    .insertInto('credentials')
    .values({
      id,
      application_id: applicationId,
      kind,
      secret_hash: hashSecret(value),
      display_prefix: displayPrefix(value),
      state: 'active',
      created_at: isoNow(clock),
      revoked_at: null,
    })
    .execute();
  return { credentialId: id, kind, value };
}

async function resolvePlan(db: Executor, serviceId: string, planId: string | undefined, field: string) {
  if (planId) {
    const plan = await getPlan(db, planId).catch(() => undefined);
    if (!plan || plan.serviceId !== serviceId) {
      throw invalid([{ field, message: `no plan ${planId} in service ${serviceId}` }]);
    }
    return plan;
  }
  const row = await db
    .selectFrom('plans')
    .select('id')
    .where('service_id', '=', serviceId)
    .where('is_default', '=', 1)
    .executeTakeFirst();
  if (!row) throw invalid([{ field, message: 'the service has no default plan; name one' }]);
  return getPlan(db, row.id);
}

/**
 * Inserts an application inside a caller's transaction, with its first credential. A plan that requires
 * approval makes the application pending until the provider approves it.
 */
export async function insertApplication(
  tx: Tx,
  clock: Clock,
  record: Record_,
  input: ApplicationCreate,
  prefix = '',
): Promise<CreatedApplication> {
  const { secret, ...application } = await insertApplicationRow(tx, clock, record, input, prefix, true);
  return { ...application, secret: secret! };
}

/**
 * Inserts the production application go-live approval makes (src/golive), without a key: its first key is
 * collected by the partner, shown once to them and never to the provider who approved.
 */
export async function insertApplicationWithoutKey(
  tx: Tx,
  clock: Clock,
  record: Record_,
  input: ApplicationCreate,
): Promise<Application> {
  const { secret: _none, ...application } = await insertApplicationRow(tx, clock, record, input, '', false);
  return application;
}

async function insertApplicationRow(
  tx: Tx,
  clock: Clock,
  record: Record_,
  input: ApplicationCreate,
  prefix: string,
  withKey: boolean,
): Promise<Application & { secret?: NewSecret }> {
  await getAccount(tx, input.accountId);
  const service = await getService(tx, input.serviceId).catch(() => {
    throw invalid([{ field: `${prefix}serviceId`, message: `no service ${input.serviceId}` }]);
  });
  const plan = await resolvePlan(tx, service.id, input.planId, `${prefix}planId`);
  const allowedIps = checkAllowedIps(input.allowedIps ?? [], `${prefix}allowedIps`);
  const customFields = await checkCustomFields(tx, 'application', input.customFields, {
    prefix: `${prefix}customFields`,
  });
  const id = newId('application');
  const now = isoNow(clock);
  await tx
    .insertInto('applications')
    .values({
      id,
      account_id: input.accountId,
      service_id: service.id,
      plan_id: plan.id,
      name: input.name,
      description: input.description ?? '',
      state: plan.approvalRequired ? 'pending' : 'live',
      environment: input.environment ?? 'sandbox',
      app_id: randomBytes(8).toString('hex'),
      allowed_ips: JSON.stringify(allowedIps),
      custom_fields: JSON.stringify(customFields),
      requested_plan_id: null,
      created_at: now,
      updated_at: now,
    })
    .execute();
  const secret = withKey
    ? await insertCredential(tx, clock, id, credentialKindFor(service.authMode))
    : undefined;
  const application = await getApplication(tx, id);
  await record({
    type: 'application.created',
    entityType: 'application',
    entityId: id,
    payload: { application, applicationId: id, accountId: input.accountId, serviceId: service.id },
  });
  return secret === undefined ? application : { ...application, secret };
}

/**
 * Production access is the end of go-live (src/golive): a production application is created here only when the
 * provider explicitly skips certification and says why; the decision is an audit entry of its own
 * (`application.certification_skipped`).
 */
function checkSkipCertification(input: ApplicationCreate): string | null {
  const production = input.environment === 'production';
  if (!production) {
    if (input.skipCertification !== undefined || input.skipCertificationReason !== undefined)
      throw invalid([
        { field: 'skipCertification', message: 'only a production application can skip certification' },
      ]);
    return null;
  }
  if (input.skipCertification !== true)
    throw new TrellisError(
      'certification_required',
      'A production application comes from go-live (certification, then approval). To create one directly, ' +
        'send skipCertification: true and skipCertificationReason; the decision is written to the audit log.',
    );
  const reason = input.skipCertificationReason?.trim();
  if (!reason)
    throw invalid([
      { field: 'skipCertificationReason', message: 'say why certification is skipped (it is audited)' },
    ]);
  return reason;
}

export function createApplication(
  deps: ChangeDeps,
  actor: Actor,
  input: ApplicationCreate,
): Promise<CreatedApplication> {
  const skipReason = checkSkipCertification(input);
  return runChange(deps, actor, async (tx, record) => {
    const created = await insertApplication(tx, deps.clock, record, input);
    if (skipReason !== null) {
      const { secret: _shownOnce, ...application } = created;
      await record({
        type: 'application.certification_skipped',
        entityType: 'application',
        entityId: created.id,
        payload: appPayload(application, { reason: skipReason }),
      });
    }
    return created;
  });
}

function appPayload(application: Application, extra: Record<string, unknown> = {}) {
  return {
    application,
    applicationId: application.id,
    accountId: application.accountId,
    serviceId: application.serviceId,
    ...extra,
  };
}

export async function updateApplication(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  input: ApplicationUpdate,
): Promise<Application> {
  return runChange(deps, actor, async (tx, record) => {
    // the custom fields are merged with those stored: PATCHes at once (two control processes) merge one after
    // the other, so none loses the fields another set
    await lockRow(tx, 'applications', id);
    const before = await getApplication(tx, id);
    const allowedIps = input.allowedIps === undefined ? undefined : checkAllowedIps(input.allowedIps);
    const customFields =
      input.customFields === undefined
        ? before.customFields
        : await checkCustomFields(tx, 'application', input.customFields, { existing: before.customFields });
    await tx
      .updateTable('applications')
      .set({
        ...(input.name !== undefined && { name: input.name }),
        ...(input.description !== undefined && { description: input.description }),
        ...(allowedIps !== undefined && { allowed_ips: JSON.stringify(allowedIps) }),
        custom_fields: JSON.stringify(customFields),
        updated_at: isoNow(deps.clock),
      })
      .where('id', '=', id)
      .execute();
    const application = await getApplication(tx, id);
    await record({
      type: 'application.updated',
      entityType: 'application',
      entityId: id,
      payload: appPayload(application),
    });
    return application;
  });
}

const applicationTransitions = {
  approve: { from: ['pending'], to: 'live', event: 'application.approved' },
  suspend: { from: ['pending', 'live'], to: 'suspended', event: 'application.suspended' },
  resume: { from: ['suspended'], to: 'live', event: 'application.resumed' },
} as const;

export async function transitionApplication(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  action: keyof typeof applicationTransitions,
): Promise<Application> {
  const t = applicationTransitions[action];
  const refused = (state: string) =>
    new TrellisError('invalid_state', `An application that is ${state} cannot be ${action}d.`);
  return runChange(deps, actor, async (tx, record) => {
    const before = await getApplication(tx, id);
    if (!(t.from as readonly string[]).includes(before.state)) throw refused(before.state);
    // conditional on the state read: of two transitions at once (two control processes), the second is refused
    const moved = await tx
      .updateTable('applications')
      .set({ state: t.to, updated_at: isoNow(deps.clock) })
      .where('id', '=', id)
      .where('state', 'in', t.from)
      .executeTakeFirst();
    if (Number(moved.numUpdatedRows) !== 1) throw refused((await getApplication(tx, id)).state);
    const application = await getApplication(tx, id);
    await record({
      type: t.event,
      entityType: 'application',
      entityId: id,
      payload: appPayload(application),
    });
    return application;
  });
}

/** Moves an application to another plan of its service (the provider's decision; clears any request). */
export async function changeApplicationPlan(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  planId: string,
): Promise<Application> {
  return runChange(deps, actor, async (tx, record) => {
    // changes at once (two control processes) move one after the other, each from the plan the one before left,
    // so the events' fromPlanId → toPlanId make one chain
    await lockRow(tx, 'applications', id);
    const before = await getApplication(tx, id);
    const plan = await resolvePlan(tx, before.serviceId, planId, 'planId');
    await tx
      .updateTable('applications')
      .set({ plan_id: plan.id, requested_plan_id: null, updated_at: isoNow(deps.clock) })
      .where('id', '=', id)
      .execute();
    const application = await getApplication(tx, id);
    await record({
      type: 'application.plan_changed',
      entityType: 'application',
      entityId: id,
      payload: appPayload(application, { fromPlanId: before.planId, toPlanId: plan.id }),
    });
    return application;
  });
}

/**
 * A developer asks for another plan: a published plan without approval applies at once; otherwise the request
 * waits for the provider.
 */
export async function requestApplicationPlan(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  planId: string,
): Promise<Application> {
  const app = await getApplication(deps.db, id);
  const plan = await resolvePlan(deps.db, app.serviceId, planId, 'planId');
  if (plan.state !== 'published')
    throw invalid([{ field: 'planId', message: `no plan ${planId} in this service` }]);
  if (!plan.approvalRequired) return changeApplicationPlan(deps, actor, id, planId);
  return runChange(deps, actor, async (tx, record) => {
    await tx
      .updateTable('applications')
      .set({ requested_plan_id: plan.id, updated_at: isoNow(deps.clock) })
      .where('id', '=', id)
      .execute();
    const application = await getApplication(tx, id);
    await record({
      type: 'application.plan_change_requested',
      entityType: 'application',
      entityId: id,
      payload: appPayload(application, { requestedPlanId: plan.id }),
    });
    return application;
  });
}

/** The provider declines a developer's plan request: the application stays on its plan (issue 13). */
export async function declineApplicationPlan(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
): Promise<Application> {
  return runChange(deps, actor, async (tx, record) => {
    const refused = (requestedPlanId: string | null) =>
      new TrellisError(
        'invalid_state',
        requestedPlanId === null
          ? 'This application asks for no other plan.'
          : `This application now asks for plan ${requestedPlanId}.`,
      );
    const before = await getApplication(tx, id);
    if (before.requestedPlanId === null) throw refused(null);
    // conditional on the request read: of two declines at once (two control processes) the second is refused,
    // and a request for another plan made meanwhile is not declined in the place of the one read
    const declined = await tx
      .updateTable('applications')
      .set({ requested_plan_id: null, updated_at: isoNow(deps.clock) })
      .where('id', '=', id)
      .where('requested_plan_id', '=', before.requestedPlanId)
      .executeTakeFirst();
    if (Number(declined.numUpdatedRows) !== 1) throw refused((await getApplication(tx, id)).requestedPlanId);
    const application = await getApplication(tx, id);
    await record({
      type: 'application.plan_change_declined',
      entityType: 'application',
      entityId: id,
      payload: appPayload(application, { declinedPlanId: before.requestedPlanId }),
    });
    return application;
  });
}

export async function deleteApplication(deps: ChangeDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const application = await getApplication(tx, id);
    if (!(await deleteRow(tx, 'applications', id))) throw notFound('application', id);
    await record({
      type: 'application.deleted',
      entityType: 'application',
      entityId: id,
      payload: appPayload(application),
    });
  });
}

/** Adds a key (the kind the service's auth mode uses); refuses past five active ones. The value is shown once. */
export async function addApplicationKey(deps: ChangeDeps, actor: Actor, id: string): Promise<NewSecret> {
  return runChange(deps, actor, (tx, record) => insertApplicationKey(tx, deps.clock, record, id));
}

/** `addApplicationKey` inside a caller's transaction (go-live hands the first production key out this way). */
export async function insertApplicationKey(
  tx: Tx,
  clock: Clock,
  record: Record_,
  id: string,
): Promise<NewSecret> {
  // keys added at once (two control processes) count one after the other, so the limit holds
  await lockRow(tx, 'applications', id);
  const application = await getApplication(tx, id);
  const service = await getService(tx, application.serviceId);
  const kind = credentialKindFor(service.authMode);
  if ((await countActiveCredentials(tx, id, kind)) >= maxActiveKeys) {
    throw new TrellisError(
      'limit_reached',
      `An application may have at most ${maxActiveKeys} active keys; revoke one first.`,
    );
  }
  const secret = await insertCredential(tx, clock, id, kind);
  const credential = (await getApplication(tx, id)).credentials.find((c) => c.id === secret.credentialId);
  await record({
    type: 'credential.created',
    entityType: 'credential',
    entityId: secret.credentialId,
    payload: appPayload(application, { credential, credentialId: secret.credentialId, kind }),
  });
  return secret;
}

/** Revokes a key: the gateway refuses it from then on. */
export async function revokeApplicationKey(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  credentialId: string,
): Promise<Credential> {
  return runChange(deps, actor, async (tx, record) => {
    const application = await getApplication(tx, id);
    const cred = application.credentials.find((c) => c.id === credentialId);
    if (!cred) throw notFound('key', credentialId);
    const alreadyRevoked = () => new TrellisError('invalid_state', 'The key is already revoked.');
    if (cred.state === 'revoked') throw alreadyRevoked();
    const revoked = await tx
      .updateTable('credentials')
      .set({ state: 'revoked', revoked_at: isoNow(deps.clock) })
      .where('id', '=', credentialId)
      .where('state', '=', 'active')
      .executeTakeFirst();
    // a revocation at once (another control process) came first
    if (Number(revoked.numUpdatedRows) !== 1) throw alreadyRevoked();
    const row = await tx
      .selectFrom('credentials')
      .selectAll()
      .where('id', '=', credentialId)
      .executeTakeFirstOrThrow();
    await record({
      type: 'credential.revoked',
      entityType: 'credential',
      entityId: credentialId,
      payload: appPayload(application, { credential: toCredential(row), credentialId, kind: cred.kind }),
    });
    return toCredential(row);
  });
}
