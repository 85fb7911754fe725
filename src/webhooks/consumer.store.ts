/** All SQL of consumer webhooks: declared event types, published events, partners' endpoints. */
import type { Executor } from '../store/index.js';
import type {
  ConsumerEndpointTable,
  ConsumerTables,
  PublishedEventTable,
  ServiceEventTypeTable,
} from './consumer-tables.js';

function consumerDb(db: Executor) {
  return db.withTables<ConsumerTables>();
}

// ---- event types -------------------------------------------------------------------------------------------

export async function findEventTypeRow(
  db: Executor,
  serviceId: string,
  name: string,
): Promise<ServiceEventTypeTable | undefined> {
  return consumerDb(db)
    .selectFrom('service_event_types')
    .selectAll()
    .where('service_id', '=', serviceId)
    .where('name', '=', name)
    .executeTakeFirst();
}

/** Every service declaring a type of this name. */
export async function findEventTypeRowsByName(db: Executor, name: string): Promise<ServiceEventTypeTable[]> {
  return consumerDb(db).selectFrom('service_event_types').selectAll().where('name', '=', name).execute();
}

export async function listEventTypeRows(db: Executor, serviceId: string): Promise<ServiceEventTypeTable[]> {
  return consumerDb(db)
    .selectFrom('service_event_types')
    .selectAll()
    .where('service_id', '=', serviceId)
    .orderBy('name')
    .execute();
}

export async function insertEventTypeRow(db: Executor, row: ServiceEventTypeTable): Promise<void> {
  await consumerDb(db).insertInto('service_event_types').values(row).execute();
}

export async function updateEventTypeRow(
  db: Executor,
  serviceId: string,
  name: string,
  set: Partial<ServiceEventTypeTable>,
): Promise<void> {
  await consumerDb(db)
    .updateTable('service_event_types')
    .set(set)
    .where('service_id', '=', serviceId)
    .where('name', '=', name)
    .execute();
}

/** True when it removed the event type (not when another deletion did first). */
export async function deleteEventTypeRow(db: Executor, serviceId: string, name: string): Promise<boolean> {
  const r = await consumerDb(db)
    .deleteFrom('service_event_types')
    .where('service_id', '=', serviceId)
    .where('name', '=', name)
    .executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

// ---- published events --------------------------------------------------------------------------------------

export async function findPublishedByKey(
  db: Executor,
  key: string,
): Promise<PublishedEventTable | undefined> {
  return consumerDb(db)
    .selectFrom('published_events')
    .selectAll()
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

export async function insertPublishedRow(db: Executor, row: PublishedEventTable): Promise<void> {
  await consumerDb(db).insertInto('published_events').values(row).execute();
}

// ---- partners' endpoints -----------------------------------------------------------------------------------

/** Enabled endpoints a published event goes to: of one application, or of every application of an account. */
export async function listTargetEndpointRows(
  db: Executor,
  target: { serviceId: string; applicationId?: string | null; accountId: string },
) {
  let q = consumerDb(db)
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('enabled', '=', 1)
    .where('service_id', '=', target.serviceId)
    .where('account_id', '=', target.accountId);
  if (target.applicationId) q = q.where('application_id', '=', target.applicationId);
  else q = q.where('application_id', 'is not', null);
  return q.orderBy('id').execute();
}

export interface ConsumerEndpointFilter {
  applicationId?: string | undefined;
  accountId?: string | undefined;
  serviceId?: string | undefined;
}

/** Partners' endpoints (never the provider's own), by id. */
export async function listConsumerEndpointRows(
  db: Executor,
  filter: ConsumerEndpointFilter,
  limit: number,
  cursor?: string,
) {
  let q = consumerDb(db)
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('application_id', 'is not', null)
    .orderBy('id')
    .limit(limit + 1);
  if (filter.applicationId) q = q.where('application_id', '=', filter.applicationId);
  if (filter.accountId) q = q.where('account_id', '=', filter.accountId);
  if (filter.serviceId) q = q.where('service_id', '=', filter.serviceId);
  if (cursor) q = q.where('id', '>', cursor);
  return q.execute();
}

/** The event types each enabled endpoint of an application subscribes to (`*`: all its service declares). */
export async function consumerEndpointTypes(db: Executor, applicationId: string): Promise<string[][]> {
  const rows = await consumerDb(db)
    .selectFrom('webhook_endpoints')
    .select('event_types')
    .where('application_id', '=', applicationId)
    .where('enabled', '=', 1)
    .execute();
  return rows.map((r) => JSON.parse(r.event_types) as string[]);
}

export async function findConsumerEndpointRow(
  db: Executor,
  id: string,
): Promise<ConsumerEndpointTable | undefined> {
  return consumerDb(db).selectFrom('webhook_endpoints').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertConsumerEndpointRow(db: Executor, row: ConsumerEndpointTable): Promise<void> {
  await consumerDb(db).insertInto('webhook_endpoints').values(row).execute();
}
