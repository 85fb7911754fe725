/**
 * Two rotations of one endpoint's signing secret at once (two control processes): both secrets handed out stay
 * in use, one as the current secret and the other as the previous one, so a receiver configured with either
 * still verifies deliveries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/events/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { type WebhookDeps, createEndpoint, rotateEndpointSecret } from '../../src/webhooks/index.js';
import type { WebhookTables } from '../../src/webhooks/webhook-tables.js';
import { atOnce, holdRow, warmPool } from '../support/races.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import { keySecret } from './harness.js';

describe.each(dialects)('signing secret rotations at once (%s)', (dialect) => {
  let store: TestStore;
  let deps: WebhookDeps;
  beforeAll(async () => {
    store = await freshStore(dialect);
    deps = {
      db: store.db,
      clock: new ManualClock(Date.UTC(2026, 5, 1, 12)),
      sealer: createSealer(keySecret),
      allowHosts: ['127.0.0.1'],
    };
  });
  afterAll(() => store.cleanup());

  it('keeps both returned secrets, one current and one previous', async () => {
    await warmPool(store);
    const endpoint = await createEndpoint(deps, systemActor, {
      url: 'http://127.0.0.1:9/hooks',
      eventTypes: ['account.created'],
    });
    const rotate = () => rotateEndpointSecret(deps, systemActor, endpoint.id);
    let outcome: ReturnType<typeof atOnce<Awaited<ReturnType<typeof rotate>>>>;
    if (store.dialect === 'postgres') {
      // both rotations start while the row is held, so both have begun before either writes
      const held = await holdRow(store, 'webhook_endpoints', endpoint.id);
      outcome = atOnce([rotate, rotate]);
      await held.waitForWaiters(2);
      await held.release();
    } else {
      outcome = atOnce([rotate, rotate]);
    }
    const { ok, refused } = await outcome;
    expect([ok.length, refused]).toEqual([2, []]);
    const row = await store.db
      .withTables<WebhookTables>()
      .selectFrom('webhook_endpoints')
      .select(['secret', 'previous_secret'])
      .where('id', '=', endpoint.id)
      .executeTakeFirstOrThrow();
    const kept = [row.secret, row.previous_secret].map((s) => (s === null ? null : deps.sealer.open(s)));
    expect(kept.sort()).toEqual(ok.map((r) => r.secret).sort());
  });
});
