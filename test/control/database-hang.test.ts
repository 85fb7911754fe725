/**
 * The management API, the portal and the console when PostgreSQL hangs or is stopped (outage probe, defects 1
 * and 2). Hanging (every server process stopped with SIGSTOP): a request whose query was sent answers 503
 * `database_unavailable` within the store's query bound instead of waiting for the server, and once the server
 * answers again the pool serves from fresh connections. Stopped: a browser gets a 503 page saying the service is
 * temporarily unavailable (not the 500 page, not a JSON body); a script gets the JSON error body.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../src/access/index.js';
import { loadConfig } from '../../src/config/index.js';
import { consoleModule } from '../../src/console/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { portalModule } from '../../src/portal/index.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/index.js';
import { type OwnedPostgres, startOwnedPostgres } from '../support/owned-postgres.js';
import { WebAgent } from '../portal/web-agent.js';

/** The store's bound on one query here (the default is 10 s). */
const QUERY_BOUND_MS = 1000;
/** A new connection, or a wait for a pooled one, gives up after 5 s (`connectionTimeoutMillis`). */
const CONNECT_BOUND_MS = 5000;
const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

describe('the control server while PostgreSQL hangs or is stopped', () => {
  let pgOwned: OwnedPostgres;
  let store: Store;
  let control: ControlApp;
  let token: string;
  const storeWarnings: string[] = [];

  beforeAll(async () => {
    pgOwned = await startOwnedPostgres();
    store = openStore(pgOwned.url, {
      poolSize: 4,
      queryTimeoutMs: QUERY_BOUND_MS,
      logger: { warn: (_data, message) => storeWarnings.push(String(message)) },
    });
    await migrateToLatest(store.db);
    const config = loadConfig({}, { databaseUrl: pgOwned.url, logLevel: 'silent' });
    token = (
      await createAdminToken({ db: store.db, clock: systemClock }, systemActor, {
        name: 'hang',
        scope: 'read',
      })
    ).token;
    control = await buildControlApp(
      { config, store, clock: systemClock },
      { modules: [portalModule(), consoleModule()] },
    );
    await control.ready();
  }, 60_000);
  afterAll(async () => {
    pgOwned?.thaw();
    await control?.close();
    await store?.destroy();
    await pgOwned?.destroy();
  });

  const services = () =>
    control.inject({
      method: 'GET',
      url: '/admin/api/services',
      headers: { authorization: `Bearer ${token}` },
    });
  const timed = async (work: Promise<LightMyRequestResponse>) => {
    const started = Date.now();
    const res = await work;
    return { res, ms: Date.now() - started };
  };
  const isPage = (res: LightMyRequestResponse) =>
    String(res.headers['content-type'] ?? '').startsWith('text/html');

  it('answers 503 database_unavailable within the bound while PostgreSQL hangs, and 200 once it answers', {
    timeout: 30_000,
  }, async () => {
    // several pooled connections, idle and open when the server freezes
    for (const res of await Promise.all([services(), services(), services(), services()]))
      expect(res.statusCode).toBe(200);
    expect((await control.inject({ method: 'GET', url: '/', headers: browser })).statusCode).toBe(200);

    pgOwned.freeze();
    // whatever happens below, the server goes on after 8 s (on unbounded code the requests wait until then)
    const thawLater = setTimeout(() => pgOwned.thaw(), 8000);
    try {
      const api = await timed(services());
      expect(api.res.statusCode, api.res.body).toBe(503);
      expect(api.res.json().error.code).toBe('database_unavailable');
      expect(api.ms).toBeLessThan(QUERY_BOUND_MS + 1500);

      // a portal page: its handler's query fails the same way; a page for the browser, 503 (not 500)
      const page = await timed(control.inject({ method: 'GET', url: '/', headers: browser }));
      expect(page.res.statusCode, page.res.body.slice(0, 300)).toBe(503);
      expect(isPage(page.res)).toBe(true);
      expect(page.res.body).toContain('database_unavailable');
      expect(page.ms).toBeLessThan(CONNECT_BOUND_MS + 1500);
      expect(storeWarnings.some((w) => w.includes('got no answer'))).toBe(true);
    } finally {
      clearTimeout(thawLater);
      pgOwned.thaw();
    }

    // the pool recovered: timed-out connections were dropped, new ones answer
    const deadline = Date.now() + 5000;
    let last = await services();
    while (last.statusCode !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      last = await services();
    }
    expect(last.statusCode).toBe(200);
    const again = await timed(
      Promise.all([services(), services(), services(), services()]).then((all) => all[3]!),
    );
    expect(again.res.statusCode).toBe(200);
    expect(again.ms).toBeLessThan(1000);
    expect((await control.inject({ method: 'GET', url: '/', headers: browser })).statusCode).toBe(200);
  });

  it('answers a browser with a 503 page and a script with the JSON body while PostgreSQL is stopped', {
    timeout: 60_000,
  }, async () => {
    const admin = new WebAgent(control);
    expect((await admin.get('/admin/login', browser)).statusCode).toBe(200);
    await pgOwned.stop();
    try {
      const page = await control.inject({ method: 'GET', url: '/', headers: browser });
      expect(page.statusCode, page.body.slice(0, 300)).toBe(503);
      expect(isPage(page)).toBe(true);
      expect(page.body).toContain('temporarily unavailable');
      expect(page.body).toContain('<code>database_unavailable</code>');
      expect(page.body).toContain(`<code>${String(page.headers['x-request-id'])}</code>`);
      // nothing of the failure itself
      expect(page.body).not.toMatch(/ECONNREFUSED|connect|127\.0\.0\.1|stack|Error/i);

      const script = await control.inject({ method: 'GET', url: '/', headers: { accept: '*/*' } });
      expect(script.statusCode).toBe(503);
      expect(script.json().error.code).toBe('database_unavailable');

      // the console: signing in needs the database; the page says so (the 500 page before)
      const signIn = await admin.post(
        '/admin/login',
        { email: 'admin@example.test', password: 'x' },
        {
          headers: browser,
        },
      );
      expect(signIn.statusCode, signIn.body.slice(0, 300)).toBe(503);
      expect(isPage(signIn)).toBe(true);
      expect(signIn.body).toContain('<code>database_unavailable</code>');
      expect(signIn.body).toContain('href="/admin/assets/portal.css"');
    } finally {
      await pgOwned.start();
    }
    const deadline = Date.now() + 10_000;
    let back = await control.inject({ method: 'GET', url: '/', headers: browser });
    while (back.statusCode !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      back = await control.inject({ method: 'GET', url: '/', headers: browser });
    }
    expect(back.statusCode).toBe(200);
  });
});
