/**
 * Partners' webhook endpoints (issue 9, consumer webhooks): a partner registers endpoints for its applications,
 * choosing event types its application's service declares; the provider sees all of them and can disable one.
 * They live in `webhook_endpoints` beside the provider's own (with the application, account and service they
 * belong to), so the same worker delivers them: signed, retried, logged, behind the same SSRF guard.
 */
import { getApplication } from '../access/index.js';
import { type Actor, runChange } from '../events/index.js';
import { TrellisError, type FieldProblem, invalid, isoNow, newId, notFound } from '../kernel/index.js';
import { checkOutboundUrl } from '../outbound/index.js';
import { type Executor, type Page, type PageRequest, toPage } from '../store/index.js';
import type {
  ConsumerEndpointCreate,
  ConsumerEndpointUpdate,
  ConsumerEndpointView,
  CreatedConsumerEndpoint,
} from './consumer-schemas.js';
import type { ConsumerEndpointTable } from './consumer-tables.js';
import {
  type ConsumerEndpointFilter,
  findConsumerEndpointRow,
  insertConsumerEndpointRow,
  listConsumerEndpointRows,
  listEventTypeRows,
} from './consumer.store.js';
import { type WebhookDeps, newEndpointColumns } from './endpoints.js';
import { generateSigningSecret } from './signing.js';
import { deleteEndpointRow, toEndpointView, updateEndpointRow } from './webhooks.store.js';

export function toConsumerEndpointView(row: ConsumerEndpointTable): ConsumerEndpointView {
  return {
    ...toEndpointView(row),
    applicationId: row.application_id ?? '',
    accountId: row.account_id ?? '',
    serviceId: row.service_id ?? '',
  };
}

function checkUrl(url: string, allowHosts: readonly string[]): void {
  const refused = checkOutboundUrl(url, allowHosts);
  if (refused?.code === 'outbound_address_refused') {
    throw new TrellisError('outbound_address_refused', `url: ${refused.message}`, [
      { field: 'url', message: refused.message },
    ]);
  }
  if (refused) throw invalid([{ field: 'url', message: refused.message }]);
}

/** Every type must be one the service declares (or `*`: all of them, now and later). */
async function checkEventTypes(db: Executor, serviceId: string, types: readonly string[]): Promise<void> {
  const declared = new Set((await listEventTypeRows(db, serviceId)).map((r) => r.name));
  const problems: FieldProblem[] = [];
  types.forEach((t, i) => {
    if (t !== '*' && !declared.has(t))
      problems.push({ field: `eventTypes[${i}]`, message: `the API declares no event type ${t}` });
  });
  if (problems.length > 0) throw invalid(problems);
}

/**
 * A partner's endpoint of an application: another application's endpoint (or the provider's own) is "not found",
 * as one that does not exist, so ids cannot be probed across accounts.
 */
export async function getConsumerEndpoint(
  db: Executor,
  applicationId: string,
  id: string,
): Promise<ConsumerEndpointView> {
  const row = await findConsumerEndpointRow(db, id);
  if (!row || row.application_id !== applicationId) throw notFound('webhook endpoint', id);
  return toConsumerEndpointView(row);
}

/** Partners' endpoints: of one application, one account or one service, or all (the provider's view). */
export async function listConsumerEndpoints(
  db: Executor,
  filter: ConsumerEndpointFilter,
  page: PageRequest,
): Promise<Page<ConsumerEndpointView>> {
  const rows = await listConsumerEndpointRows(db, filter, page.limit, page.cursor);
  return toPage(rows.map(toConsumerEndpointView), page.limit);
}

/**
 * Registers an endpoint for an application; its signing secret is in the answer, once.
 * @example const { id, secret } = await createConsumerEndpoint(deps, actor, app.id, { url, eventTypes: ['paymentrequest.paid'] })
 */
export async function createConsumerEndpoint(
  deps: WebhookDeps,
  actor: Actor,
  applicationId: string,
  input: ConsumerEndpointCreate,
): Promise<CreatedConsumerEndpoint> {
  checkUrl(input.url, deps.allowHosts);
  const secret = generateSigningSecret();
  return runChange(deps, actor, async (tx, record) => {
    const app = await getApplication(tx, applicationId);
    await checkEventTypes(tx, app.serviceId, input.eventTypes);
    const id = newId('webhookEndpoint');
    const now = isoNow(deps.clock);
    await insertConsumerEndpointRow(tx, {
      id,
      ...newEndpointColumns(deps, input, secret, now),
      application_id: app.id,
      account_id: app.accountId,
      service_id: app.serviceId,
    });
    const endpoint = await getConsumerEndpoint(tx, app.id, id);
    await record({
      type: 'webhook_endpoint.created',
      entityType: 'webhook_endpoint',
      entityId: id,
      payload: { endpoint, endpointId: id, applicationId: app.id, accountId: app.accountId },
    });
    return { ...endpoint, secret };
  });
}

/** Changes a partner's endpoint; enabling it again clears the reason Trellis disabled it for. */
export async function updateConsumerEndpoint(
  deps: WebhookDeps,
  actor: Actor,
  applicationId: string,
  id: string,
  input: ConsumerEndpointUpdate,
): Promise<ConsumerEndpointView> {
  if (input.url !== undefined) checkUrl(input.url, deps.allowHosts);
  return runChange(deps, actor, async (tx, record) => {
    const before = await getConsumerEndpoint(tx, applicationId, id);
    if (input.eventTypes !== undefined) await checkEventTypes(tx, before.serviceId, input.eventTypes);
    await updateEndpointRow(tx, id, {
      ...(input.url !== undefined && { url: input.url }),
      ...(input.description !== undefined && { description: input.description }),
      ...(input.eventTypes !== undefined && { event_types: JSON.stringify(input.eventTypes) }),
      ...(input.enabled !== undefined && { enabled: input.enabled ? 1 : 0, disabled_reason: null }),
      updated_at: isoNow(deps.clock),
    });
    const endpoint = await getConsumerEndpoint(tx, applicationId, id);
    await record({
      type: 'webhook_endpoint.updated',
      entityType: 'webhook_endpoint',
      entityId: id,
      payload: { endpoint, endpointId: id, applicationId, accountId: endpoint.accountId },
    });
    return endpoint;
  });
}

/** Deletes a partner's endpoint with its messages and their delivery log. */
export async function deleteConsumerEndpoint(
  deps: WebhookDeps,
  actor: Actor,
  applicationId: string,
  id: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const endpoint = await getConsumerEndpoint(tx, applicationId, id);
    if (!(await deleteEndpointRow(tx, id))) throw notFound('webhook endpoint', id);
    await record({
      type: 'webhook_endpoint.deleted',
      entityType: 'webhook_endpoint',
      entityId: id,
      payload: { endpoint, endpointId: id, applicationId, accountId: endpoint.accountId },
    });
  });
}
