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

/** The changes made so far in a transaction opened by {@link runChanges}, and the first failure inside it. */
interface Enclosing {
  changes: { actor: Actor; change: Change }[];
  failure: { error: unknown } | null;
}

const enclosing = new WeakMap<Tx, Enclosing>();

/**
 * Runs `fn` in one transaction; every change it records is written to the audit log and the outbox in that same
 * transaction, and announced through `onCommitted` once committed. The changes are written when `fn` is done,
 * just before the commit: on PostgreSQL the outbox writers queue there, for as short a time as possible, so the
 * outbox's order is the order of commits (see `recordChanges`).
 *
 * Given the transaction of {@link runChanges} as `deps.db`, it runs `fn` in that transaction instead, and its
 * changes are written with the others when that transaction ends.
 * @example await runChange(deps, actor, async (tx, record) => { …; await record({ type: 'plan.created', … }) })
 */
export async function runChange<T>(
  deps: ChangeDeps,
  actor: Actor,
  fn: (tx: Tx, record: (change: Change) => Promise<void>) => Promise<T>,
): Promise<T> {
  if (deps.db.isTransaction) return runJoined(deps.db as Tx, actor, fn);
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

async function runJoined<T>(
  tx: Tx,
  actor: Actor,
  fn: (tx: Tx, record: (change: Change) => Promise<void>) => Promise<T>,
): Promise<T> {
  const outer = enclosing.get(tx);
  if (!outer) throw new Error('runChange was given a transaction that runChanges did not open');
  const changes: Change[] = [];
  try {
    const value = await fn(tx, async (change) => {
      changes.push(change);
    });
    for (const change of changes) outer.changes.push({ actor, change });
    return value;
  } catch (error) {
    // what the failed operation wrote is still in the transaction (SQLite goes on after a failed statement):
    // the whole transaction fails, even if the caller catches this
    outer.failure ??= { error };
    throw error;
  }
}

/**
 * Runs several operations as one change: `fn` gets deps whose `db` is one transaction, and every `runChange`
 * made with them runs in it, so all of them are committed together or none is. Their audit entries and outbox
 * events are written at the end, in the order made, and announced together once committed. If any operation
 * inside fails, the transaction is rolled back and that error thrown, even when `fn` caught it.
 * @example await runChanges(deps, async (txDeps) => { await createService(txDeps, actor, …); await createPlan(txDeps, actor, …) })
 */
export async function runChanges<T>(
  deps: ChangeDeps,
  fn: (deps: ChangeDeps, tx: Tx) => Promise<T>,
): Promise<T> {
  if (deps.db.isTransaction) throw new Error('runChanges cannot run inside another transaction');
  const scope: Enclosing = { changes: [], failure: null };
  const result = await deps.db.transaction().execute(async (tx) => {
    enclosing.set(tx, scope);
    try {
      const value = await fn({ db: tx, clock: deps.clock }, tx);
      if (scope.failure) throw scope.failure.error;
      // one write per run of changes by the same actor (the audit log says who made each)
      const runs: { actor: Actor; changes: Change[] }[] = [];
      for (const { actor, change } of scope.changes) {
        const last = runs.at(-1);
        if (last && sameActor(last.actor, actor)) last.changes.push(change);
        else runs.push({ actor, changes: [change] });
      }
      for (const run of runs) await recordChanges(tx, deps.clock, run.actor, run.changes);
      return value;
    } finally {
      enclosing.delete(tx);
    }
  });
  const changes = scope.changes.map((c) => c.change);
  if (changes.length > 0) deps.onCommitted?.(changes);
  return result;
}

const sameActor = (a: Actor, b: Actor) => a.type === b.type && a.id === b.id;
