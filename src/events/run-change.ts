import type { Clock } from '../kernel/index.js';
import type { Db, Tx } from '../store/index.js';
import { type Actor, type Change, recordChanges } from './changes.store.js';

/** What every state-changing operation needs. */
export interface ChangeDeps {
  db: Db;
  clock: Clock;
  /** Called after a change commits (the control process publishes a notification so gateways reload at once). */
  onCommitted?: (changes: Change[]) => void;
}

/**
 * Runs `fn` in one transaction; every change it records is written to the audit log and the outbox in that same
 * transaction, and announced through `onCommitted` once committed. The changes are written when `fn` is done,
 * just before the commit: on PostgreSQL the outbox writers queue there, for as short a time as possible, so the
 * outbox's order is the order of commits (see `recordChanges`).
 * @example await runChange(deps, actor, async (tx, record) => { …; await record({ type: 'plan.created', … }) })
 */
export async function runChange<T>(
  deps: ChangeDeps,
  actor: Actor,
  fn: (tx: Tx, record: (change: Change) => Promise<void>) => Promise<T>,
): Promise<T> {
  const changes: Change[] = [];
  const result = await deps.db.transaction().execute(async (tx) => {
    const value = await fn(tx, async (change) => {
      changes.push(change);
    });
    await recordChanges(tx, deps.clock, actor, changes);
    return value;
  });
  if (changes.length > 0) deps.onCommitted?.(changes);
  return result;
}
