/**
 * Publishing a provider's own event (issue 9, consumer webhooks): `POST /admin/api/events` for an application or
 * an account. The payload is checked against the type's schema; the event and its messages (one per enabled
 * endpoint of the target subscribed to the type) commit in one transaction, and the worker delivers them as it
 * delivers every message. An Idempotency-Key makes a repeated publish harmless: the same key with the same request
 * answers the first result and makes nothing new; with another request it is refused.
 */
import { createHash } from 'node:crypto';
import { getAccount, getApplication } from '../access/index.js';
import { type ChangeDeps, notifyOutboxWrite } from '../events/index.js';
import { TrellisError, invalid, isoNow, newId } from '../kernel/index.js';
import type { EventPublish, PublishedEvent } from './consumer-schemas.js';
import type { PublishedEventTable } from './consumer-tables.js';
import { checkPayload } from './consumer-event-types.js';
import {
  findEventTypeRow,
  findEventTypeRowsByName,
  findPublishedByKey,
  insertPublishedRow,
  listTargetEndpointRows,
} from './consumer.store.js';
import type { WebhookMessageTable } from './webhook-tables.js';
import { insertMessageRows } from './webhooks.store.js';
import { messageBody } from './worker.js';

/** JSON with object keys sorted, so two requests that differ only in key order hash the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

function toPublishedEvent(row: PublishedEventTable): PublishedEvent {
  return {
    id: row.id,
    type: row.type,
    serviceId: row.service_id,
    applicationId: row.application_id,
    accountId: row.account_id,
    messages: Number(row.messages),
    createdAt: row.created_at,
  };
}

function replayOf(row: PublishedEventTable, hash: string): PublishedEvent {
  if (row.request_hash !== hash) throw new TrellisError('idempotency_key_reused');
  return toPublishedEvent(row);
}

export interface PublishResult {
  event: PublishedEvent;
  /** true when the Idempotency-Key was seen before with this request: nothing new was made */
  replayed: boolean;
}

/**
 * @example await publishEvent(deps, { type: 'paymentrequest.paid', applicationId, payload }, 'pay-123-paid')
 */
export async function publishEvent(
  deps: ChangeDeps,
  input: EventPublish,
  idempotencyKey?: string,
): Promise<PublishResult> {
  const db = deps.db;
  const hash = createHash('sha256').update(canonical(input)).digest('hex');
  if (idempotencyKey !== undefined) {
    const seen = await findPublishedByKey(db, idempotencyKey);
    if (seen) return { event: replayOf(seen, hash), replayed: true };
  }
  if ((input.applicationId === undefined) === (input.accountId === undefined)) {
    throw invalid([{ field: 'applicationId', message: 'give either applicationId or accountId' }]);
  }
  let applicationId: string | null = null;
  let accountId: string;
  let serviceId = input.serviceId;
  if (input.applicationId !== undefined) {
    const app = await getApplication(db, input.applicationId).catch(() => undefined);
    if (!app) throw invalid([{ field: 'applicationId', message: `no application ${input.applicationId}` }]);
    if (serviceId !== undefined && serviceId !== app.serviceId) {
      throw invalid([{ field: 'serviceId', message: 'the application is not on this service' }]);
    }
    applicationId = app.id;
    accountId = app.accountId;
    serviceId = app.serviceId;
  } else {
    const id = input.accountId ?? '';
    if (!(await getAccount(db, id).catch(() => undefined))) {
      throw invalid([{ field: 'accountId', message: `no account ${id}` }]);
    }
    accountId = id;
    if (serviceId === undefined) {
      const declaring = await findEventTypeRowsByName(db, input.type);
      if (declaring.length > 1) {
        throw invalid([{ field: 'serviceId', message: `several services declare ${input.type}; name one` }]);
      }
      serviceId = declaring[0]?.service_id;
    }
  }
  const type = serviceId === undefined ? undefined : await findEventTypeRow(db, serviceId, input.type);
  if (!type || serviceId === undefined) {
    throw invalid([{ field: 'type', message: `the service declares no event type ${input.type}` }]);
  }
  checkPayload(type, input.payload);

  const now = deps.clock.now();
  const at = isoNow(deps.clock);
  const row: PublishedEventTable = {
    id: newId('event', now),
    service_id: serviceId,
    type: input.type,
    application_id: applicationId,
    account_id: accountId,
    payload: JSON.stringify(input.payload),
    idempotency_key: idempotencyKey ?? null,
    request_hash: hash,
    messages: 0,
    created_at: at,
  };
  try {
    await db.transaction().execute(async (tx) => {
      const endpoints = await listTargetEndpointRows(tx, {
        serviceId: row.service_id,
        applicationId,
        accountId,
      });
      const body = messageBody({ id: row.id, type: row.type, occurredAt: at, payload: row.payload });
      const messages: WebhookMessageTable[] = endpoints
        .filter((e) => {
          const types = JSON.parse(e.event_types) as string[];
          return types.includes('*') || types.includes(row.type);
        })
        .map((e) => ({
          id: newId('webhookMessage', now),
          endpoint_id: e.id,
          event_id: row.id,
          event_type: row.type,
          body,
          state: 'pending',
          attempts: 0,
          next_attempt_at: at,
          locked_until: null,
          locked_by: null,
          last_status: null,
          last_error: null,
          created_at: at,
          updated_at: at,
        }));
      row.messages = messages.length;
      await insertPublishedRow(tx, row);
      await insertMessageRows(tx, messages);
      // a worker in another process on PostgreSQL hears this on commit (src/webhooks/pg-wake.ts)
      if (messages.length > 0) await notifyOutboxWrite(tx);
    });
  } catch (err) {
    // two publishes with one key at once: the second loses the unique key and answers as a repeat would
    if (idempotencyKey !== undefined) {
      const seen = await findPublishedByKey(db, idempotencyKey);
      if (seen) return { event: replayOf(seen, hash), replayed: true };
    }
    throw err;
  }
  // wake the worker (in-process, or through Redis) now rather than at its next poll
  deps.onCommitted?.([]);
  return { event: toPublishedEvent(row), replayed: false };
}
