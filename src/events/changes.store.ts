import { type Clock, newId } from '../kernel/index.js';
import type { Executor } from '../store/index.js';

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
 * Writes the audit entry and the outbox event of a change. Call it with the transaction that makes the change,
 * so both are committed together or not at all. Gateways read the outbox as their change feed.
 */
export async function recordChange(db: Executor, clock: Clock, actor: Actor, change: Change): Promise<void> {
  const at = new Date(clock.now()).toISOString();
  await db
    .insertInto('audit_log')
    .values({
      id: newId('auditEntry', clock.now()),
      at,
      actor_type: actor.type,
      actor_id: actor.id,
      action: change.type,
      entity_type: change.entityType,
      entity_id: change.entityId,
      data: JSON.stringify(change.payload),
    })
    .execute();
  await db
    .insertInto('events')
    .values({
      id: newId('event', clock.now()),
      type: change.type,
      occurred_at: at,
      entity_type: change.entityType,
      entity_id: change.entityId,
      payload: JSON.stringify(change.payload),
      dispatched_at: null,
    })
    .execute();
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
