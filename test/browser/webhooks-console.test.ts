/**
 * The console's Webhooks pages in Chromium against a real Trellis (issue 9): the provider reaches them from the
 * navigation, is refused a private address, adds an endpoint and copies its secret shown once, sends a test event
 * and reads its attempt in the delivery log; partners' endpoints are listed with their own log. Every page passes
 * axe (WCAG 2.1 A/AA, no serious or critical violation). The worker here resolves every host to a private address,
 * so each attempt is refused at send time (the SSRF guard) and logged, without leaving the machine.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, createApplication } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createOutboundClient } from '../../src/outbound/index.js';
import {
  createConsumerEndpoint,
  createWebhookWorker,
  declareEventType,
  publishEvent,
} from '../../src/webhooks/index.js';
import {
  type RealTrellis,
  accessibilityViolations,
  launchChromium,
  screenshot,
  startRealTrellis,
} from './browser-harness.js';

/** The elements of the page reaching past the viewport's right edge, to name them when a page is too wide. */
const overflowing = `[...document.querySelectorAll('main *')]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 5)
  .map((e) => e.tagName + '.' + e.className)
  .join(' ')`;

describe('the console’s webhooks pages in a browser', () => {
  let t: RealTrellis;
  let browser: Browser;
  let context: BrowserContext;
  let p: Page;
  const outbound = createOutboundClient({ resolve: async () => [{ address: '10.0.0.1', family: 4 }] });
  const found: string[] = [];
  let endpointPath = '';
  let partnerPath = '';

  const axe = async (name: string) => {
    for (const v of await accessibilityViolations(p)) found.push(`${name}: ${v.id} ${v.targets.join(', ')}`);
  };
  const tick = () =>
    createWebhookWorker({
      db: t.store.db,
      clock: systemClock,
      sealer: createSealer('browser-test-secret'),
      sender: outbound,
      options: { random: () => 0 },
    }).tick();

  beforeAll(async () => {
    t = await startRealTrellis();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    p = await context.newPage();
    // what the catalog made so far is fanned out before any endpoint exists
    await tick();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await outbound.close();
    await t?.close();
  });

  it('adds an endpoint from the Webhooks page: a private address refused, the secret shown once', async () => {
    await p.goto(`${t.controlUrl}/admin/login`);
    await p.getByLabel('E-mail').fill(t.admin.email);
    await p.getByLabel('Password').fill(t.admin.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.waitForURL(/\/admin$/);
    await p.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Webhooks' }).click();
    await p.waitForURL(/\/admin\/webhooks$/);
    expect(await p.textContent('[data-testid=queue]')).toContain('Messages pending');
    await axe('webhooks (empty)');

    await p.getByLabel('URL (https)').fill('http://127.0.0.1:9/hooks');
    // the event types are grouped by resource, each group folded until opened
    await p.locator('summary', { hasText: /^account \(/ }).click();
    await p.locator('input[name=eventTypes][value="account.created"]').check();
    await p.getByRole('button', { name: 'Add the endpoint' }).click();
    await p.locator('[role=alert]').waitFor();
    expect(await p.getAttribute('#wh-url', 'aria-invalid')).toBe('true');
    await axe('webhooks (refused)');

    await p.getByLabel('URL (https)').fill('https://crm.example.com/hooks');
    await p.locator('input[name=eventTypes][value="account.created"]').check();
    await p.getByRole('button', { name: 'Add the endpoint' }).click();
    await p.waitForURL(/\/admin\/webhooks\/whe_/);
    endpointPath = new URL(p.url()).pathname;
    const secret = await p.inputValue('#new-secret');
    expect(secret).toMatch(/^whsec_/);
    await screenshot(p, '60-console-webhook-secret');
    await axe('endpoint (secret)');
    await p.reload();
    expect(await p.locator('#new-secret').count()).toBe(0);
  });

  it('sends a test event and shows its attempt in the delivery log', async () => {
    await p.getByRole('button', { name: 'Send a test event' }).click();
    await p.waitForSelector('text=A test event is on its way');
    await tick();
    await p.reload();
    const log = p.locator('[data-testid=delivery-log] [data-message]');
    expect(await log.count()).toBe(1);
    expect(await log.first().textContent()).toContain('webhook_endpoint.test');
    expect(await log.first().locator('[data-attempt]').count()).toBe(1);
    await screenshot(p, '61-console-webhook-log');
    await axe('endpoint (log)');
  });

  it("lists partners' endpoints and shows one with its delivery log", async () => {
    const deps = { db: t.store.db, clock: systemClock };
    await declareEventType(deps, systemActor, t.serviceId, {
      name: 'forecast.ready',
      description: 'A forecast is ready.',
      schema: { type: 'object' },
      example: {},
    });
    const account = await createAccount(deps, systemActor, { name: 'Storm Watchers' });
    const app = await createApplication(deps, systemActor, {
      accountId: account.id,
      serviceId: t.serviceId,
      planId: t.plans.free,
      name: 'Storm alerts',
      environment: 'sandbox',
    });
    const endpoint = await createConsumerEndpoint(
      { ...deps, sealer: createSealer('browser-test-secret'), allowHosts: [] },
      systemActor,
      app.id,
      { url: 'https://hooks.storm.example/in', eventTypes: ['forecast.ready'] },
    );
    await publishEvent(deps, { type: 'forecast.ready', applicationId: app.id, payload: { at: 'noon' } });
    await tick();

    await p.goto(`${t.controlUrl}/admin/webhooks`);
    await p.getByRole('link', { name: "Partners' endpoints" }).click();
    await p.waitForURL(/\/admin\/webhooks\/partners$/);
    const row = p.locator(`[data-endpoint="${endpoint.id}"]`);
    expect(await row.textContent()).toContain('Storm Watchers');
    await axe('partners');
    await row.getByRole('link', { name: 'https://hooks.storm.example/in' }).click();
    await p.waitForURL(new RegExp(`/admin/webhooks/partners/${app.id}/${endpoint.id}$`));
    expect(await p.locator('[data-testid=delivery-log] [data-attempt]').count()).toBe(1);
    await p.getByRole('button', { name: 'Disable' }).click();
    await p.waitForSelector('text=The endpoint is disabled');
    expect(await p.textContent('[data-testid=endpoint-state]')).toBe('disabled');
    await screenshot(p, '62-console-partner-webhook');
    await axe('partner endpoint');

    expect(found).toEqual([]);
    expect(endpointPath).toMatch(/^\/admin\/webhooks\/whe_/);
    partnerPath = new URL(p.url()).pathname;
  });

  it('passes axe in dark mode and fits 390 px without horizontal scrolling', async () => {
    const state = await context.storageState();
    const wide: string[] = [];
    for (const scheme of ['light', 'dark'] as const) {
      const narrow = await browser.newContext({
        viewport: { width: 390, height: 844 },
        colorScheme: scheme,
        storageState: state,
      });
      p = await narrow.newPage();
      for (const path of ['/admin/webhooks', endpointPath, '/admin/webhooks/partners', partnerPath]) {
        await p.goto(`${t.controlUrl}${path}`);
        expect(new URL(p.url()).pathname).toBe(path);
        if (await p.evaluate('document.documentElement.scrollWidth > window.innerWidth + 1'))
          wide.push(`${scheme} ${path}: ${await p.evaluate(overflowing)}`);
        if (scheme === 'dark') await axe(`${path} (dark)`);
      }
      await screenshot(p, `63-console-partner-webhook-${scheme}-390`);
      await narrow.close();
    }
    expect(wide).toEqual([]);
    expect(found).toEqual([]);
  });
});
