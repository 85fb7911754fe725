/**
 * `runChanges`: several operations (each its own `runChange`) as one transaction — what `trellis apply` runs its
 * steps in. All are committed with their audit entries and outbox events, or none is.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPlan, createService, listServices } from '../../src/catalog/index.js';
import { type Change, readChangesSince, runChanges, systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { isUniqueViolation } from '../../src/store/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';

describe.each(dialects)('runChanges (%s)', (dialect) => {
  let store: TestStore;
  beforeEach(async () => {
    store = await freshStore(dialect);
  });
  afterEach(() => store.cleanup());

  const service = { name: 'One', systemName: 'one', upstreamProduction: 'http://127.0.0.1:9' };

  it('commits every operation, writes their events in order, and announces them once', async () => {
    const announced: Change[][] = [];
    const deps = { db: store.db, clock: systemClock, onCommitted: (c: Change[]) => announced.push(c) };
    await runChanges(deps, async (inOne) => {
      const svc = await createService(inOne, systemActor, service);
      await createPlan(inOne, systemActor, svc.id, { name: 'Free', systemName: 'free' });
    });
    expect((await readChangesSince(store.db, 0)).map((e) => e.type)).toEqual([
      'service.created',
      'plan.created',
    ]);
    expect(announced.map((changes) => changes.map((c) => c.type))).toEqual([
      ['service.created', 'plan.created'],
    ]);
  });

  it('rolls every operation back when one fails, even if the caller caught the failure', async () => {
    const announced: Change[][] = [];
    const deps = { db: store.db, clock: systemClock, onCommitted: (c: Change[]) => announced.push(c) };
    const failing = runChanges(deps, async (inOne) => {
      const svc = await createService(inOne, systemActor, service);
      // a second plan of the same name: refused (unique key)
      await createPlan(inOne, systemActor, svc.id, { name: 'Free', systemName: 'free' });
      await createPlan(inOne, systemActor, svc.id, { name: 'Free', systemName: 'free' }).catch(() => {});
    });
    // the failure the operation met, as the database reported it
    await expect(failing).rejects.toSatisfy(isUniqueViolation);
    expect((await listServices(store.db, { limit: 10 })).data).toEqual([]);
    expect(await readChangesSince(store.db, 0)).toEqual([]);
    expect(announced).toEqual([]);
  });
});
