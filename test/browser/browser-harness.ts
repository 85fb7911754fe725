/**
 * A real Trellis for browser tests: a tiny upstream API, the gateway and the control server (portal and
 * console) on ports chosen by the system, sharing one store; and Debian's Chromium driven by playwright-core.
 */
import { mkdirSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, type Page, chromium } from 'playwright-core';
import { createAdminUser } from '../../src/access/index.js';
import { createPlan, createService, importOpenapi } from '../../src/catalog/index.js';
import { loadConfig } from '../../src/config/index.js';
import { consoleModule } from '../../src/console/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { systemActor } from '../../src/events/index.js';
import { type Gateway, createGateway } from '../../src/gateway/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { portalModule } from '../../src/portal/index.js';
import { type TestStore, freshStore } from '../support/stores.js';

export const chromiumPath = process.env.TRELLIS_CHROMIUM ?? '/usr/bin/chromium';
export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const screenshotDir = 'test-results/screenshots';

export interface RealTrellis {
  store: TestStore;
  control: ControlApp;
  gateway: Gateway;
  controlUrl: string;
  gatewayUrl: string;
  serviceId: string;
  plans: { free: string; pro: string; secret: string };
  admin: { email: string; password: string };
  close(): Promise<void>;
}

/** The upstream API behind the gateway: answers every call with what it saw. */
function startUpstream(): Promise<Server> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ forecast: 'sunny', path: req.url }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

export async function startRealTrellis(): Promise<RealTrellis> {
  const store = await freshStore('sqlite');
  const upstream = await startUpstream();
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const deps = { db: store.db, clock: systemClock };
  const service = await createService(deps, systemActor, {
    name: 'Weather',
    systemName: 'weather',
    description: 'Forecasts for anywhere.',
    upstreamProduction: upstreamUrl,
  });
  await importOpenapi(deps, systemActor, service.id, {
    openapi: '3.0.3',
    info: { title: 'Weather', version: '1' },
    paths: {
      '/forecast': {
        get: {
          operationId: 'forecast',
          summary: 'Get the forecast',
          responses: { '200': { description: 'the forecast' } },
        },
      },
    },
  });
  const free = await createPlan(deps, systemActor, service.id, { name: 'Free', systemName: 'free' });
  const pro = await createPlan(deps, systemActor, service.id, {
    name: 'Pro',
    systemName: 'pro',
    approvalRequired: true,
  });
  const secret = await createPlan(deps, systemActor, service.id, {
    name: 'Partner Secret',
    systemName: 'partner_secret',
    state: 'hidden',
  });
  const admin = { email: 'admin@provider.test', password: 'console-password-1' };
  await createAdminUser(deps, systemActor, { ...admin, name: 'Ada Admin' });

  const base = {
    databaseUrl: store.url,
    logLevel: 'silent' as const,
    usageFlushMs: 100,
    snapshotRefreshMs: 100,
  };
  const gateway = createGateway({ config: loadConfig({}, base), store, clock: systemClock });
  const gatewayUrl = `http://127.0.0.1:${(await gateway.listen(0, '127.0.0.1')).port}`;
  const config = loadConfig({}, { ...base, gatewayPublicUrl: gatewayUrl });
  const control = await buildControlApp(
    { config, store, clock: systemClock },
    { modules: [portalModule(), consoleModule()] },
  );
  await control.listen({ port: 0, host: '127.0.0.1' });
  const controlUrl = `http://127.0.0.1:${(control.server.address() as AddressInfo).port}`;
  return {
    store,
    control,
    gateway,
    controlUrl,
    gatewayUrl,
    serviceId: service.id,
    plans: { free: free.id, pro: pro.id, secret: secret.id },
    admin,
    close: async () => {
      await control.close();
      await gateway.close();
      await new Promise<void>((r) => upstream.close(() => r()));
      await store.cleanup();
    },
  };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
}

/** Keeps a full-page screenshot as a test artifact. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: `${screenshotDir}/${name}.png`, fullPage: true });
}
