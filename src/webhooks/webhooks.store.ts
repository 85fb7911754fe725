/** All SQL of the webhooks context. Store functions take an `Executor`, so callers decide the transaction. */
import { sql } from 'kysely';
import { type Executor, isPostgres } from '../store/index.js';
import type { Attempt, Message, WebhookEndpointView } from './schemas.js';
import type {
  WebhookAttemptTable,
  WebhookEndpointTable,
  WebhookMessageTable,
  WebhookTables,
} from './webhook-tables.js';

function hooksDb(db: Executor) {
  return db.withTables<WebhookTables>();
}

export type EndpointRow = WebhookEndpointTable;

export function toEndpointView(row: EndpointRow): WebhookEndpointView {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: JSON.parse(row.event_types) as string[],
    enabled: row.enabled === 1,
    disabledReason: row.disabled_reason,
    secretPrefix: row.secret_prefix,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    ratePerSecond: row.rate_per_second ?? null,
    ownerRatePerSecond: row.owner_rate_per_second ?? null,
    failingSince: row.failing_since ?? null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function findEndpointRow(db: Executor, id: string): Promise<EndpointRow | undefined> {
  return hooksDb(db).selectFrom('webhook_endpoints').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertEndpointRow(db: Executor, row: EndpointRow): Promise<void> {
  await hooksDb(db).insertInto('webhook_endpoints').values(row).execute();
}

export async function updateEndpointRow(db: Executor, id: string, set: Partial<EndpointRow>): Promise<void> {
  await hooksDb(db).updateTable('webhook_endpoints').set(set).where('id', '=', id).execute();
}

/** True when it removed the endpoint (not when another deletion did first). */
export async function deleteEndpointRow(db: Executor, id: string): Promise<boolean> {
  const r = await hooksDb(db).deleteFrom('webhook_endpoints').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function listEndpointRows(db: Executor, limit: number, cursor?: string): Promise<EndpointRow[]> {
  let q = hooksDb(db)
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where(sql<boolean>`application_id is null`) // the provider's own: partners' name an application (0017)
    .orderBy('id')
    .limit(limit + 1);
  if (cursor) q = q.where('id', '>', cursor);
  return q.execute();
}

/**
 * The provider's enabled endpoints, for fan-out of the outbox. Partners' endpoints (migration 0017,
 * consumer-*.ts) name an application and receive only the events published for them.
 */
export async function listEnabledEndpointRows(db: Executor): Promise<EndpointRow[]> {
  const rows = await hooksDb(db)
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('enabled', '=', 1)
    .execute();
  return rows.filter((r) => !(r as { application_id?: string | null }).application_id);
}

export async function findEndpointRows(db: Executor, ids: readonly string[]): Promise<EndpointRow[]> {
  if (ids.length === 0) return [];
  return hooksDb(db).selectFrom('webhook_endpoints').selectAll().where('id', 'in', ids).execute();
}

/**
 * On PostgreSQL, lets this transaction commit without waiting for its WAL flush. The worker's own writes
 * (fan-out, claims, settlements) may: a crash that loses one only makes a message be made or delivered again,
 * which at-least-once delivery allows (the unique (endpoint, event) key keeps one message per event). The events
 * themselves are written by the changes that cause them, durably.
 */
export async function relaxCommit(tx: Executor): Promise<void> {
  if (isPostgres(tx)) await sql`set local synchronous_commit to off`.execute(tx);
}

// ---- fan-out -----------------------------------------------------------------------------------------------

export interface OutboxEvent {
  id: string;
  type: string;
  occurredAt: string;
  payload: string;
}

/**
 * Outbox events not fanned out yet, oldest first; on PostgreSQL locked (`FOR UPDATE SKIP LOCKED`) so two workers
 * fan out different events. Selected by `dispatched_at is null`, not by sequence: an event whose transaction
 * commits late (after a later seq) is still found.
 */
export async function claimUndispatchedEvents(db: Executor, limit: number): Promise<OutboxEvent[]> {
  const lock = isPostgres(db) ? sql`for update skip locked` : sql``;
  const rows = await sql<{ id: string; type: string; occurred_at: string; payload: string }>`
    select id, type, occurred_at, payload from events
    where dispatched_at is null order by seq limit ${limit} ${lock}`.execute(db);
  return rows.rows.map((r) => ({ id: r.id, type: r.type, occurredAt: r.occurred_at, payload: r.payload }));
}

export async function markEventsDispatched(db: Executor, ids: readonly string[], at: string): Promise<void> {
  if (ids.length === 0) return;
  await db.updateTable('events').set({ dispatched_at: at }).where('id', 'in', ids).execute();
}

export async function insertMessageRows(db: Executor, rows: readonly WebhookMessageTable[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await hooksDb(db)
      .insertInto('webhook_messages')
      .values(rows.slice(i, i + 500))
      .onConflict((oc) => oc.columns(['endpoint_id', 'event_id']).doNothing())
      .execute();
  }
}

/** One message for one endpoint, due now (a test message). */
export async function insertMessageRow(db: Executor, row: WebhookMessageTable): Promise<void> {
  await hooksDb(db).insertInto('webhook_messages').values(row).execute();
}

// ---- delivery ----------------------------------------------------------------------------------------------

export interface ClaimedMessage {
  id: string;
  endpointId: string;
  body: string;
  attempts: number;
}

/**
 * Claims due messages of enabled endpoints for one worker: sets a lease (`locked_until`) no other worker claims
 * through. On PostgreSQL the candidate rows are locked with `FOR UPDATE SKIP LOCKED`, so concurrent workers take
 * disjoint batches without waiting on each other; a worker that dies leaves a lease that simply expires. SQLite
 * has one writer at a time: the single statement is the claim.
 */
export async function claimDueMessages(
  db: Executor,
  workerId: string,
  nowIso: string,
  leaseUntilIso: string,
  limit: number,
  /** endpoints held back by their rate or breaker (endpoint-throttle.ts): their messages stay */
  exclude: readonly string[] = [],
): Promise<ClaimedMessage[]> {
  const lock = isPostgres(db) ? sql`for update of m skip locked` : sql``;
  const skip =
    exclude.length === 0
      ? sql``
      : sql`and m.endpoint_id not in (${sql.join(exclude.map((id) => sql`${id}`))})`;
  const rows = await sql<{ id: string; endpoint_id: string; body: string; attempts: number }>`
    update webhook_messages set locked_until = ${leaseUntilIso}, locked_by = ${workerId}
    where id in (
      select m.id from webhook_messages m join webhook_endpoints e on e.id = m.endpoint_id
      where m.state = 'pending' and m.next_attempt_at <= ${nowIso}
        and (m.locked_until is null or m.locked_until <= ${nowIso}) and e.enabled = 1 ${skip}
      order by m.next_attempt_at limit ${limit} ${lock}
    )
    returning id, endpoint_id, body, attempts`.execute(db);
  return rows.rows.map((r) => ({
    id: r.id,
    endpointId: r.endpoint_id,
    body: r.body,
    attempts: Number(r.attempts),
  }));
}

export type SettleSet = Pick<
  WebhookMessageTable,
  'state' | 'attempts' | 'next_attempt_at' | 'last_status' | 'last_error' | 'updated_at'
>;

/** Settles a claimed message after an attempt, if this worker still holds it; false when it does not. */
export async function settleMessage(
  db: Executor,
  id: string,
  workerId: string,
  set: Pick<
    WebhookMessageTable,
    'state' | 'attempts' | 'next_attempt_at' | 'last_status' | 'last_error' | 'updated_at'
  >,
): Promise<boolean> {
  const result = await hooksDb(db)
    .updateTable('webhook_messages')
    .set({ ...set, locked_until: null, locked_by: null })
    .where('id', '=', id)
    .where('locked_by', '=', workerId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Settles, in one statement, claimed messages whose attempt succeeded with the same status, those this worker
 * still holds; returns their ids.
 */
export async function settleSucceeded(
  db: Executor,
  ids: readonly string[],
  workerId: string,
  status: number,
  atIso: string,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await hooksDb(db)
    .updateTable('webhook_messages')
    .set((eb) => ({
      state: 'succeeded',
      attempts: eb('attempts', '+', 1),
      next_attempt_at: atIso,
      last_status: status,
      last_error: null,
      updated_at: atIso,
      locked_until: null,
      locked_by: null,
    }))
    .where('id', 'in', ids)
    .where('locked_by', '=', workerId)
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

export async function messageExists(db: Executor, id: string): Promise<boolean> {
  const row = await hooksDb(db)
    .selectFrom('webhook_messages')
    .select('id')
    .where('id', '=', id)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Logs attempts; one already logged (same id) is left as it is: a settlement written again after its commit's
 * answer was lost (the connection died during COMMIT) logs each attempt once.
 */
export async function insertAttemptRows(db: Executor, rows: readonly WebhookAttemptTable[]): Promise<void> {
  if (rows.length === 0) return;
  await hooksDb(db)
    .insertInto('webhook_attempts')
    .values(rows)
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

// ---- the delivery log --------------------------------------------------------------------------------------

function toAttempt(r: WebhookAttemptTable): Attempt {
  return {
    id: r.id,
    attemptedAt: r.attempted_at,
    status: r.status,
    outcome: r.outcome === 'succeeded' ? 'succeeded' : 'failed',
    latencyMs: Number(r.latency_ms),
    responseExcerpt: r.response_excerpt,
    error: r.error,
  };
}

/** An endpoint's messages, newest first, each with its attempts. */
export async function listMessages(
  db: Executor,
  endpointId: string,
  filter: { limit: number; cursor?: string | undefined; state?: string | undefined },
): Promise<Message[]> {
  let q = hooksDb(db)
    .selectFrom('webhook_messages')
    .selectAll()
    .where('endpoint_id', '=', endpointId)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.cursor) q = q.where('id', '<', filter.cursor);
  if (filter.state) q = q.where('state', '=', filter.state);
  const rows = await q.execute();
  const attempts =
    rows.length === 0
      ? []
      : await hooksDb(db)
          .selectFrom('webhook_attempts')
          .selectAll()
          .where(
            'message_id',
            'in',
            rows.map((r) => r.id),
          )
          .orderBy('id')
          .execute();
  return rows.map((r) => ({
    id: r.id,
    endpointId: r.endpoint_id,
    eventId: r.event_id,
    eventType: r.event_type,
    state: r.state === 'succeeded' ? 'succeeded' : r.state === 'failed' ? 'failed' : 'pending',
    attempts: Number(r.attempts),
    nextAttemptAt: r.next_attempt_at,
    lastStatus: r.last_status,
    createdAt: r.created_at,
    attemptLog: attempts.filter((a) => a.message_id === r.id).map(toAttempt),
  }));
}

export async function findMessageRow(db: Executor, id: string): Promise<WebhookMessageTable | undefined> {
  return hooksDb(db).selectFrom('webhook_messages').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Makes messages due again now (replay one, recover failed ones): pending, attempts start over. */
export async function requeueMessages(
  db: Executor,
  filter: { endpointId: string; ids?: readonly string[]; failedSince?: string },
  nowIso: string,
): Promise<number> {
  let q = hooksDb(db)
    .updateTable('webhook_messages')
    .set({
      state: 'pending',
      attempts: 0,
      next_attempt_at: nowIso,
      locked_until: null,
      locked_by: null,
      updated_at: nowIso,
    })
    .where('endpoint_id', '=', filter.endpointId);
  if (filter.ids) q = q.where('id', 'in', filter.ids);
  if (filter.failedSince !== undefined)
    q = q.where('state', '=', 'failed').where('updated_at', '>=', filter.failedSince);
  const result = await q.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Queue figures for metrics: messages pending and the age of the oldest due one. */
export async function queueFigures(
  db: Executor,
  nowIso: string,
): Promise<{ pending: number; oldestDueAt: string | null; undispatched: number }> {
  const pending = await hooksDb(db)
    .selectFrom('webhook_messages')
    .select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('next_attempt_at').as('oldest')])
    .where('state', '=', 'pending')
    .executeTakeFirstOrThrow();
  const due = await hooksDb(db)
    .selectFrom('webhook_messages')
    .select((eb) => eb.fn.min('created_at').as('oldest'))
    .where('state', '=', 'pending')
    .where('next_attempt_at', '<=', nowIso)
    .executeTakeFirstOrThrow();
  const undispatched = await db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('dispatched_at', 'is', null)
    .executeTakeFirstOrThrow();
  return {
    pending: Number(pending.n),
    oldestDueAt: (due.oldest as string | null) ?? null,
    undispatched: Number(undispatched.n),
  };
}

/**
 * What the Prometheus gauges read at scrape time, so they are right however many workers share the database:
 * messages pending and the oldest one's creation, events not yet fanned out and the oldest one's time.
 */
export async function metricsFigures(db: Executor): Promise<{
  pending: number;
  oldestPendingAt: string | null;
  undispatched: number;
  oldestUndispatchedAt: string | null;
}> {
  const pending = await hooksDb(db)
    .selectFrom('webhook_messages')
    .select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('created_at').as('oldest')])
    .where('state', '=', 'pending')
    .executeTakeFirstOrThrow();
  const undispatched = await db
    .selectFrom('events')
    .select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('occurred_at').as('oldest')])
    .where('dispatched_at', 'is', null)
    .executeTakeFirstOrThrow();
  return {
    pending: Number(pending.n),
    oldestPendingAt: (pending.oldest as string | null) ?? null,
    undispatched: Number(undispatched.n),
    oldestUndispatchedAt: (undispatched.oldest as string | null) ?? null,
  };
}
