/**
 * Go-live decisions made at once, as by two control processes on one database (the probe of two `trellis start`
 * on PostgreSQL): one open request per application however many are sent together, and a request decided once —
 * approve and reject at the same moment give one decision, and never a rejected request with a live production
 * application. The requests overlap on PostgreSQL (a pool of connections); SQLite must give the same answers.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccount, createApplication, listApplications } from '../../src/access/index.js';
import { createPlan, createService } from '../../src/catalog/index.js';
import { type ChangeDeps, systemActor } from '../../src/events/index.js';
import {
  approveGoLive,
  getGoLiveRequest,
  listGoLiveRequests,
  rejectGoLive,
  requestGoLive,
  revokeProduction,
} from '../../src/golive/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { type AtOnce, atOnce, holdRow, times, warmPool } from '../support/races.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';

describe.each(dialects)('go-live decisions made at once (%s)', (dialect) => {
  let store: TestStore;
  let deps: ChangeDeps;
  let serviceId = '';
  let planId = '';

  beforeAll(async () => {
    store = await freshStore(dialect);
    deps = { db: store.db, clock: new ManualClock(Date.UTC(2026, 5, 1, 12)) };
    serviceId = (
      await createService(deps, systemActor, {
        name: 'Payments',
        systemName: 'payments',
        upstreamProduction: 'https://payments.test',
        upstreamSandbox: 'https://sandbox.payments.test',
      })
    ).id;
    planId = (
      await createPlan(deps, systemActor, serviceId, {
        name: 'Basic',
        systemName: 'basic',
        state: 'published',
      })
    ).id;
  });
  afterAll(() => store.cleanup());
  beforeEach(() => warmPool(store));

  /** A live sandbox application of an account of its own. */
  const sandboxApplication = async (name: string) => {
    const account = await createAccount(deps, systemActor, { name: `${name} Co`, state: 'approved' });
    return createApplication(deps, systemActor, { accountId: account.id, serviceId, planId, name });
  };
  const productionApplicationsOf = async (accountId: string) =>
    (await listApplications(store.db, { accountId, environment: 'production' }, { limit: 100 })).data;

  it('keeps one open request when twenty are sent at once', async () => {
    const app = await sandboxApplication('Checkout');
    const { ok, refused } = await atOnce(times(20, () => requestGoLive(deps, systemActor, app.id, {})));
    expect(ok.map((r) => r.state)).toEqual(['requested']);
    expect(refused).toEqual(Array(19).fill('invalid_state'));
    const requests = await listGoLiveRequests(store.db, { applicationId: app.id });
    expect(requests.map((r) => r.state)).toEqual(['requested']);
    await approveGoLive(deps, systemActor, requests[0]!.id, {});
    expect(await productionApplicationsOf(app.accountId)).toHaveLength(1);
  });

  it('decides a request once when it is approved and rejected at the same moment', async () => {
    for (let round = 0; round < 4; round++) {
      const app = await sandboxApplication(`Round ${round}`);
      const request = await requestGoLive(deps, systemActor, app.id, {});
      let outcome: Promise<AtOnce<unknown>>;
      if (store.dialect === 'postgres') {
        // the interleaving of the probe: the rejection reads the request while the approval is under way, and
        // writes after the approval committed
        const held = await holdRow(store, 'golive_requests', request.id);
        const approval = atOnce<unknown>([() => approveGoLive(deps, systemActor, request.id, {})]);
        await held.waitForWaiters(1);
        const rejection = atOnce<unknown>([
          () => rejectGoLive(deps, systemActor, request.id, { comment: 'not yet' }),
        ]);
        await held.waitForWaiters(2);
        await held.release();
        outcome = Promise.all([approval, rejection]).then(([a, r]) => ({
          ok: [...a.ok, ...r.ok],
          refused: [...a.refused, ...r.refused],
        }));
      } else {
        outcome = atOnce<unknown>([
          () => approveGoLive(deps, systemActor, request.id, {}),
          () => rejectGoLive(deps, systemActor, request.id, { comment: 'not yet' }),
        ]);
      }
      const { ok, refused } = await outcome;
      expect([round, ok.length, refused]).toEqual([round, 1, ['invalid_state']]);
      const decided = await getGoLiveRequest(store.db, request.id);
      const production = await productionApplicationsOf(app.accountId);
      if (decided.state === 'approved') {
        expect(production.map((a) => [a.id, a.state])).toEqual([[decided.productionApplicationId, 'live']]);
      } else {
        expect([decided.state, production]).toEqual(['rejected', []]);
      }
    }
  });

  it('revokes production once when it is revoked twice at once', async () => {
    const app = await sandboxApplication('Revoked');
    const request = await requestGoLive(deps, systemActor, app.id, {});
    await approveGoLive(deps, systemActor, request.id, {});
    const { ok, refused } = await atOnce(
      times(4, () => revokeProduction(deps, systemActor, request.id, { comment: 'abuse' })),
    );
    expect([ok.length, refused]).toEqual([1, Array(3).fill('invalid_state')]);
    const revoked = await store.db
      .selectFrom('events')
      .select('id')
      .where('type', '=', 'application.production_revoked')
      .execute();
    expect(revoked).toHaveLength(1);
  });
});
