/**
 * The database goes away under a running gateway and control server (issue 8, item 1): backends terminated during
 * traffic, and a PostgreSQL the test owns stopped and started again. The process survives, known credentials keep
 * being served from the cache, what needs the database answers 503 with a stable code, and everything recovers.
 */
import pg from 'pg';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../src/access/index.js';
import { loadConfig } from '../../src/config/index.js';
import { buildControlApp } from '../../src/control/index.js';
import { oauthControlModule } from '../../src/oauth/index.js';
import { portalModule } from '../../src/portal/index.js';
import { systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/index.js';
import { type OwnedPostgres, startOwnedPostgres } from '../support/owned-postgres.js';
import { freshStore, postgresAdminUrl, type TestStore } from '../support/stores.js';
import { call, Fixtures, startGateway, startUpstream, testConfig, until, type Upstream } from './fixtures.js';

let upstream: Upstream;
beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(() => upstream.close());

/** Steady traffic with one known key from `clients` loops; every answer that is not 200 is a failure. */
function traffic(url: string, key: string, clients: number) {
  const agent = new Agent({ connections: clients });
  let stopped = false;
  let served = 0;
  const failures: string[] = [];
  const loops = Array.from({ length: clients }, async () => {
    while (!stopped) {
      try {
        const res = await call(url, { headers: { 'X-User-Key': key }, dispatcher: agent });
        if (res.status === 200) served++;
        else failures.push(`${res.status} ${res.text}`);
      } catch (err) {
        failures.push(String(err));
      }
    }
  });
  return {
    get served() {
      return served;
    },
    failures,
    /** Resolves once `n` more calls were served. */
    async more(n: number) {
      const target = served + n;
      await until(async () => served >= target || stopped, 10_000, 1);
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      await agent.close();
    },
  };
}

describe('PostgreSQL backends terminated during traffic', () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore('postgres');
  });
  afterAll(() => store.cleanup());

  it('the gateway survives, serves known keys throughout and works again afterwards', {
    timeout: 60_000,
  }, async () => {
    const f = new Fixtures(store, systemClock);
    const { app, key } = await f.keyed({ upstream: upstream.url, prefix: '/term' });
    // the change feed polls every 20 ms, so connections are in use and idle all the time
    const gw = await startGateway({
      store,
      clock: systemClock,
      config: testConfig({ snapshotRefreshMs: 20 }),
    });
    expect((await call(`${gw.url}/term/x`, { headers: { 'X-User-Key': key } })).status).toBe(200);
    const load = traffic(`${gw.url}/term/x`, key, 6);
    const admin = new pg.Client({ connectionString: postgresAdminUrl });
    await admin.connect();
    const dbName = new URL(store.url).pathname.slice(1);
    let terminated = 0;
    let unknownAnswers = new Set<number>();
    try {
      for (let round = 0; round < 25; round++) {
        const res = await admin.query(
          'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
          [dbName],
        );
        terminated += res.rowCount ?? 0;
        // an unknown key needs the database: refused (401) or, if its connection was just cut, 503
        const unknown = await call(`${gw.url}/term/x`, { headers: { 'X-User-Key': `trk_unknown${round}` } });
        unknownAnswers.add(unknown.status);
        if (unknown.status === 503) expect(unknown.json.error?.code).toBe('backend_unavailable');
        await load.more(20);
      }
    } finally {
      await load.stop();
      await admin.end();
    }
    expect(terminated).toBeGreaterThan(0);
    expect(load.failures).toEqual([]);
    expect(load.served).toBeGreaterThan(25 * 20 - 1);
    unknownAnswers = new Set([...unknownAnswers].filter((s) => s !== 401 && s !== 503));
    expect([...unknownAnswers]).toEqual([]);

    // afterwards: lookups and the change feed work again
    const fresh = await f.key(app.id);
    expect((await call(`${gw.url}/term/x`, { headers: { 'X-User-Key': fresh.secret } })).status).toBe(200);
    await store.db.updateTable('credentials').set({ state: 'revoked' }).where('id', '=', fresh.id).execute();
    await f.change('credential', fresh.id, { applicationId: app.id }, 'credential.revoked');
    await until(
      async () =>
        (await call(`${gw.url}/term/x`, { headers: { 'X-User-Key': fresh.secret } })).status === 401,
      2000,
    );
    expect((await call(`${gw.url}/term/x`, { headers: { 'X-User-Key': fresh.secret } })).status).toBe(401);
    await gw.close();
  });
});

