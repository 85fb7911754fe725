/** A control app on a real store, with a read-write and a read-only admin token, for management API tests. */
import type { LightMyRequestResponse, RouteOptions } from 'fastify';
import { createAdminToken } from '../../src/access/index.js';
import { adminApiModules, controlModules } from '../../src/cli/compose.js';
import { loadConfig } from '../../src/config/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { systemActor } from '../../src/events/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import type { DialectName } from '../../src/store/index.js';
import { type TestStore, freshStore } from './stores.js';

export interface ControlHarness {
  app: ControlApp;
  store: TestStore;
  clock: ManualClock;
  writeToken: string;
  readToken: string;
  /** A JSON request with the read-write token (override `token` to use another, `null` for none). */
  call(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    body?: unknown,
    token?: string | null,
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function startControl(dialect: DialectName): Promise<ControlHarness> {
  const store = await freshStore(dialect);
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const config = loadConfig({}, { databaseUrl: store.url, bodyLimit: 64 * 1024 });
  const deps = { db: store.db, clock };
  const write = await createAdminToken(deps, systemActor, { name: 'tests rw', scope: 'read_write' });
  const read = await createAdminToken(deps, systemActor, { name: 'tests ro', scope: 'read' });
  // the management API as `trellis start` composes it, so every route (OAuth's too) is under test
  const app = await buildControlApp({ config, store, clock }, { adminApi: adminApiModules });
  await app.ready();
  return {
    app,
    store,
    clock,
    writeToken: write.token,
    readToken: read.token,
    call: (method, url, body, token = write.token) =>
      app.inject({
        method,
        url,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      }),
    close: async () => {
      await app.close();
      await store.cleanup();
    },
  };
}

/** The whole control server as `trellis start` composes it (management API, portal, console, OAuth) on SQLite. */
export interface ComposedControl {
  app: ControlApp;
  store: TestStore;
  /** Every route the server registered, in order. */
  registered: RouteOptions[];
  close(): Promise<void>;
}

export async function startComposedControl(): Promise<ComposedControl> {
  const store = await freshStore('sqlite');
  const registered: RouteOptions[] = [];
  const config = loadConfig({}, { databaseUrl: store.url, logLevel: 'silent' });
  const app = await buildControlApp(
    { config, store, clock: new ManualClock(Date.UTC(2026, 5, 1, 12)) },
    { adminApi: adminApiModules, modules: controlModules, onRoute: (r) => registered.push(r) },
  );
  await app.ready();
  return {
    app,
    store,
    registered,
    close: async () => {
      await app.close();
      await store.cleanup();
    },
  };
}
