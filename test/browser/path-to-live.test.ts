/**
 * The path to live in Debian's Chromium against a real Trellis (issue 11): sandbox key → first call reaches the
 * sandbox → a certification run started in the portal → a screenshot (a real PNG) uploaded as the evidence of the
 * plan's manual item → the provider reviews it in the console, and the acceptance passes the run → go-live
 * requested in the portal → approved in one click in the console → production key shown once → a call with it
 * reaches the production upstream, and the sandbox key still never does.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateService } from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { putCertificationPlan } from '../../src/golive/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { startUpstream, type Upstream, until } from '../gateway/fixtures.js';
import {
  type RealTrellis,
  accessibilityViolations,
  launchChromium,
  screenshot,
  screenshotDir,
  startRealTrellis,
} from './browser-harness.js';

describe('the path to live in a browser', () => {
  let t: RealTrellis;
  let sandbox: Upstream;
  let browser: Browser;
  let page: Page;
  let admin: Page;
  let appId = '';
  let sandboxKey = '';
  let productionKey = '';

  /** A call through the gateway: status and body. */
  async function callApi(key: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${t.gatewayUrl}/weather/forecast`, { headers: { 'X-API-Key': key } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  beforeAll(async () => {
    t = await startRealTrellis();
    sandbox = await startUpstream('sandbox');
    // the harness's upstream answers {forecast}: it is production; the sandbox answers {upstream: 'sandbox'}
    await updateService({ db: t.store.db, clock: systemClock }, systemActor, t.serviceId, {
      upstreamSandbox: sandbox.url,
    });
    // the provider's certification plan: one manual item, reviewed in the console
    await putCertificationPlan({ db: t.store.db, clock: systemClock }, systemActor, t.serviceId, {
      checks: [],
      manualItems: [
        {
          key: 'logo',
          title: 'Our logo in your checkout',
          description: 'A screenshot of your checkout page with the Weather logo.',
          required: true,
        },
      ],
      minCalls: 0,
    });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await sandbox?.close();
    await t?.close();
  });

  it('a partner signs up, gets a sandbox key, and the first call reaches the sandbox', async () => {
    await page.goto(`${t.controlUrl}/signup`);
    await page.getByLabel('Organization').fill('Shop Co');
    await page.getByLabel('Your name').fill('Sam Shop');
    await page.getByLabel('E-mail').fill('sam@shop.test');
    await page.getByLabel(/^Password/).fill('correct horse battery');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/apps\/new/);
    await page.getByLabel('Name').fill('Checkout');
    await page.getByLabel(/Free/).check();
    await page.getByRole('button', { name: 'Create application' }).click();
    await page.waitForSelector('#new-secret');
    sandboxKey = await page.inputValue('#new-secret');
    appId = /\/apps\/(app_[0-9a-z]+)\/usage/.exec(await page.content())?.[1] ?? '';
    expect(appId).toMatch(/^app_/);
    let last = { status: 0, body: {} as Record<string, unknown> };
    await until(async () => {
      last = await callApi(sandboxKey);
      return last.body.upstream === 'sandbox';
    }, 5000);
    expect([last.status, last.body.upstream]).toEqual([200, 'sandbox']);
  });

  it('the partner runs certification and uploads a screenshot; the provider accepts it and the run passes', async () => {
    await page.goto(`${t.controlUrl}/apps/${appId}`);
    await page.getByTestId('certification-link').click();
    expect(await page.textContent('[data-testid=plan]')).toContain('Our logo in your checkout');
    await page.getByRole('button', { name: 'Start certification' }).click();
    await page.getByText('Your certification run started').waitFor();
    // a real screenshot: the partner's own page, as a PNG
    const shot = await page.screenshot({ type: 'png' });
    const file = `${screenshotDir}/23-checkout-evidence.png`;
    mkdirSync(screenshotDir, { recursive: true });
    writeFileSync(file, shot);
    // a text file named like a picture, and a picture over the 2 MB limit, are refused beside the form
    const renamed = `${screenshotDir}/not-an-image.png`;
    writeFileSync(renamed, 'I am a text file wearing a .png name\n');
    await page.getByLabel(/Our logo in your checkout/).setInputFiles(renamed);
    const refused = page.waitForResponse((r) => r.url().endsWith('/certification/evidence'));
    await page.getByRole('button', { name: 'Upload' }).click();
    expect((await refused).status()).toBe(415);
    await page.getByText('The file is not a PNG, JPEG, WebP or GIF image').waitFor();
    const huge = `${screenshotDir}/huge.png`;
    writeFileSync(huge, Buffer.concat([shot, Buffer.alloc(2 * 1_048_576)]));
    await page.getByLabel(/Our logo in your checkout/).setInputFiles(huge);
    const tooLarge = page.waitForResponse((r) => r.url().endsWith('/certification/evidence'));
    await page.getByRole('button', { name: 'Upload' }).click();
    expect((await tooLarge).status()).toBe(413);
    await page.getByText('The image is larger than 2 MB').waitFor();
    await page.getByLabel(/Our logo in your checkout/).setInputFiles(file);
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByText('Your image was uploaded').waitFor();
    expect(await page.textContent('[data-testid=item-state-logo]')).toBe('waiting for review');
    // the image is served back to the partner, as stored
    const src = await page.getAttribute('[data-testid=item-logo] img', 'src');
    const served = await page.evaluate(async (url) => {
      const r = await fetch(url!);
      return { type: r.headers.get('content-type'), size: (await r.arrayBuffer()).byteLength };
    }, src);
    expect(served).toEqual({ type: 'image/png', size: shot.length });
    await screenshot(page, '23-certification-uploaded');
    expect(await accessibilityViolations(page)).toEqual([]);

    admin = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await admin.goto(`${t.controlUrl}/admin/login`);
    await admin.getByLabel('E-mail').fill(t.admin.email);
    await admin.getByLabel('Password').fill(t.admin.password);
    await admin.getByRole('button', { name: 'Sign in' }).click();
    await admin.waitForURL(/\/admin$/);
    // the plan the partner read, in the console's editor
    await admin.goto(`${t.controlUrl}/admin/services/${t.serviceId}`);
    await admin.getByTestId('certification-plan-link').click();
    expect(await admin.inputValue('[name=item_0_title]')).toBe('Our logo in your checkout');
    expect(await accessibilityViolations(admin)).toEqual([]);
    await screenshot(admin, '24-certification-plan-console');
    await admin.getByRole('link', { name: 'Go-live' }).click();
    const running = admin.getByTestId('running-run');
    await running.getByTestId('review-logo').waitFor();
    // the browser decoded the stored image (naturalWidth is 0 for a broken one)
    const width = await running.locator('img').evaluate((img) => {
      const image = img as unknown as { complete: boolean; naturalWidth: number };
      return image.complete ? image.naturalWidth : 0;
    });
    expect(width).toBeGreaterThan(0);
    await screenshot(admin, '25-certification-review-console');
    expect(await accessibilityViolations(admin)).toEqual([]);
    await running.getByLabel('Comment for the partner').fill('Logo shown right.');
    await running.getByRole('button', { name: 'Accept' }).click();
    await admin.waitForURL(/\/admin\/golive/);
    expect(await admin.getByTestId('running-run').count()).toBe(0);

    await page.reload();
    expect(await page.textContent('[data-testid=run-state]')).toBe('passed');
    expect(await page.textContent('[data-testid=review-logo]')).toContain('Logo shown right.');
    await screenshot(page, '26-certification-passed');
    // the same card on the console's application page
    await admin.goto(`${t.controlUrl}/admin/applications/${appId}`);
    expect(await admin.textContent('[data-testid=certification] [data-testid=run-state]')).toBe('passed');
    await screenshot(admin, '27-certification-application-console');
    expect(await accessibilityViolations(admin)).toEqual([]);
  });

  it('the partner requests go-live; the provider approves in one click', async () => {
    await page.goto(`${t.controlUrl}/apps/${appId}`);
    await page.getByTestId('golive-link').click();
    await page.getByLabel(/Note for the provider/).fill('Checkout is ready');
    await page.getByRole('button', { name: 'Request go-live' }).click();
    await page.getByText('the provider reviews it').first().waitFor();
    await screenshot(page, '20-golive-requested');
    expect(await accessibilityViolations(page)).toEqual([]);

    await admin.goto(`${t.controlUrl}/admin/golive`);
    expect(await admin.textContent('main')).toContain('Checkout is ready');
    // the report card of the passed run sits beside the request
    expect(await admin.textContent('[data-testid=golive-request] [data-testid=run-state]')).toBe('passed');
    expect(await accessibilityViolations(admin)).toEqual([]);
    await admin.getByRole('button', { name: 'Approve' }).click();
    await admin.waitForURL(/state=approved/);
    await screenshot(admin, '21-golive-approved-console');
  });

  it('the production key is shown once and reaches production; the sandbox key does not', async () => {
    await page.goto(`${t.controlUrl}/apps/${appId}/golive`);
    await page.getByRole('button', { name: /Show my production key/ }).click();
    await page.getByTestId('production-secret').waitFor();
    productionKey = await page.inputValue('[data-testid=production-secret]');
    expect(productionKey).toMatch(/^trk_/);
    await screenshot(page, '22-golive-production-key');
    await page.reload();
    expect(await page.content()).not.toContain(productionKey);
    expect(await page.getByRole('button', { name: /Show my production key/ }).count()).toBe(0);

    const prod = await callApi(productionKey);
    expect([prod.status, prod.body.forecast]).toEqual([200, 'sunny']);
    const sb = await callApi(sandboxKey);
    expect([sb.status, sb.body.upstream, sb.body.forecast]).toEqual([200, 'sandbox', undefined]);
  });
});
