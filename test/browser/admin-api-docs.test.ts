/**
 * The management API reference printed at start (`/admin/api/docs`) renders in a browser: its assets load from
 * under `/admin/api/docs` (not `/docs`) and Swagger UI draws the operations of `/admin/api/openapi.json` (issue 13).
 */
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { consoleModule } from '../../src/console/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { portalModule } from '../../src/portal/index.js';
import { type TestStore, freshStore } from '../support/stores.js';
import { accessibilityViolations, launchChromium } from './browser-harness.js';

describe('management API reference in a browser', () => {
  let store: TestStore;
  let control: ControlApp;
  let browser: Browser;
  let url = '';

  beforeAll(async () => {
    store = await freshStore('sqlite');
    const config = loadConfig({}, { databaseUrl: store.url, logLevel: 'silent' });
    control = await buildControlApp(
      { config, store, clock: systemClock },
      { modules: [portalModule(), consoleModule()] },
    );
    await control.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(control.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await control?.close();
    await store?.cleanup();
  });

  for (const path of ['/admin/api/docs', '/admin/api/docs/']) {
    it(`draws the operations at ${path}, every asset found`, async () => {
      const page = await browser.newPage();
      const failed: string[] = [];
      page.on('response', (r) => {
        if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
      });
      const res = await page.goto(`${url}${path}`);
      expect(res?.status()).toBe(200);
      await page.locator('.opblock').first().waitFor({ timeout: 8_000 });
      expect(await page.locator('.opblock').count()).toBeGreaterThan(20);
      expect(await page.textContent('.swagger-ui .info .title')).toContain('Trellis management API');
      // the management API alone: no portal or console page among the operations
      const paths = await page.locator('.opblock-summary-path').allTextContents();
      expect(paths.some((p) => p.startsWith('/apps') || p.startsWith('/admin/services'))).toBe(false);
      expect(failed).toEqual([]);
      // WCAG AA: no serious or critical axe finding, with an operation open
      await page.locator('.opblock-summary-control').first().click();
      await page.locator('.opblock-body').first().waitFor();
      const found = (await accessibilityViolations(page)).map((v) => `${v.id}: ${v.targets.join(', ')}`);
      expect(found).toEqual([]);
      await page.close();
    }, 30_000);
  }
});
