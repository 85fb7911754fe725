/**
 * A partner's Webhooks page in Debian's Chromium against a real Trellis (issue 9): add an endpoint choosing the
 * API's event type, copy the secret shown once, send a test event and read its attempt in the delivery log,
 * disable the endpoint; the API's events page and the signature page. Each page passes axe (WCAG AA, serious and
 * critical) and fits 390 px without horizontal scrolling.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createOutboundClient } from '../../src/outbound/index.js';
import { createWebhookWorker, declareEventType } from '../../src/webhooks/index.js';
import {
  type RealTrellis,
  accessibilityViolations,
  launchChromium,
  screenshot,
  startRealTrellis,
} from '../browser/browser-harness.js';

describe('webhooks in the portal, in a browser', () => {
  let t: RealTrellis;
  let browser: Browser;
  let partner: BrowserContext;
  let page: Page;
  let appId = '';

  beforeAll(async () => {
    t = await startRealTrellis();
    await declareEventType({ db: t.store.db, clock: systemClock }, systemActor, t.serviceId, {
      name: 'forecast.ready',
      description: 'A forecast you asked for is ready.',
      schema: { type: 'object', required: ['forecastId'], properties: { forecastId: { type: 'string' } } },
      example: { forecastId: 'fc_1' },
    });
    browser = await launchChromium();
    partner = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    await partner.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.controlUrl });
    page = await partner.newPage();
    await page.goto(`${t.controlUrl}/signup`);
    await page.getByLabel('Organization').fill('Hook Apps');
    await page.getByLabel('Your name').fill('Wendy Hook');
    await page.getByLabel('E-mail').fill('wendy@hooks.test');
    await page.getByLabel(/^Password/).fill('correct horse battery');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/apps\/new/);
    await page.getByLabel('Name').fill('Forecast hooks');
    await page.getByLabel(/Free/).check();
    await page.getByRole('button', { name: 'Create application' }).click();
    await page.waitForSelector('#new-secret');
    appId = /\/apps\/(app_[0-9a-z]+)\/usage/.exec(await page.content())?.[1] ?? '';
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('adds an endpoint, shows the secret once, sends a test event and shows its attempt', async () => {
    expect(appId).toMatch(/^app_/);
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.waitForURL(/\/webhooks$/);
    await page.getByLabel('URL (https)').fill('https://hooks.partner.invalid/trellis');
    await page.getByLabel(/forecast\.ready/).check();
    await page.getByRole('button', { name: 'Add the endpoint' }).click();
    await page.waitForSelector('[data-testid=webhook-secret]');
    const secret = await page.inputValue('[data-testid=webhook-secret]');
    expect(secret).toMatch(/^whsec_/);
    await page.locator('button[data-copy="#new-secret"]').click();
    await page.locator('button[data-copy="#new-secret"]', { hasText: 'Copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(secret);
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'webhooks-01-endpoint-added');

    await page.getByRole('button', { name: 'Send a test event' }).click();
    await page.waitForSelector('.notice');
    // the worker tries it; the name does not resolve, so the attempt fails and is logged with its error
    const outbound = createOutboundClient({ timeoutMs: 5000 });
    const worker = createWebhookWorker({
      db: t.store.db,
      clock: systemClock,
      sealer: createSealer('browser-test-secret'),
      sender: outbound,
    });
    await worker.tick();
    await outbound.close();
    await page.reload();
    const log = page.locator('[data-testid=delivery-log]');
    await log.waitFor();
    expect(await log.textContent()).toContain('webhook_endpoint.test');
    expect(await log.textContent()).toContain('no answer');
    expect(await page.content()).not.toContain(secret);
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'webhooks-02-delivery-log');

    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByText('The endpoint is disabled.').waitFor();
    expect(await page.locator('[data-testid=endpoints]').textContent()).toContain('disabled');
  }, 120_000);

  it("documents the API's events and signature checks; every page fits 390 px and passes axe", async () => {
    const narrow = await (await browser.newContext({ viewport: { width: 390, height: 800 } })).newPage();
    await narrow.context().addCookies(await partner.cookies());
    const wide: string[] = [];
    for (const path of [`/apps/${appId}/webhooks`, `/apis/${t.serviceId}/events`, '/docs/webhooks']) {
      await narrow.goto(`${t.controlUrl}${path}`);
      if (await narrow.evaluate('document.documentElement.scrollWidth > window.innerWidth + 1'))
        wide.push(path);
      expect(await accessibilityViolations(narrow), path).toEqual([]);
      await screenshot(narrow, `webhooks-390${path.replaceAll('/', '-')}`);
    }
    expect(wide).toEqual([]);
    await narrow.goto(`${t.controlUrl}/apis/${t.serviceId}`);
    await narrow.getByRole('link', { name: 'Events (webhooks)' }).click();
    await narrow.waitForURL(/\/events$/);
    expect(await narrow.textContent('main')).toContain('"forecastId": "fc_1"');
  }, 120_000);
});
