/**
 * A real Trellis for browser tests: a tiny upstream API, the gateway (checking OAuth tokens too) and the control
 * server (portal, console and the OAuth server) on free ports, sharing one store; two APIs — one with keys, one
 * in `oauth2` mode; and Debian's Chromium driven by playwright-core.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
import { OAuthTokenVerifier, oauthControlModule } from '../../src/oauth/index.js';
import { portalModule } from '../../src/portal/index.js';
import { freePort } from '../oauth/harness.js';
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
  /** The API in `oauth2` mode: clients get tokens at /oauth/token. */
  oauthServiceId: string;
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
  const ledger = await createService(deps, systemActor, {
    name: 'Ledger',
    systemName: 'ledger',
    description: 'Balances, by OAuth 2.0 client credentials.',
    upstreamProduction: upstreamUrl,
    authMode: 'oauth2',
  });
  await importOpenapi(deps, systemActor, ledger.id, {
    openapi: '3.0.3',
    info: { title: 'Ledger', version: '1' },
    paths: {
      '/balance': {
        get: {
          operationId: 'balance',
          summary: 'Get the balance',
          responses: { '200': { description: 'the balance' } },
        },
      },
    },
  });
  await createPlan(deps, systemActor, ledger.id, { name: 'Ledger Basic', systemName: 'basic' });
  const admin = { email: 'admin@provider.test', password: 'console-password-1' };
  await createAdminUser(deps, systemActor, { ...admin, name: 'Ada Admin' });

  const base = {
    databaseUrl: store.url,
    logLevel: 'silent' as const,
    usageFlushMs: 100,
    snapshotRefreshMs: 100,
  };
  // Both addresses are known first: the control server's is the OAuth issuer, the gateway's the try-it target.
  const [gatewayPort, controlPort] = [await freePort(), await freePort()];
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const controlUrl = `http://127.0.0.1:${controlPort}`;
  const config = loadConfig(
    {},
    { ...base, gatewayPublicUrl: gatewayUrl, publicUrl: controlUrl, oauthKeySecret: 'browser-test-secret' },
  );
  const control = await buildControlApp(
    { config, store, clock: systemClock },
    { modules: [portalModule(), consoleModule(), oauthControlModule({ counterFlushMs: 200 })] },
  );
  await control.listen({ port: controlPort, host: '127.0.0.1' });
  // the signing keys exist once the OAuth module is mounted
  const tokenVerifier = await OAuthTokenVerifier.create({
    db: store.db,
    clock: systemClock,
    issuer: `${controlUrl}/oauth`,
  });
  const gateway = createGateway({ config, store, clock: systemClock, tokenVerifier });
  await gateway.listen(gatewayPort, '127.0.0.1');
  return {
    store,
    control,
    gateway,
    controlUrl,
    gatewayUrl,
    serviceId: service.id,
    plans: { free: free.id, pro: pro.id, secret: secret.id },
    oauthServiceId: ledger.id,
    admin,
    close: async () => {
      await control.close();
      await gateway.close();
      tokenVerifier.close();
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

/** axe-core, read from node_modules and evaluated in the page (no CDN; page scripts stay under the CSP). */
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface A11yViolation {
  id: string;
  impact: string;
  help: string;
  targets: string[];
}

/**
 * The serious and critical accessibility violations axe-core finds on the page as it is (WCAG 2.x A and AA
 * rules). `exclude` leaves out third-party widgets whose markup is not ours (selectors).
 */
export async function accessibilityViolations(page: Page, exclude: string[] = []): Promise<A11yViolation[]> {
  await page.evaluate(axeSource);
  const options = JSON.stringify({
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
  });
  const context = JSON.stringify({ include: [['html']], exclude: exclude.map((s) => [s]) });
  const found = (await page.evaluate(`(async () => {
    const result = await window.axe.run(${context}, ${options});
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact || '',
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
    }));
  })()`)) as A11yViolation[];
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
