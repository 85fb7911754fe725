/**
 * Provider webhook endpoints: where events go, which types, and the signing secret (issue 9). The secret is
 * shown once, when the endpoint is made or its secret rotated, and stored sealed with the sealer the OAuth server
 * uses for its keys (AES-256-GCM under TRELLIS_OAUTH_KEY_SECRET): signing needs the secret itself, not a hash.
 */
import {
  type Actor,
  type ChangeDeps,
  eventCatalogue,
  notifyOutboxWrite,
  runChange,
} from '../events/index.js';
import { type FieldProblem, TrellisError, invalid, isoNow, newId, notFound } from '../kernel/index.js';
import { type Sealer, createSealer } from '../oauth/index.js';
import { checkOutboundUrl } from '../outbound/index.js';
import { type Executor, type Page, type PageRequest, lockRow, toPage } from '../store/index.js';
import type {
  CreatedEndpoint,
  EndpointCreate,
  EndpointUpdate,
  Message,
  RotatedSecret,
  WebhookEndpointView,
} from './schemas.js';
import { generateSigningSecret, signingSecretPrefix } from './signing.js';
import type { WebhookEndpointTable, WebhookTables } from './webhook-tables.js';
import { messageBody } from './worker.js';
import {
  deleteEndpointRow,
  findEndpointRow,
  findMessageRow,
  insertEndpointRow,
  insertMessageRow,
  listEndpointRows,
  listMessages,
  requeueMessages,
  toEndpointView,
  updateEndpointRow,
} from './webhooks.store.js';

/** What endpoint operations need beyond a change's: the sealer of secrets and the hosts allowed to be private. */
export interface WebhookDeps extends ChangeDeps {
  sealer: Sealer;
  /** TRELLIS_OUTBOUND_ALLOW_HOSTS: hosts an endpoint URL may name although they are not public. */
  allowHosts: readonly string[];
}

/**
 * The webhook operations' deps as every face builds them: the process's change deps, the sealer of the signing
 * secrets (TRELLIS_OAUTH_KEY_SECRET) and the hosts endpoint URLs may name although they are not public.
 */
export function webhookDeps(
  cd: ChangeDeps,
  config: { oauthKeySecret: string; outboundAllowHosts: readonly string[] },
): WebhookDeps {
  return { ...cd, sealer: createSealer(config.oauthKeySecret), allowHosts: config.outboundAllowHosts };
}

/** The default time the previous secret keeps signing after a rotation: 24 hours. */
export const defaultRotationGraceSeconds = 86_400;

function checkUrl(url: string, allowHosts: readonly string[]): void {
  const refused = checkOutboundUrl(url, allowHosts);
  if (refused?.code === 'outbound_address_refused') {
    throw new TrellisError('outbound_address_refused', `url: ${refused.message}`, [
      { field: 'url', message: refused.message },
    ]);
  }
  if (refused) throw invalid([{ field: 'url', message: refused.message }]);
}

function checkEventTypes(types: readonly string[]): void {
  const problems: FieldProblem[] = [];
  types.forEach((t, i) => {
    if (t !== '*' && !eventCatalogue.has(t))
      problems.push({ field: `eventTypes[${i}]`, message: `${t} is not an event type` });
  });
  if (problems.length > 0) throw invalid(problems);
}

export async function getEndpoint(db: Executor, id: string): Promise<WebhookEndpointView> {
  const row = await findEndpointRow(db, id);
  if (!row) throw notFound('webhook endpoint', id);
  return toEndpointView(row);
}

export async function listEndpoints(db: Executor, page: PageRequest): Promise<Page<WebhookEndpointView>> {
  const rows = await listEndpointRows(db, page.limit, page.cursor);
  return toPage(rows.map(toEndpointView), page.limit);
}