describe('a PostgreSQL the test owns, stopped and started again', () => {
  let pgOwned: OwnedPostgres;
  let store: Store;
  beforeAll(async () => {
    pgOwned = await startOwnedPostgres();
    store = openStore(pgOwned.url, { poolSize: 5 });
    await migrateToLatest(store.db);
  }, 60_000);
  afterAll(async () => {
    pgOwned?.thaw();
    await store?.destroy();
    await pgOwned?.destroy();
  });

  it('keeps serving known keys, answers 503 for what needs the database, and recovers by itself', {
    timeout: 90_000,
  }, async () => {
    const f = new Fixtures(store, systemClock);
    const { app, key } = await f.keyed({ upstream: upstream.url, prefix: '/down' });
    const second = await f.key(app.id);
    const config = loadConfig({}, { databaseUrl: pgOwned.url });
    const deps = { db: store.db, clock: systemClock };
    const token = (await createAdminToken(deps, systemActor, { name: 'faults', scope: 'read_write' })).token;
    // the management API, the developer portal (HTML pages have their own error handler) and the OAuth server,
    // whose background work (key checks, token counts, sweeps) runs every 100 ms here: all must outlive the outage
    const control = await buildControlApp(
      { config, store, clock: systemClock },
      {
        modules: [portalModule(), oauthControlModule({ keyCheckMs: 100, counterFlushMs: 100, sweepMs: 100 })],
      },
    );
    await control.listen({ port: 0, host: '127.0.0.1' });
    const address = control.server.address();
    const controlUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const services = () =>
      call(`${controlUrl}/admin/api/services`, { headers: { authorization: `Bearer ${token}` } });
    expect((await services()).status).toBe(200);

    const gw = await startGateway({
      store,
      clock: systemClock,
      config: testConfig({ snapshotRefreshMs: 20 }),
    });
    expect((await call(`${gw.url}/down/x`, { headers: { 'X-User-Key': key } })).status).toBe(200);
    expect((await call(`${gw.url}/down/x`, { headers: { 'X-User-Key': second.secret } })).status).toBe(200);
    const load = traffic(`${gw.url}/down/x`, key, 4);
    try {
      await load.more(50);
      await pgOwned.stop();
      await load.more(100);

      // known keys: served from the cache
      expect((await call(`${gw.url}/down/x`, { headers: { 'X-User-Key': second.secret } })).status).toBe(200);
      // an unknown key needs the database
      const unknown = await call(`${gw.url}/down/x`, { headers: { 'X-User-Key': 'trk_nobodyknows' } });
      expect(unknown.status).toBe(503);
      expect(unknown.json.error?.code).toBe('backend_unavailable');
      expect((await call(`${gw.url}/__trellis/health`)).status).toBe(200);
      // the management API: 503 in the one error shape
      const down = await services();
      expect(down.status).toBe(503);
      expect(down.json.error?.code).toBe('database_unavailable');
      expect(typeof down.json.error?.requestId).toBe('string');
      const page = await call(`${controlUrl}/`, { headers: { accept: 'text/html' } });
      // the portal cannot render its page without the database (settings, session): a browser gets the 503 page
      // that needs none, with the stable code; a script gets the one error shape
      expect(page.status, page.text.slice(0, 300)).toBe(503);
      expect(page.text).toContain('<code>database_unavailable</code>');
      const script = await call(`${controlUrl}/`, { headers: { accept: 'application/json' } });
      expect(script.status).toBe(503);
      expect(script.json.error?.code).toBe('database_unavailable');

      await pgOwned.start();
      await load.more(50);
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);

    // recovered without help: lookups, the management API and the change feed
    await until(
      async () =>
        (await call(`${gw.url}/down/x`, { headers: { 'X-User-Key': 'trk_nobodyknows2' } })).status === 401,
      10_000,
    );
    await until(async () => (await services()).status === 200, 10_000);
    expect((await services()).status).toBe(200);
    expect((await call(`${controlUrl}/`, { headers: { accept: 'text/html' } })).status).toBe(200);
    await store.db.updateTable('credentials').set({ state: 'revoked' }).where('id', '=', second.id).execute();
    await f.change('credential', second.id, { applicationId: app.id }, 'credential.revoked');
    await until(
      async () =>
        (await call(`${gw.url}/down/x`, { headers: { 'X-User-Key': second.secret } })).json.error?.code ===
        'credentials_revoked',
      3000,
    );
    expect((await call(`${gw.url}/down/x`, { headers: { 'X-User-Key': second.secret } })).status).toBe(401);
    await gw.close();
    await control.close();
  });

  it('answers in bounded time while the database hangs (frozen server), and recovers when it answers again', {
    timeout: 90_000,
  }, async () => {
    const f = new Fixtures(store, systemClock);
    const { app, key } = await f.keyed({ upstream: upstream.url, prefix: '/hung' });
    const second = await f.key(app.id);
    const gw = await startGateway({
      store,
      clock: systemClock,
      config: testConfig({ snapshotRefreshMs: 50 }),
      options: { lookupTimeoutMs: 1000, feedTimeoutMs: 1000 },
    });
    const get = (secret: string) =>
      call(`${gw.url}/hung/x`, { headers: { 'X-User-Key': secret } }).then((r) => ({
        status: r.status,
        code: r.json.error?.code,
      }));
    expect((await get(key)).status).toBe(200);
    expect((await get(second.secret)).status).toBe(200);
    pgOwned.freeze();
    try {
      expect(await get(key)).toEqual({ status: 200, code: undefined });
      const started = Date.now();
      expect(await get('trk_frozen_unknown')).toEqual({ status: 503, code: 'backend_unavailable' });
      expect(Date.now() - started).toBeLessThan(5000);
      // the feed does not hang either: a refresh comes back (having failed) in bounded time
      const refreshed = Date.now();
      await gw.gateway.refresh();
      expect(Date.now() - refreshed).toBeLessThan(5000);
      expect((await get(second.secret)).status).toBe(200);
    } finally {
      pgOwned.thaw();
    }
    await until(async () => (await get('trk_thawed_unknown')).status === 401, 15_000, 50);
    await store.db.updateTable('credentials').set({ state: 'revoked' }).where('id', '=', second.id).execute();
    await f.change('credential', second.id, { applicationId: app.id }, 'credential.revoked');
    await until(async () => (await get(second.secret)).code === 'credentials_revoked', 15_000, 50);
    expect((await get(key)).status).toBe(200);
    await gw.close();
  });
});
