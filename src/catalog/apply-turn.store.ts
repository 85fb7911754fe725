/**
 * The turn of a declarative apply (`trellis apply`): applies to one database, from any number of processes, run one
 * after the other. An apply takes its turn first thing in its transaction and holds it until that transaction
 * ends, and works out what to change only then, so a second apply run at the same time sees what the first
 * committed and has nothing (or only what differs) left to do. A process that dies mid-apply ends its transaction
 * with its connection, and its turn with it: nothing to expire.
 */
import { sql } from 'kysely';
import { type ChangeDeps, runChanges } from '../events/index.js';
import { TrellisError } from '../kernel/index.js';
import { type Tx, isPostgres } from '../store/index.js';

/** The key of the transaction-scoped advisory lock applies take on PostgreSQL ("trla"; the outbox's is "trls"). */
export const APPLY_LOCK_KEY = 0x74726c61;

/** How long an apply waits for the one before it to finish. */
const APPLY_WAIT_SECONDS = 120;

/** PostgreSQL: how often a waiting apply asks for the turn, and how many times (together {@link APPLY_WAIT_SECONDS}). */
const POSTGRES_POLL_MS = 100;
const POSTGRES_POLLS = (APPLY_WAIT_SECONDS * 1000) / POSTGRES_POLL_MS;

/** SQLite: the waits of `busy_timeout` (5 s, src/store/dialect.ts) that make up {@link APPLY_WAIT_SECONDS}. */
const SQLITE_BUSY_WAITS = APPLY_WAIT_SECONDS / 5;

const busy = () =>
  new TrellisError(
    'unavailable',
    `Another apply (or another writer) held the database for over ${APPLY_WAIT_SECONDS} s; try again once it is done.`,
  );

/**
 * Runs `fn` as {@link runChanges} does (one transaction, all or nothing) in the apply turn, taken before `fn` reads
 * anything and held until the transaction ends.
 *
 * PostgreSQL: a transaction-scoped advisory lock, released at commit or rollback; the reads after it see what the
 * apply before committed (READ COMMITTED takes a snapshot per statement). It is asked for with the `try` form
 * every {@link POSTGRES_POLL_MS}: a statement that waited for it would meet the store's bound on one query
 * (`TRELLIS_DATABASE_QUERY_TIMEOUT_MS`, whose timeout closes the connection), and a failed statement would end
 * the transaction.
 *
 * SQLite: the file's write lock, which the transaction takes as it begins (`BEGIN IMMEDIATE`, src/store/dialect.ts),
 * so its snapshot starts after the apply before committed. The begin waits `busy_timeout` for the lock and fails
 * with `SQLITE_BUSY` when another connection held it all that time: the transaction never began, and is begun
 * again, until {@link APPLY_WAIT_SECONDS} have passed.
 * @example await runInApplyTurn(deps, async (inOne, tx) => { const steps = await planApply(tx, doc); … })
 */
export async function runInApplyTurn<T>(
  deps: ChangeDeps,
  fn: (deps: ChangeDeps, tx: Tx) => Promise<T>,
): Promise<T> {
  const postgres = isPostgres(deps.db);
  for (let wait = 1; ; wait++) {
    let began = false;
    try {
      return await runChanges(deps, async (inOne, tx) => {
        began = true;
        if (postgres) await takePostgresTurn(tx);
        return fn(inOne, tx);
      });
    } catch (err) {
      if (began || postgres || (err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      if (wait >= SQLITE_BUSY_WAITS) throw busy();
    }
  }
}

async function takePostgresTurn(tx: Tx): Promise<void> {
  for (let poll = 0; poll < POSTGRES_POLLS; poll++) {
    const { rows } = await sql<{
      taken: boolean;
    }>`select pg_try_advisory_xact_lock(${APPLY_LOCK_KEY}) as taken`.execute(tx);
    if (rows[0]?.taken) return;
    await new Promise((resolve) => setTimeout(resolve, POSTGRES_POLL_MS));
  }
  throw busy();
}