/** The columns a new endpoint starts with, the provider's or a partner's: enabled as asked, its secret sealed. */
export function newEndpointColumns(
  deps: WebhookDeps,
  input: {
    url: string;
    description?: string | undefined;
    eventTypes: string[];
    enabled?: boolean | undefined;
  },
  secret: string,
  now: string,
): Omit<WebhookEndpointTable, 'id'> {
  return {
    url: input.url,
    description: input.description ?? '',
    event_types: JSON.stringify(input.eventTypes),
    enabled: input.enabled === false ? 0 : 1,
    disabled_reason: null,
    secret: deps.sealer.seal(secret),
    secret_prefix: signingSecretPrefix(secret),
    previous_secret: null,
    previous_secret_expires_at: null,
    created_at: now,
    updated_at: now,
  };
}

/**
 * Registers an endpoint; its signing secret is in the answer, once.
 * @example const { id, secret } = await createEndpoint(deps, actor, { url: 'https://crm.example/hooks', eventTypes: ['account.created'] })
 */
export async function createEndpoint(
  deps: WebhookDeps,
  actor: Actor,
  input: EndpointCreate,
): Promise<CreatedEndpoint> {
  checkUrl(input.url, deps.allowHosts);
  checkEventTypes(input.eventTypes);
  const secret = generateSigningSecret();
  return runChange(deps, actor, async (tx, record) => {
    const id = newId('webhookEndpoint');
    const now = isoNow(deps.clock);
    await insertEndpointRow(tx, {
      id,
      ...newEndpointColumns(deps, input, secret, now),
      rate_per_second: input.ratePerSecond ?? null,
    });
    const endpoint = await getEndpoint(tx, id);
    await record({
      type: 'webhook_endpoint.created',
      entityType: 'webhook_endpoint',
      entityId: id,
      payload: { endpoint, endpointId: id },
    });
    return { ...endpoint, secret };
  });
}

/** Changes an endpoint; enabling it again clears the reason Trellis disabled it for. */
export async function updateEndpoint(
  deps: WebhookDeps,
  actor: Actor,
  id: string,
  input: EndpointUpdate,
): Promise<WebhookEndpointView> {
  if (input.url !== undefined) checkUrl(input.url, deps.allowHosts);
  if (input.eventTypes !== undefined) checkEventTypes(input.eventTypes);
  return runChange(deps, actor, async (tx, record) => {
    await getEndpoint(tx, id);
    await updateEndpointRow(tx, id, {
      ...(input.url !== undefined && { url: input.url }),
      ...(input.description !== undefined && { description: input.description }),
      ...(input.eventTypes !== undefined && { event_types: JSON.stringify(input.eventTypes) }),
      ...(input.enabled !== undefined && {
        enabled: input.enabled ? 1 : 0,
        disabled_reason: null,
        failing_since: null,
      }),
      ...(input.ratePerSecond !== undefined && { rate_per_second: input.ratePerSecond }),
      updated_at: isoNow(deps.clock),
    });
    const endpoint = await getEndpoint(tx, id);
    await record({
      type: 'webhook_endpoint.updated',
      entityType: 'webhook_endpoint',
      entityId: id,
      payload: { endpoint, endpointId: id },
    });
    return endpoint;
  });
}

/** Deletes an endpoint with its messages and their delivery log. */
export async function deleteEndpoint(deps: WebhookDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const endpoint = await getEndpoint(tx, id);
    if (!(await deleteEndpointRow(tx, id))) throw notFound('webhook endpoint', id);
    await record({
      type: 'webhook_endpoint.deleted',
      entityType: 'webhook_endpoint',
      entityId: id,
      payload: { endpoint, endpointId: id },
    });
  });
}

/**
 * Gives an endpoint a new signing secret (in the answer, once). The old one keeps signing beside it for
 * `graceSeconds` (default 24 h): each delivery then carries two signatures, so the receiver can switch secrets
 * without losing a message.
 */
