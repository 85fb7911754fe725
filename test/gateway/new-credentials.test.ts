/**
 * A credential created a moment ago works on the very next call (issue 12, item 8), before the change feed says
 * anything: an unknown key, or a key the cached application lacks, is looked up again before it is refused — at
 * most once per `recheckMs` for the same key — while known keys never wait for the database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CredentialSource, databaseCredentialSource } from '../../src/gateway/credential-cache.js';
import { ManualClock, generateSecret, hashSecret, newId } from '../../src/kernel/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';
import { call, Fixtures, startGateway, startUpstream, testConfig, type Upstream } from './fixtures.js';

function countingSource(store: TestStore) {
  const db = databaseCredentialSource(store.db);
  const counts = { userKeys: 0, appIds: 0 };
  const source: CredentialSource = {
    findUserKey: (hash) => {
      counts.userKeys++;
      return db.findUserKey(hash);
    },
    findAppId: (appId) => {
      counts.appIds++;
      return db.findAppId(appId);
    },
  };
  return { source, counts };
}

describe.each(dialects)('credentials created a moment ago (%s)', (dialect) => {
  let store: TestStore;
  let upstream: Upstream;
  beforeAll(async () => {
    store = await freshStore(dialect);
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream.close();
    await store.cleanup();
  });

  it('accepts an app key added after its application was cached, and bounds lookups of a wrong key', async () => {
    const f = new Fixtures(store);
    const service = await f.service({ upstream: upstream.url, prefix: '/fresh', authMode: 'app_id_app_key' });
    const planId = await f.plan(service.id);
    const app = await f.application(service.id, planId);
    const first = await f.key(app.id, 'app_key');
    const clock = new ManualClock();
    const { source, counts } = countingSource(store);
    // the change feed is not read during the test: nothing tells the gateway about the new key
    const gw = await startGateway({
      store,
      clock,
      credentialSource: source,
      config: testConfig({ snapshotRefreshMs: 600_000 }),
    });
    const get = async (key: string) =>
      (await call(`${gw.url}/fresh/x`, { headers: { 'X-App-Id': app.appId, 'X-App-Key': key } })).status;
    try {
      expect(await get(first.secret)).toBe(200);
      expect(await get(first.secret)).toBe(200);
      expect(counts.appIds).toBe(1);

      const second = await f.key(app.id, 'app_key');
      expect(await get(second.secret)).toBe(200);
      expect(counts.appIds).toBe(2);
      expect(await get(second.secret)).toBe(200);
      expect(await get(first.secret)).toBe(200);
      expect(counts.appIds).toBe(2);

      const wrong = generateSecret('appKey');
      for (let i = 0; i < 5; i++) expect(await get(wrong)).toBe(401);
      expect(counts.appIds).toBe(3);
      clock.advance(1000);
      expect(await get(wrong)).toBe(401);
      expect(await get(wrong)).toBe(401);
      expect(counts.appIds).toBe(4);
    } finally {
      await gw.close();
    }
  });

  it('accepts a user key created after the same key was refused, once the recheck interval passed, and looks a bad key up once per interval', async () => {
    const f = new Fixtures(store);
    const service = await f.service({ upstream: upstream.url, prefix: '/fresh-user' });
    const planId = await f.plan(service.id);
    const app = await f.application(service.id, planId);
    const clock = new ManualClock();
    const { source, counts } = countingSource(store);
    const gw = await startGateway({
      store,
      clock,
      credentialSource: source,
      config: testConfig({ snapshotRefreshMs: 600_000 }),
    });
    const secret = generateSecret('userKey');
    const get = async () =>
      (await call(`${gw.url}/fresh-user/x`, { headers: { 'X-User-Key': secret } })).status;
    try {
      for (let i = 0; i < 5; i++) expect(await get()).toBe(401);
      expect(counts.userKeys).toBe(1);
      await store.db
        .insertInto('credentials')
        .values({
          id: newId('credential'),
          application_id: app.id,
          kind: 'user_key',
          secret_hash: hashSecret(secret),
          display_prefix: secret.slice(0, 10),
          state: 'active',
          created_at: new Date().toISOString(),
          revoked_at: null,
        })
        .execute();
      clock.advance(1000);
      expect(await get()).toBe(200);
      expect(counts.userKeys).toBe(2);
      expect(await get()).toBe(200);
      expect(counts.userKeys).toBe(2);
    } finally {
      await gw.close();
    }
  });
});
