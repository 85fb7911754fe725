/**
 * Bounded staleness of cached credentials (issue 8, item 2, the second line): whatever the change feed missed,
 * an entry older than the maximum age is looked up again, served meanwhile and while the database cannot answer,
 * and an entry evicted during that lookup is never brought back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CredentialSource, databaseCredentialSource } from '../../src/gateway/credential-cache.js';
import { hashSecret, ManualClock } from '../../src/kernel/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';
import { call, Fixtures, startGateway, startUpstream, testConfig, until, type Upstream } from './fixtures.js';

/** The database as a credential source that a test can make fail or hold. */
function controllableSource(store: TestStore) {
  const db = databaseCredentialSource(store.db);
  const state = {
    down: false,
    lookups: 0,
    hold: null as Promise<void> | null,
  };
  const gate = async () => {
    state.lookups++;
    if (state.hold) await state.hold;
    if (state.down)
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  };
  const source: CredentialSource = {
    async findUserKey(hash) {
      // read first, then wait: a held lookup answers with what the database said before the change
      const found = await db.findUserKey(hash);
      await gate();
      return found;
    },
    async findAppId(appId) {
      const found = await db.findAppId(appId);
      await gate();
      return found;
    },
  };
  return { source, state };
}

describe.each(dialects)('credential staleness (%s)', (dialect) => {
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

  it('re-validates entries older than the maximum age, even when the change feed said nothing', async () => {
    const f = new Fixtures(store);
    const { app, key } = await f.keyed({ upstream: upstream.url, prefix: '/stale' });
    const clock = new ManualClock();
    const { source, state } = controllableSource(store);
    const gw = await startGateway({
      store,
      clock,
      credentialSource: source,
      config: testConfig({ snapshotRefreshMs: 60_000 }),
      options: { credentialMaxAgeMs: 60_000 },
    });
    const get = async (secret: string) =>
      (await call(`${gw.url}/stale/x`, { headers: { 'X-User-Key': secret } })).json.error?.code ?? 'ok';
    try {
      expect(await get(key)).toBe('ok');
      // revoked behind the gateway's back: no outbox event
      await store.db
        .updateTable('credentials')
        .set({ state: 'revoked' })
        .where('secret_hash', '=', hashSecret(key))
        .execute();
      clock.advance(59_000);
      expect(await get(key)).toBe('ok');

      // older than the maximum age, and the database away: still served, no error
      clock.advance(2_000);
      state.down = true;
      const before = state.lookups;
      expect(await get(key)).toBe('ok');
      await until(() => state.lookups > before, 1000);
      expect(await get(key)).toBe('ok');
      // the database back: the next try (a few seconds later) finds the revoke
      state.down = false;
      clock.advance(5_000);
      expect(await get(key)).toBe('ok');
      await until(async () => (await get(key)) === 'credentials_revoked', 1000);

      // an unknown key is forgotten after the maximum age too
      const late = await f.key(app.id);
      await store.db.deleteFrom('credentials').where('id', '=', late.id).execute();
      expect(await get(late.secret)).toBe('credentials_invalid');
      await store.db
        .insertInto('credentials')
        .values({
          id: late.id,
          application_id: app.id,
          kind: 'user_key',
          secret_hash: hashSecret(late.secret),
          display_prefix: 'x',
          state: 'active',
          created_at: new Date().toISOString(),
          revoked_at: null,
        })
        .execute();
      expect(await get(late.secret)).toBe('credentials_invalid');
      clock.advance(61_000);
      expect(await get(late.secret)).toBe('ok');
    } finally {
      await gw.close();
    }
  });

  it('never brings back an entry evicted while it was being re-validated', async () => {
    const f = new Fixtures(store);
    const { app, key } = await f.keyed({ upstream: upstream.url, prefix: '/evicted' });
    const clock = new ManualClock();
    const { source, state } = controllableSource(store);
    const gw = await startGateway({
      store,
      clock,
      credentialSource: source,
      config: testConfig({ snapshotRefreshMs: 60_000 }),
      options: { credentialMaxAgeMs: 60_000 },
    });
    const get = async () =>
      (await call(`${gw.url}/evicted/x`, { headers: { 'X-User-Key': key } })).json.error?.code ?? 'ok';
    try {
      expect(await get()).toBe('ok');
      clock.advance(61_000);
      // the re-validation reads the key as active, then is held
      let letGo!: () => void;
      state.hold = new Promise<void>((resolve) => {
        letGo = resolve;
      });
      const before = state.lookups;
      expect(await get()).toBe('ok');
      await until(() => state.lookups > before, 1000);
      // meanwhile the key is revoked and the gateway told so
      await store.db
        .updateTable('credentials')
        .set({ state: 'revoked' })
        .where('secret_hash', '=', hashSecret(key))
        .execute();
      await f.change('credential', 'key_x', { applicationId: app.id }, 'credential.revoked');
      await gw.gateway.refresh();
      state.hold = null;
      letGo();
      // the late answer ("active") must not be cached: the key is looked up afresh and refused
      await until(async () => (await get()) === 'credentials_revoked', 1000);
      expect(await get()).toBe('credentials_revoked');
    } finally {
      await gw.close();
    }
  });
});