export async function rotateEndpointSecret(
  deps: WebhookDeps,
  actor: Actor,
  id: string,
  graceSeconds: number = defaultRotationGraceSeconds,
): Promise<RotatedSecret> {
  const secret = generateSigningSecret();
  return runChange(deps, actor, async (tx, record) => {
    // rotations at once (two control processes) go one after the other, each keeping as its previous secret the
    // one the rotation before it returned
    await lockRow(tx.withTables<WebhookTables>(), 'webhook_endpoints', id);
    const row = await findEndpointRow(tx, id);
    if (!row) throw notFound('webhook endpoint', id);
    const expiresAt =
      graceSeconds > 0 ? new Date(deps.clock.now() + graceSeconds * 1000).toISOString() : null;
    await updateEndpointRow(tx, id, {
      secret: deps.sealer.seal(secret),
      secret_prefix: signingSecretPrefix(secret),
      previous_secret: expiresAt === null ? null : row.secret,
      previous_secret_expires_at: expiresAt,
      updated_at: isoNow(deps.clock),
    });
    const endpoint = await getEndpoint(tx, id);
    await record({
      type: 'webhook_endpoint.secret_rotated',
      entityType: 'webhook_endpoint',
      entityId: id,
      payload: { endpoint, endpointId: id },
    });
    return { secret, previousSecretExpiresAt: expiresAt };
  });
}

/** An endpoint's delivery log: its messages, newest first, each with its attempts. */
export async function listEndpointMessages(
  db: Executor,
  endpointId: string,
  filter: { limit: number; cursor?: string | undefined; state?: string | undefined },
): Promise<Page<Message>> {
  await getEndpoint(db, endpointId);
  return toPage(await listMessages(db, endpointId, filter), filter.limit);
}

/** Sends a message again, now, whatever its state (its `webhook-id` stays the same). */
export async function replayMessage(deps: WebhookDeps, endpointId: string, messageId: string): Promise<void> {
  await getEndpoint(deps.db, endpointId);
  const row = await findMessageRow(deps.db, messageId);
  if (!row || row.endpoint_id !== endpointId) throw notFound('webhook message', messageId);
  await requeueMessages(deps.db, { endpointId, ids: [messageId] }, isoNow(deps.clock));
  await notifyOutboxWrite(deps.db);
}

/** Sends again every message of an endpoint that failed (gave up) since `since`; returns how many. */
export async function recoverFailedMessages(
  deps: WebhookDeps,
  endpointId: string,
  since: string,
): Promise<number> {
  await getEndpoint(deps.db, endpointId);
  const recovered = await requeueMessages(deps.db, { endpointId, failedSince: since }, isoNow(deps.clock));
  if (recovered > 0) await notifyOutboxWrite(deps.db);
  return recovered;
}

/**
 * Sends a test message to one endpoint (type `webhook_endpoint.test`, never fanned out to others); the worker
 * delivers it like any other, signed and logged. Returns its id (the `webhook-id`).
 */
export async function sendTestMessage(deps: WebhookDeps, endpointId: string): Promise<{ messageId: string }> {
  await getEndpoint(deps.db, endpointId);
  const now = isoNow(deps.clock);
  const eventId = newId('event', deps.clock.now());
  const messageId = newId('webhookMessage', deps.clock.now());
  await insertMessageRow(deps.db, {
    id: messageId,
    endpoint_id: endpointId,
    event_id: eventId,
    event_type: 'webhook_endpoint.test',
    body: messageBody({
      id: eventId,
      type: 'webhook_endpoint.test',
      occurredAt: now,
      payload: JSON.stringify({ endpointId, message: 'A test message from Trellis.' }),
    }),
    state: 'pending',
    attempts: 0,
    next_attempt_at: now,
    locked_until: null,
    locked_by: null,
    last_status: null,
    last_error: null,
    created_at: now,
    updated_at: now,
  });
  // a worker in another process (PostgreSQL, no Redis) looks now rather than at its next poll
  await notifyOutboxWrite(deps.db);
  return { messageId };
}
