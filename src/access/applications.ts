/** Applications, their credentials (with rotation), their plans and their lifecycle. */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { getPlan, getService } from '../catalog/index.js';
import type { Change } from '../events/index.js';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import {
  type Clock,
  type FieldProblem,
  type SecretKind,
  TrellisError,
  displayPrefix,
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
import type { Executor, PageRequest, Tx } from '../store/index.js';
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

/** Checks allowed IPs and CIDRs, naming each bad entry; returns them normalised (trimmed, lower case). */
export function checkAllowedIps(values: string[], field = 'allowedIps'): string[] {
  const problems: FieldProblem[] = [];
  const out = values.map((raw, i) => {
    const v = raw.trim().toLowerCase();
    const [addr = '', bits, extra] = v.split('/');
    const family = isIP(addr);
    const max = family === 4 ? 32 : 128;
    const ok =
      family !== 0 &&
      extra === undefined &&
      (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max));
    if (!ok)
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
  const secret = await insertCredential(tx, clock, id, credentialKindFor(service.authMode));
  const application = await getApplication(tx, id);
  await record({
    type: 'application.created',
    entityType: 'application',
    entityId: id,
    payload: { application, applicationId: id, accountId: input.accountId, serviceId: service.id },
  });
  return { ...application, secret };
}

export function createApplication(
  deps: ChangeDeps,
  actor: Actor,
  input: ApplicationCreate,
): Promise<CreatedApplication> {
  return runChange(deps, actor, (tx, record) => insertApplication(tx, deps.clock, record, input));
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
  return runChange(deps, actor, async (tx, record) => {
    const before = await getApplication(tx, id);
    if (!(t.from as readonly string[]).includes(before.state)) {
      throw new TrellisError('invalid_state', `An application that is ${before.state} cannot be ${action}d.`);
    }
    await tx
      .updateTable('applications')
      .set({ state: t.to, updated_at: isoNow(deps.clock) })
      .where('id', '=', id)
      .execute();
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

export async function deleteApplication(deps: ChangeDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const application = await getApplication(tx, id);
    await tx.deleteFrom('applications').where('id', '=', id).execute();
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
  return runChange(deps, actor, async (tx, record) => {
    const application = await getApplication(tx, id);
    const service = await getService(tx, application.serviceId);
    const kind = credentialKindFor(service.authMode);
    if ((await countActiveCredentials(tx, id, kind)) >= maxActiveKeys) {
      throw new TrellisError(
        'limit_reached',
        `An application may have at most ${maxActiveKeys} active keys; revoke one first.`,
      );
    }
    const secret = await insertCredential(tx, deps.clock, id, kind);
    await record({
      type: 'credential.created',
      entityType: 'credential',
      entityId: secret.credentialId,
      payload: appPayload(application, { credentialId: secret.credentialId, kind }),
    });
    return secret;
  });
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
    if (cred.state === 'revoked') throw new TrellisError('invalid_state', 'The key is already revoked.');
    await tx
      .updateTable('credentials')
      .set({ state: 'revoked', revoked_at: isoNow(deps.clock) })
      .where('id', '=', credentialId)
      .execute();
    const row = await tx
      .selectFrom('credentials')
      .selectAll()
      .where('id', '=', credentialId)
      .executeTakeFirstOrThrow();
    await record({
      type: 'credential.revoked',
      entityType: 'credential',
      entityId: credentialId,
      payload: appPayload(application, { credentialId, kind: cred.kind }),
    });
    return toCredential(row);
  });
}
