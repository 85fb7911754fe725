import { type Clock, newId } from '../kernel/index.js';
import { sql } from 'kysely';
import { type Executor, isPostgres } from '../store/index.js';

/** Who made a change, as written to the audit log. */
export interface Actor {
  type: 'admin_token' | 'admin_user' | 'developer' | 'system';
  id: string | null;
}

export const systemActor: Actor = { type: 'system', id: null };

/** One state change: the audit entry and the domain event both describe it. */
export interface Change {
  /** Event type, `<entity>.<verb>`: `application.suspended`, `credential.revoked`. */
  type: string;
  entityType: string;
  entityId: string;
  /** What the event says: the entity after the change, and ids a consumer needs (serviceId, applicationId…). */
  payload: Record<string, unknown>;
}

/**
 * The key of the transaction-scoped advisory lock every outbox writer takes on PostgreSQL just before it inserts
 * its events ("trls"; any constant no other lock of the database uses).
 */
export const OUTBOX_LOCK_KEY = 0x74726c73;

/**
 * The PostgreSQL notification channel outbox writers `pg_notify` in their transaction; PostgreSQL delivers it only
 * when that transaction commits, so a worker in another process that `LISTEN`s reads the outbox at once instead
 * of at its next poll (src/webhooks/pg-wake.ts, issue 9). The notification carries nothing: it means "look".
 */
export const OUTBOX_CHANNEL = 'trellis_outbox';

/**
 * Tells listening workers (on commit) that this transaction wrote outbox events or webhook messages; nothing on
 * SQLite, where the one process's worker is woken in-process. For writers that do not go through
 * {@link recordChanges}, which does this itself.
 */
export async function notifyOutboxWrite(db: Executor): Promise<void> {
  if (isPostgres(db)) await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(db);
}

/**
 * Writes the audit entries and the outbox events of changes. Call it with the transaction that makes them, so
 * all are committed together or not at all. Gateways read the outbox as their change feed.
 *
 * On PostgreSQL the outbox `seq` comes from an identity column, allocated when the row is inserted, while the row
 * becomes visible when its transaction commits: without more, a transaction that took seq 5 could commit after
 * one that took seq 6, and a reader that had moved past 6 would never see 5. So writers first take a
 * transaction-scoped advisory lock, held until their commit: a writer can only allocate a seq once every writer
 * before it has committed (and become visible), so seq order is commit order and `seq > last` misses nothing.
 * `runChange` writes its changes at the end of the transaction, so the lock is held only for these inserts and
 * the commit. SQLite has one writer at a time and needs no lock.
 */
export async function recordChanges(
  db: Executor,
  clock: Clock,
  actor: Actor,
  changes: readonly Change[],
): Promise<void> {
  if (changes.length === 0) return;
  const at = new Date(clock.now()).toISOString();
  // rows per statement: well below the bound variables either database allows (8 columns a row)
  const chunks: Change[][] = [];
  for (let i = 0; i < changes.length; i += 500) chunks.push(changes.slice(i, i + 500));
  for (const chunk of chunks) {
    await db
      .insertInto('audit_log')
      .values(
        chunk.map((change) => ({
          id: newId('auditEntry', clock.now()),
          at,
          actor_type: actor.type,
          actor_id: actor.id,
          action: change.type,
          entity_type: change.entityType,
          entity_id: change.entityId,
          data: JSON.stringify(change.payload),
        })),
      )
      .execute();
  }
  // the lock and the notification in one round trip; the notification is sent when the transaction commits
  if (isPostgres(db)) {
    await sql`select pg_advisory_xact_lock(${OUTBOX_LOCK_KEY}), pg_notify(${OUTBOX_CHANNEL}, '')`.execute(db);
  }
  for (const chunk of chunks) {
    await db
      .insertInto('events')
      .values(
        chunk.map((change) => ({
          id: newId('event', clock.now()),
          type: change.type,
          occurred_at: at,
          entity_type: change.entityType,
          entity_id: change.entityId,
          payload: JSON.stringify(change.payload),
          dispatched_at: null,
        })),
      )
      .execute();
  }
}

/** Writes the audit entry and the outbox event of one change (see {@link recordChanges}). */
export async function recordChange(db: Executor, clock: Clock, actor: Actor, change: Change): Promise<void> {
  await recordChanges(db, clock, actor, [change]);
}

/** A row of the outbox as the change feed reads it. */
export interface ChangeFeedEntry {
  seq: number;
  type: string;
  entityType: string;
  entityId: string;
  payload: Record<string, unknown>;
}

/** Events after `afterSeq`, oldest first: how gateways learn what changed. */
export async function readChangesSince(
  db: Executor,
  afterSeq: number,
  limit = 1000,
): Promise<ChangeFeedEntry[]> {
  const rows = await db
    .selectFrom('events')
    .select(['seq', 'type', 'entity_type', 'entity_id', 'payload'])
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    seq: Number(r.seq),
    type: r.type,
    entityType: r.entity_type,
    entityId: r.entity_id,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
  }));
}

/** The newest sequence number of the outbox (0 when empty). */
export async function latestChangeSeq(db: Executor): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .executeTakeFirst();
  return Number(row?.seq ?? 0);
}

export interface AuditEntry {
  id: string;
  at: string;
  actorType: string;
  actorId: string | null;
  action: string;
  entityType: string;
  entityId: string;
  data: unknown;
}

export async function listAuditEntries(
  db: Executor,
  filter: { entityId?: string; limit: number; cursor?: string },
): Promise<AuditEntry[]> {
  let q = db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(filter.limit);
  if (filter.entityId) q = q.where('entity_id', '=', filter.entityId);
  if (filter.cursor) q = q.where('id', '<', filter.cursor);
  const rows = await q.execute();
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    actorType: r.actor_type,
    actorId: r.actor_id,
    action: r.action,
    entityType: r.entity_type,
    entityId: r.entity_id,
    data: JSON.parse(r.data),
  }));
}
