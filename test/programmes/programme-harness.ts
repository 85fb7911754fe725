/**
 * A whole Trellis for the programme tests: the control server as `trellis start` composes it (management API,
 * portal, console) and a gateway on the same store, a real upstream, one clock. The provider sets its programme
 * up through the management API as its article does; developers meet it through the portal and the gateway.
 */
import type { LightMyRequestResponse } from 'fastify';
import { createAdminToken } from '../../src/access/index.js';
import { adminApiModules, controlModules } from '../../src/cli/compose.js';
import { loadConfig } from '../../src/config/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { systemActor } from '../../src/events/index.js';
import { type Gateway, createGateway } from '../../src/gateway/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import type { DialectName } from '../../src/store/index.js';
import { type UsageRecord, UsageRecorder, type UsageSink } from '../../src/usage/index.js';
import { call, startUpstream, testConfig, until, type Reply, type Upstream } from '../gateway/fixtures.js';
import { WebAgent } from '../portal/web-agent.js';
import { type TestStore, freshStore } from '../support/stores.js';

/** Usage goes to a recorder the test flushes; the count tells when every call has been recorded. */
class CountingSink implements UsageSink {
  seen = 0;
  constructor(readonly recorder: UsageRecorder) {}
  record(r: UsageRecord): void {
    this.seen++;
    this.recorder.record(r);
  }
}

export interface Programme {
  store: TestStore;
  clock: ManualClock;
  control: ControlApp;
  gateway: Gateway;
  gatewayUrl: string;
  upstream: Upstream;
  /** The management API with a read-write admin token; throws on a status other than `expect` (2xx by default). */
  api<T = Record<string, unknown>>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    body?: unknown,
    expect?: number,
  ): Promise<T>;
  /** The raw answer of the management API; a string body is sent as it is, with `contentType`. */
  apiRaw(method: string, url: string, body?: unknown, contentType?: string): Promise<LightMyRequestResponse>;
  /** A call through the gateway, after it has read the changes made so far. */
  call(path: string, headers?: Record<string, string>, method?: string): Promise<Reply>;
  /** Writes the usage of every call made so far. */
  flushUsage(): Promise<void>;
  browser(): WebAgent;
  close(): Promise<void>;
}

export async function startProgramme(dialect: DialectName): Promise<Programme> {
  const store = await freshStore(dialect);
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const upstream = await startUpstream();
  const config = loadConfig({}, { databaseUrl: store.url, logLevel: 'silent' });
  const control = await buildControlApp(
    { config, store, clock },
    { adminApi: adminApiModules, modules: controlModules },
  );
  await control.ready();
  const token = await createAdminToken({ db: store.db, clock }, systemActor, {
    name: 'provider',
    scope: 'read_write',
  });
  const recorder = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
  const sink = new CountingSink(recorder);
  const gateway = createGateway({
    config: testConfig({ snapshotRefreshMs: 600_000 }),
    store,
    clock,
    usage: sink,
  });
  const address = await gateway.listen(0, '127.0.0.1');
  const gatewayUrl = `http://127.0.0.1:${address.port}`;
  let calls = 0;
  const apiRaw = (method: string, url: string, body?: unknown, contentType?: string) =>
    control.inject({
      method: method as 'GET',
      url: `/admin/api${url}`,
      headers: {
        authorization: `Bearer ${token.token}`,
        ...(body !== undefined ? { 'content-type': contentType ?? 'application/json' } : {}),
      },
      ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
  return {
    store,
    clock,
    control,
    gateway,
    gatewayUrl,
    upstream,
    apiRaw,
    async api<T>(
      method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
      url: string,
      body?: unknown,
      expect?: number,
    ) {
      const res = await apiRaw(method, url, body);
      const ok =
        expect === undefined ? res.statusCode >= 200 && res.statusCode < 300 : res.statusCode === expect;
      if (!ok) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body.slice(0, 500)}`);
      return (res.body ? res.json() : {}) as T;
    },
    async call(path, headers = {}, method = 'GET') {
      await gateway.refresh();
      calls++;
      return call(`${gatewayUrl}${path}`, { method, headers });
    },
    async flushUsage() {
      await until(() => sink.seen >= calls, 5000);
      await recorder.flush();
    },
    browser: () => new WebAgent(control),
    async close() {
      await gateway.close();
      await recorder.close();
      await control.close();
      await upstream.close();
      await store.cleanup();
    },
  };
}
