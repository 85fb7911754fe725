import { Redis } from 'ioredis';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishChange } from '../../src/gateway/index.js';
import { hashSecret, systemClock } from '../../src/kernel/index.js';
import { call, Fixtures, startGateway, startUpstream, testConfig, until, type Upstream } from './fixtures.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';

describe.each(dialects)('gateway changes (%s)', (dialect) => {
  let store: TestStore;
  let f: Fixtures;
  let upstream: Upstream;

  beforeAll(async () => {
    store = await freshStore(dialect);
    f = new Fixtures(store, systemClock);
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream.close();
    await store.cleanup();
  });

  describe('changes reach the gateway', () => {
    it('applies rule, limit, key, application and account changes within a second under load, failing no request', {
      timeout: 30_000,
    }, async () => {
      const service = await f.service({ upstream: upstream.url, prefix: '/reload', defaultRule: false });
      await f.rule(service.id, { pattern: '/items', metricId: service.hitsId, method: 'GET' });
      const planId = await f.plan(service.id);
      const steady = await f.application(service.id, planId);
      const steadyKey = (await f.key(steady.id)).secret;
      const other = await f.application(service.id, planId);
      const revokedLater = await f.key(other.id);
      const suspendedApp = await f.application(service.id, planId);
      const suspendedAppKey = (await f.key(suspendedApp.id)).secret;
      const heldAccount = await f.application(service.id, planId);
      const heldAccountKey = (await f.key(heldAccount.id)).secret;

      // the poll interval is the default's; no Redis: the outbox poll alone must be fast enough
      const gw = await startGateway({
        store,
        clock: systemClock,
        config: testConfig({ snapshotRefreshMs: 500 }),
      });
      const agent = new Agent({ connections: 16 });
      const get = (path: string, key: string) =>
        call(`${gw.url}/reload${path}`, { headers: { 'X-User-Key': key }, dispatcher: agent });

      // steady load from 8 clients for the whole test
      let stop = false;
      let served = 0;
      const failures: string[] = [];
      const loops = Array.from({ length: 8 }, async () => {
        while (!stop) {
          try {
            const res = await get('/items', steadyKey);
            if (res.status === 200) served++;
            else failures.push(`${res.status} ${res.text}`);
          } catch (err) {
            failures.push(String(err));
          }
        }
      });

      const within = async (label: string, check: () => Promise<boolean>) => {
        const ms = await until(check, 1000, 5);
        expect(ms, label).toBeLessThanOrEqual(1000);
      };

      // a new mapping rule
      expect((await get('/new', steadyKey)).json.error?.code).toBe('no_mapping_rule');
      const newMetric = await f.metric(service.id, 'new', service.hitsId);
      const ruleId = await f.rule(service.id, { pattern: '/new', metricId: newMetric });
      await f.change('mapping_rule', ruleId, { serviceId: service.id });
      await within('new rule', async () => (await get('/new', steadyKey)).status === 200);

      // a new limit
      const limitId = await f.limit(planId, newMetric, 'day', 0);
      await f.change('plan', planId, { serviceId: service.id, limitId }, 'plan.limit_set');
      await within('new limit', async () => (await get('/new', steadyKey)).status === 429);

      // a revoked key
      expect((await get('/items', revokedLater.secret)).status).toBe(200);
      await store.db
        .updateTable('credentials')
        .set({ state: 'revoked' })
        .where('id', '=', revokedLater.id)
        .execute();
      await f.change('credential', revokedLater.id, { applicationId: other.id }, 'credential.revoked');
      await within(
        'revoked key',
        async () => (await get('/items', revokedLater.secret)).json.error?.code === 'credentials_revoked',
      );

      // a suspended application
      expect((await get('/items', suspendedAppKey)).status).toBe(200);
      await store.db
        .updateTable('applications')
        .set({ state: 'suspended' })
        .where('id', '=', suspendedApp.id)
        .execute();
      await f.change(
        'application',
        suspendedApp.id,
        { applicationId: suspendedApp.id },
        'application.suspended',
      );
      await within(
        'suspended app',
        async () => (await get('/items', suspendedAppKey)).json.error?.code === 'application_suspended',
      );

      // a suspended account
      expect((await get('/items', heldAccountKey)).status).toBe(200);
      await store.db
        .updateTable('accounts')
        .set({ state: 'suspended' })
        .where('id', '=', heldAccount.accountId)
        .execute();
      await f.change(
        'account',
        heldAccount.accountId,
        { accountId: heldAccount.accountId },
        'account.suspended',
      );
      await within(
        'suspended account',
        async () => (await get('/items', heldAccountKey)).json.error?.code === 'account_suspended',
      );

      // a new key of an application, presented (and remembered as unknown) before it existed
      const early = await f.key(steady.id);
      await store.db.deleteFrom('credentials').where('id', '=', early.id).execute();
      expect((await get('/items', early.secret)).json.error?.code).toBe('credentials_invalid');
      await store.db
        .insertInto('credentials')
        .values({
          id: early.id,
          application_id: steady.id,
          kind: 'user_key',
          secret_hash: hashSecret(early.secret),
          display_prefix: 'x',
          state: 'active',
          created_at: new Date().toISOString(),
          revoked_at: null,
        })
        .execute();
      await f.change('credential', early.id, { applicationId: steady.id }, 'credential.created');
      await within('new key', async () => (await get('/items', early.secret)).status === 200);

      // several snapshot rebuilds in a row while loaded
      for (let i = 0; i < 5; i++) await f.change('service', service.id, { serviceId: service.id });
      await gw.gateway.refresh();

      stop = true;
      await Promise.all(loops);
      expect(failures).toEqual([]);
      expect(served).toBeGreaterThan(100);
      await agent.close();
      await gw.close();
    });

    it('applies a change at once when control publishes on Redis, long before the next poll', {
      timeout: 10_000,
    }, async () => {
      const { app, key } = await f.keyed({ upstream: upstream.url, prefix: '/notify' });
      const gw = await startGateway({
        store,
        clock: systemClock,
        config: testConfig({ redisUrl: 'redis://127.0.0.1:6379', snapshotRefreshMs: 60_000 }),
        options: { redisKeyPrefix: `trellis-test:${app.id}:` },
      });
      // let the subscription settle: it is made when the gateway starts
      await until(async () => (await call(`${gw.url}/__trellis/health`)).status === 200, 1000);
      const publisher = new Redis('redis://127.0.0.1:6379');
      await until(async () => Number((await publisher.pubsub('NUMSUB', 'trellis:changes'))[1]) > 0, 2000);
      expect((await call(`${gw.url}/notify/x`, { headers: { 'X-User-Key': key } })).status).toBe(200);
      await store.db
        .updateTable('applications')
        .set({ state: 'suspended' })
        .where('id', '=', app.id)
        .execute();
      await f.change('application', app.id, { applicationId: app.id }, 'application.suspended');
      await publishChange(publisher);
      const ms = await until(
        async () =>
          (await call(`${gw.url}/notify/x`, { headers: { 'X-User-Key': key } })).json.error?.code ===
          'application_suspended',
        1000,
        5,
      );
      expect(ms).toBeLessThan(1000);
      await publisher.quit();
      await gw.close();
    });
  });
});
