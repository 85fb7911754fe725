/**
 * Signing key rotations made at once, as by two control processes on one database: they run one after the other,
 * so the keys end as one current, one next and the retired ones, whatever the interleaving.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChangeDeps, systemActor } from '../../src/events/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { createSealer, rotateSigningKeys } from '../../src/oauth/index.js';
import { atOnce, times, warmPool } from '../support/races.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';

describe.each(dialects)('signing key rotations made at once (%s)', (dialect) => {
  let store: TestStore;
  let deps: ChangeDeps;
  const sealer = createSealer('rotation-race-secret');

  beforeAll(async () => {
    store = await freshStore(dialect);
    deps = { db: store.db, clock: new ManualClock(Date.UTC(2026, 5, 1, 12)) };
  });
  afterAll(() => store.cleanup());

  it('leave one current and one next key', async () => {
    await warmPool(store);
    const rotations = await atOnce(times(5, () => rotateSigningKeys(deps, systemActor, sealer)));
    expect(rotations.refused).toEqual([]);
    const { rows } = await sql<{ state: string; n: number | string }>`
      select state, count(*) as n from oauth_signing_keys group by state order by state`.execute(store.db);
    const byState = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    expect(byState).toEqual({ current: 1, next: 1, retired: 4 });
  });
});
