/**
 * Issue 13's measure of the partner's path, in Chromium against a real Trellis: from the portal's front page to a
 * 200 from the gateway with a snippet copied from the application page and run outside the browser, in at most
 * 8 actions (clicks and fills). The copied curl is run by a shell; the JavaScript snippet by Node.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type RealTrellis,
  accessibilityViolations,
  launchChromium,
  screenshot,
  startRealTrellis,
} from './browser-harness.js';

const run = promisify(execFile);

describe('a new partner’s first call', () => {
  let t: RealTrellis;
  let browser: Browser;
  let page: Page;
  let actions = 0;
  const pagesSeen: string[] = [];

  /** Counts what the partner does: each click or fill is one action. */
  const act = async (what: Promise<unknown>) => {
    actions++;
    await what;
  };

  beforeAll(async () => {
    t = await startRealTrellis();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.controlUrl });
    page = await context.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('goes from the front page to a 200 with a copied snippet in at most 8 actions', async () => {
    await page.goto(`${t.controlUrl}/`);
    await act(page.getByRole('link', { name: 'Get a key for Weather' }).click());
    await page.waitForURL(/\/signup\?next=/);
    pagesSeen.push(page.url());
    await act(page.getByLabel('Organization').fill('Quick Start Ltd'));
    await act(page.getByLabel('Your name').fill('Quinn Quick'));
    await act(page.getByLabel('E-mail').fill('quinn@quick.test'));
    await act(page.getByLabel(/^Password/).fill('correct horse battery'));
    await act(page.getByRole('button', { name: 'Create account' }).click());
    // back to the API the visitor chose, on the first-run page: filled in, one click from a key
    await page.waitForURL(new RegExp(`/apps/new\\?service=${t.serviceId}`));
    pagesSeen.push(page.url());
    expect(await page.textContent('h1')).toBe('Your first key');
    await screenshot(page, '20-first-run');
    await act(page.getByRole('button', { name: 'Create application' }).click());
    await page.waitForSelector('#new-secret');
    pagesSeen.push(page.url());
    const key = await page.inputValue('#new-secret');
    expect(key).toMatch(/^trk_/);
    await screenshot(page, '21-first-key-and-snippets');
    const copy = page
      .locator('.snippet', { has: page.locator('#snippet-curl') })
      .getByRole('button', { name: 'Copy' });
    await act(copy.click());
    const curl = String(await page.evaluate('navigator.clipboard.readText()'));
    expect(actions).toBeLessThanOrEqual(8);

    // the copied snippet, run for real outside the browser
    expect(curl).toContain(t.gatewayUrl);
    expect(curl).toContain(key);
    const { stdout } = await run('sh', ['-c', `${curl} -w '\\n%{http_code}'`], { timeout: 15_000 });
    const [body, status] = stdout.trim().split('\n');
    expect(status).toBe('200');
    expect(JSON.parse(body ?? '')).toEqual({ forecast: 'sunny', path: '/forecast' });

    // … and so does the JavaScript one, with Node's fetch
    const javascript = (await page.textContent('#snippet-javascript')) ?? '';
    const dir = mkdtempSync(join(tmpdir(), 'trellis-snippet-'));
    writeFileSync(join(dir, 'call.mjs'), javascript);
    const js = await run(process.execPath, [join(dir, 'call.mjs')], { timeout: 15_000 });
    expect(js.stdout).toMatch(/^200 \{"forecast":"sunny"/);

    // a reload shows the key no more, and the snippets carry a placeholder with a note
    await page.reload();
    expect(await page.locator('#new-secret').count()).toBe(0);
    expect(await page.textContent('#snippet-curl')).toContain('YOUR_KEY');
  }, 60_000);

  it('tells a call without a key which header it expected', async () => {
    const res = await fetch(`${t.gatewayUrl}/weather/forecast`);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { message: string; details: unknown } };
    expect(body.error.message).toContain('X-API-Key header');
    expect(body.error.details).toEqual({ expected: [{ in: 'header', name: 'X-API-Key' }] });
  });

  it('fits 390 px without horizontal scrolling, with screenshots at 1280 and 390 px', async () => {
    const state = await page.context().storageState();
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      storageState: state,
    });
    const p = await phone.newPage();
    const wide: string[] = [];
    const pages: [string, string][] = [
      ['front', `${t.controlUrl}/`],
      ['api', `${t.controlUrl}/apis/${t.serviceId}`],
      ['application', pagesSeen[2] ?? ''],
      ['docs', `${t.controlUrl}/apis/${t.serviceId}/docs`],
      ['usage', `${pagesSeen[2]}/usage`],
    ];
    for (const [name, url] of pages) {
      await p.goto(url);
      if (name === 'docs') await p.locator('.opblock').first().waitFor();
      if (await p.evaluate('document.documentElement.scrollWidth > window.innerWidth + 1')) wide.push(name);
      await screenshot(p, `40-${name}-390`);
      await page.goto(url);
      await screenshot(page, `41-${name}-1280`);
    }
    await phone.close();
    expect(wide).toEqual([]);
  }, 60_000);

  it('has no serious or critical accessibility violations on the pages of the path (axe-core)', async () => {
    const found: string[] = [];
    for (const url of [`${t.controlUrl}/`, ...pagesSeen, `${t.controlUrl}/apis/${t.serviceId}/docs`]) {
      await page.goto(url);
      // the docs page with Swagger UI's widget included (its colours and labels fixed by the portal)
      if (url.endsWith('/docs')) await page.locator('.opblock').first().waitFor();
      for (const v of await accessibilityViolations(page)) {
        found.push(`${url}: ${v.id} (${v.impact}) ${v.help} — ${v.targets.join(', ')}`);
      }
    }
    expect(found).toEqual([]);
  }, 60_000);
});
