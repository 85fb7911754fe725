/**
 * Catalog changes made at once, as by two control processes on one database: a service's first plan is its
 * default, and of several first plans made together exactly one is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlan, createService, listPlans } from '../../src/catalog/index.js';
import { type ChangeDeps, systemActor } from '../../src/events/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { atOnce, warmPool } from '../support/races.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';

describe.each(dialects)('catalog changes made at once (%s)', (dialect) => {
  let store: TestStore;
  let deps: ChangeDeps;

  beforeAll(async () => {
    store = await freshStore(dialect);
    deps = { db: store.db, clock: new ManualClock(Date.UTC(2026, 5, 1, 12)) };
  });
  afterAll(() => store.cleanup());

  it('makes one default plan of a new service whose first plans are created together', async () => {
    for (let round = 0; round < 3; round++) {
      const service = await createService(deps, systemActor, {
        name: `Race ${round}`,
        systemName: `race${round}`,
        upstreamProduction: 'https://race.test',
      });
      await warmPool(store);
      const made = await atOnce(
        Array.from(
          { length: 4 },
          (_, i) => () => createPlan(deps, systemActor, service.id, { name: `P${i}`, systemName: `p${i}` }),
        ),
      );
      expect(made.refused).toEqual([]);
      const plans = await listPlans(store.db, { serviceId: service.id });
      expect(plans).toHaveLength(4);
      expect(plans.filter((p) => p.isDefault).map((p) => p.systemName)).toHaveLength(1);
    }
  });
});
