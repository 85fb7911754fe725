/**
 * A process writing to the test's database through `runChange` (test/store/transactions.test.ts): on
 * `{ type: 'test:run', n, tag }` it makes n changes, each reading then writing in its transaction as every
 * operation does, as many at once as its store has connections, and answers `{ type: 'test:ran', failures }` with
 * the code (or message) of each that failed.
 */
import { runChange, systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { openStore } from '../../src/store/index.js';

interface Run {
  type: 'test:run';
  n: number;
  tag: string;
}

/** Changes in flight at once: the pool's connections (more would wait for one, and time out on a busy host). */
const LANES = 4;

const store = openStore(process.env.TRELLIS_DATABASE_URL ?? '', { poolSize: LANES });
const deps = { db: store.db, clock: systemClock };

/** One change: read what the outbox holds, then write an event that says so. */
const change = (tag: string, i: number) =>
  runChange(deps, systemActor, async (tx, record) => {
    const { seen } = await tx
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('seen'))
      .executeTakeFirstOrThrow();
    await record({
      type: 'test.counted',
      entityType: 'test',
      entityId: `${tag}_${i}`,
      payload: { seen: Number(seen) },
    });
  });

process.on('message', async (message: unknown) => {
  const m = message as Partial<Run>;
  if (m.type !== 'test:run' || typeof m.n !== 'number' || typeof m.tag !== 'string') return;
  const tag = m.tag;
  const n = m.n;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      for (let i = lane; i < n; i += LANES) {
        await change(tag, i).catch((err: unknown) => {
          failures.push(String((err as { code?: string }).code ?? err));
        });
      }
    }),
  );
  process.send?.({ type: 'test:ran', failures });
});
process.on('disconnect', () => {
  void store.destroy();
});
process.send?.({ type: 'test:ready' });
