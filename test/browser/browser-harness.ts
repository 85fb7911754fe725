/**
 * A real Trellis for browser tests: a tiny upstream API, the gateway (checking OAuth tokens too) and the control
 * server (portal, console and the OAuth server) on free ports, sharing one store; two APIs — one with keys, one
 * in `oauth2` mode; and Debian's Chromium driven by playwright-core.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, type Page, type Response, chromium } from 'playwright-core';
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
    upstreamSandbox: upstreamUrl,
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
    upstreamSandbox: upstreamUrl,
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
    usageCompactMs: 100,
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

/**
 * Opens the docs page (`openDocs` navigates and signs the page in, as a developer would), opens the first operation of
 * its Swagger UI, clicks Execute and answers the relayed call's response. The page marks itself `data-ready` once
 * Swagger UI has resolved every operation, and the operation's Execute is clicked only after that: clicked while the
 * operation resolves, it sends nothing and stays disabled (swagger-api/swagger-ui#3146). Should a click still send
 * nothing within 10 s, the page is opened afresh (a reload is the only way out of that state), at most three times;
 * the error then names what the page logged. A request that left is never repeated.
 */
export async function executeTryIt(
  page: Page,
  urlPart: string,
  openDocs: () => Promise<void>,
): Promise<{ response: Response; attempts: number }> {
  const logged: string[] = [];
  const onConsole = (m: { type(): string; text(): string }) => {
    if (m.type() === 'error' || m.type() === 'warning') logged.push(`${m.type()}: ${m.text()}`);
  };
  const onError = (e: Error) => logged.push(`page error: ${e.message}`);
  page.on('console', onConsole);
  page.on('pageerror', onError);
  try {
    for (let attempt = 1; ; attempt++) {
      await openDocs();
      await page.locator('#docs[data-ready=true]').waitFor({ state: 'attached' });
      await page.locator('.opblock-summary-control').first().click();
      const sent = page
        .waitForRequest((r) => r.url().includes(urlPart), { timeout: 10_000 })
        .catch(() => null);
      const clicked = await page
        .locator('.execute')
        .click({ timeout: 10_000 })
        .then(() => true)
        .catch(() => false);
      const request = clicked ? await sent : null;
      if (request !== null) {
        const response = await request.response();
        if (response === null) throw new Error(`no response to ${request.url()}`);
        return { response, attempts: attempt };
      }
      logged.push(
        `attempt ${attempt}: ${clicked ? 'Execute sent no request' : 'Execute could not be clicked'}`,
      );
      if (attempt >= 3) throw new Error(`Execute sent nothing to ${urlPart}:\n${logged.join('\n')}`);
    }
  } finally {
    page.off('console', onConsole);
    page.off('pageerror', onError);
  }
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
