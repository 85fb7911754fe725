/**
 * The whole path of a new partner and of the provider, in Debian's Chromium against a real Trellis (gateway,
 * control server, upstream): sign up, create an application, copy the key, "try it" through the gateway, see
 * the call in the usage chart; the provider approves an application and changes its plan; a hidden plan is
 * invisible; another account cannot open the application by URL; a form without a CSRF token is refused.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type RealTrellis,
  accessibilityViolations,
  executeTryIt,
  launchChromium,
  screenshot,
  startRealTrellis,
} from './browser-harness.js';

describe('partner and provider in a browser', () => {
  let t: RealTrellis;
  let browser: Browser;
  let partner: BrowserContext;
  let page: Page;
  let appId = '';
  let oauthTokens = 0;
  let key = '';
  let oauthAppId = '';
  const outside: string[] = [];

  /** A signed-in console session in a context of its own. */
  async function consolePage(): Promise<{ context: BrowserContext; p: Page }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await context.newPage();
    await p.goto(`${t.controlUrl}/admin/login`);
    await p.getByLabel('E-mail').fill(t.admin.email);
    await p.getByLabel('Password').fill(t.admin.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.waitForURL(/\/admin$/);
    return { context, p };
  }

  beforeAll(async () => {
    t = await startRealTrellis();
    browser = await launchChromium();
    partner = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    // Clipboard access for the "Copy" button.
    await partner.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.controlUrl });
    page = await partner.newPage();
    page.on('request', (req) => {
      if (!req.url().startsWith(t.controlUrl) && !req.url().startsWith('data:')) outside.push(req.url());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('signs up a new partner', async () => {
    await page.goto(`${t.controlUrl}/`);
    expect(await page.getByRole('heading', { name: 'Weather' }).count()).toBe(1);
    await screenshot(page, '01-portal-home');
    await page.getByRole('link', { name: 'Sign up' }).first().click();
    await page.getByLabel('Organization').fill('Acme Weather Apps');
    await page.getByLabel('Your name').fill('Pat Partner');
    await page.getByLabel('E-mail').fill('pat@acme.test');
    await page.getByLabel(/^Password/).fill('correct horse battery');
    await screenshot(page, '02-portal-signup');
    await page.getByRole('button', { name: 'Create account' }).click();
    // a first-run page: the form of a first application, filled in (issue 13)
    await page.waitForURL(/\/apps\/new\?welcome=1/);
    expect(await page.textContent('h1')).toContain('Your first key');
  });

  it('shows published plans only', async () => {
    await page.goto(`${t.controlUrl}/apis/${t.serviceId}`);
    const text = await page.textContent('main');
    expect(text).toContain('Free');
    expect(text).toContain('Pro');
    expect(text).not.toContain('Partner Secret');
    await screenshot(page, '03-portal-api');
  });

  it('creates an application and copies its key', async () => {
    await page.getByRole('link', { name: 'Create an application' }).click();
    await page.getByLabel('Name').fill('Forecast widget');
    await page.getByLabel(/Free/).check();
    await page.getByRole('button', { name: 'Create application' }).click();
    await page.waitForSelector('#new-secret');
    key = await page.inputValue('#new-secret');
    expect(key).toMatch(/^trk_/);
    await page.locator('button[data-copy="#new-secret"]').click();
    await page.locator('button[data-copy="#new-secret"]', { hasText: 'Copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(key);
    appId = /\/apps\/(app_[0-9a-z]+)\/usage/.exec(await page.content())?.[1] ?? '';
    expect(appId).toMatch(/^app_/);
    expect(await page.textContent('[data-testid=app-state]')).toBe('approved');
    await screenshot(page, '04-portal-app-created');
  });

  it('tries the API from the reference docs, through the gateway', { timeout: 90_000 }, async () => {
    // "Try it out" is already on for a signed-in developer: authorize with the key, open the operation and execute.
    const { response } = await executeTryIt(page, `/try/${t.serviceId}/forecast`, async () => {
      await page.goto(`${t.controlUrl}/apis/${t.serviceId}/docs`);
      await page.locator('.swagger-ui .btn.authorize').click();
      await page.locator('.auth-container input').first().fill(key);
      await page.locator('.auth-btn-wrapper button.authorize').click();
      await page.locator('.auth-btn-wrapper button.btn-done').click();
    });
    expect(response.status()).toBe(200);
    expect(await response.json()).toEqual({ forecast: 'sunny', path: '/forecast' });
    const status = page.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    expect(await status.textContent()).toContain('200');
    await screenshot(page, '05-portal-docs-try-it');
    // The gateway itself saw the call: the key is counted against the application.
    const direct = await fetch(`${t.gatewayUrl}/weather/forecast`, { headers: { 'X-API-Key': key } });
    expect(direct.status).toBe(200);
  });

  it('shows the calls in the usage chart', async () => {
    let total = 0;
    for (let i = 0; i < 50 && total < 2; i++) {
      await page.goto(`${t.controlUrl}/apps/${appId}/usage`);
      total = Number(await page.textContent('[data-testid=total-day-hits]'));
      if (total < 2) await new Promise((r) => setTimeout(r, 200));
    }
    expect(total).toBe(2);
    expect(Number(await page.textContent('[data-testid=total-day-forecast]'))).toBe(2);
    await page.locator('canvas[data-rendered=true]').first().waitFor();
    const series = JSON.parse(
      (await page.locator('canvas.usage-chart').first().getAttribute('data-chart')) ?? '{}',
    );
    expect(series.values.reduce((a: number, b: number) => a + b, 0)).toBe(2);
    await screenshot(page, '06-portal-usage');
  });

  it('made no request outside the provider’s own host', () => {
    expect(outside).toEqual([]);
  });

  it('asks for a plan that needs approval', async () => {
    await page.goto(`${t.controlUrl}/apps/new?service=${t.serviceId}`);
    await page.getByLabel('Name').fill('Pro dashboard');
    await page.getByLabel(/Pro/).check();
    await page.getByRole('button', { name: 'Create application' }).click();
    await page.waitForSelector('#new-secret');
    expect(await page.textContent('[data-testid=app-state]')).toBe('awaiting approval');
  });

  it('keeps a second account out of the first one’s application, and refuses forms without CSRF', async () => {
    const other = await browser.newContext();
    const p = await other.newPage();
    await p.goto(`${t.controlUrl}/signup`);
    await p.getByLabel('Organization').fill('Rival Inc');
    await p.getByLabel('Your name').fill('Riv Al');
    await p.getByLabel('E-mail').fill('riv@rival.test');
    await p.getByLabel(/^Password/).fill('another good password');
    await p.getByRole('button', { name: 'Create account' }).click();
    await p.waitForURL(/\/apps/);
    for (const path of [`/apps/${appId}`, `/apps/${appId}/usage`]) {
      const res = await p.goto(`${t.controlUrl}${path}`);
      expect(res?.status()).toBe(404);
      expect(await p.textContent('main')).not.toContain('Forecast widget');
    }
    await screenshot(p, '07-portal-other-account-404');
    // A form posted without the page's token (what a forged cross-site form amounts to) is refused.
    const status = await p.evaluate(async (id) => {
      const res = await fetch(`/apps/${id}/keys`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: '',
      });
      return res.status;
    }, appId);
    expect(status).toBe(403);
    const own = await p.evaluate(async () => {
      const res = await fetch('/team/invitations', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'email=x%40rival.test',
      });
      return res.status;
    });
    expect(own).toBe(403);
    await other.close();
  });

  it('lets the provider approve the application and change its plan', async () => {
    const provider = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await provider.newPage();
    await p.goto(`${t.controlUrl}/admin`);
    await p.waitForURL(/\/admin\/login/);
    await p.getByLabel('E-mail').fill(t.admin.email);
    await p.getByLabel('Password').fill(t.admin.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.waitForURL(/\/admin$/);
    await p.locator('canvas[data-rendered=true]').first().waitFor();
    await screenshot(p, '08-console-dashboard');

    await p.goto(`${t.controlUrl}/admin/applications?state=pending`);
    await p.getByRole('link', { name: 'Pro dashboard' }).click();
    await p.getByRole('button', { name: 'Approve' }).click();
    await p.waitForSelector('[data-testid=app-state]:has-text("live")');
    await p.getByLabel('Plan').selectOption({ label: 'Partner Secret (hidden)' });
    await p.getByRole('button', { name: 'Change plan' }).click();
    await p.waitForSelector('text=Plan changed.');
    expect(await p.textContent('[data-testid=app-plan]')).toContain('Partner Secret');
    await screenshot(p, '09-console-application');

    await p.goto(`${t.controlUrl}/admin/services/${t.serviceId}`);
    await screenshot(p, '10-console-service');
    await p.getByRole('link', { name: 'Free' }).click();
    await p.locator('[data-testid=limits-grid]').waitFor();
    await screenshot(p, '11-console-plan-limits');
    await provider.close();

    // The partner sees the approval and the plan they were moved to, hidden or not.
    await page.goto(`${t.controlUrl}/apps`);
    await page.getByRole('link', { name: 'Pro dashboard' }).click();
    expect(await page.textContent('[data-testid=app-state]')).toBe('approved');
    expect(await page.textContent('[data-testid=app-plan]')).toContain('Partner Secret');
    // … while the catalog still hides that plan from everyone else.
    const anon = await browser.newContext();
    const a = await anon.newPage();
    await a.goto(`${t.controlUrl}/apis/${t.serviceId}`);
    expect(await a.textContent('main')).not.toContain('Partner Secret');
    await anon.close();
  });

  it('works at phone width', async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true });
    const p = await phone.newPage();
    await p.goto(`${t.controlUrl}/`);
    const overflow = await p.evaluate('document.documentElement.scrollWidth > window.innerWidth + 1');
    expect(overflow).toBe(false);
    await screenshot(p, '12-portal-phone');
    await phone.close();
  });
  it('tries an OAuth API with a client secret pasted once: a token from /oauth/token, the call with Bearer', {
    timeout: 90_000,
  }, async () => {
    await page.goto(`${t.controlUrl}/apps/new?service=${t.oauthServiceId}`);
    await page.getByLabel('Name').fill('Ledger sync');
    await page.getByRole('button', { name: 'Create application' }).click();
    await page.waitForSelector('#new-secret');
    expect(await page.textContent('#secret-h')).toContain('client secret');
    const secret = await page.inputValue('#new-secret');
    expect(secret).toMatch(/^trcs_/);
    const clientId = (await page.textContent('[data-testid=client-id]')) ?? '';
    oauthAppId = /\/apps\/(app_[0-9a-z]+)\/usage/.exec(await page.content())?.[1] ?? '';
    await screenshot(page, '13-portal-oauth-client');

    const { response, attempts } = await executeTryIt(page, `/try/${t.oauthServiceId}/balance`, async () => {
      await page.goto(`${t.controlUrl}/apis/${t.oauthServiceId}/docs`);
      await page.getByLabel('Application').selectOption(clientId);
      await page.getByLabel('Client secret').fill(secret);
      const tokenResponse = page.waitForResponse((r) => r.url() === `${t.controlUrl}/oauth/token`);
      await page.getByRole('button', { name: 'Get a token' }).click();
      expect((await tokenResponse).status()).toBe(200);
      await page.waitForSelector('[data-testid=oauth-status][data-state=ok]');
      // the secret is gone from the page once exchanged
      expect(await page.inputValue('#oauth-secret')).toBe('');
    });
    expect(response.status()).toBe(200);
    expect(await response.request().headerValue('authorization')).toMatch(/^Bearer eyJ/);
    expect(await response.json()).toEqual({ forecast: 'sunny', path: '/balance' });
    await screenshot(page, '14-portal-oauth-try-it');

    // tokens issued are counted beside the calls
    let tokens = 0;
    for (let i = 0; i < 50 && tokens < attempts; i++) {
      await page.goto(`${t.controlUrl}/apps/${oauthAppId}/usage`);
      tokens = Number(await page.textContent('[data-testid=tokens-day]'));
      if (tokens < attempts) await new Promise((r) => setTimeout(r, 200));
    }
    // one token per opening of the docs page (the test opens it again only when Swagger UI sent nothing)
    expect(tokens).toBe(attempts);
    oauthTokens = attempts;
    await page.locator('canvas[data-rendered=true]').first().waitFor();
    await screenshot(page, '15-portal-oauth-usage');
  });

  it('lets the provider see tokens beside calls, generate a login secret, and refuses to delete a plan in use', async () => {
    const { context, p } = await consolePage();
    await p.goto(`${t.controlUrl}/admin/applications/${oauthAppId}`);
    expect(Number(await p.textContent('[data-testid=tokens-day]'))).toBe(oauthTokens);
    await p.locator('canvas[data-rendered=true]').first().waitFor();
    await screenshot(p, '16-console-oauth-application');

    await p.goto(`${t.controlUrl}/admin/services/${t.oauthServiceId}`);
    await p.getByLabel('Login page URL').fill('https://ledger.test/login');
    await p.getByRole('button', { name: 'Save OAuth settings' }).click();
    await p.waitForSelector('text=OAuth settings saved.');
    p.once('dialog', (d) => void d.accept());
    await p.getByRole('button', { name: 'Generate a login secret' }).click();
    const loginSecret = await p.inputValue('[data-testid=login-secret]');
    expect(loginSecret).toMatch(/^trls_/);
    await screenshot(p, '17-console-oauth-settings');

    // end-user limits sit in the grid beside the application's, keyed by the plan's header or claim
    await p.goto(`${t.controlUrl}/admin/plans/${t.plans.free}`);
    await p.getByLabel('End user named by').selectOption('claim');
    await p.getByLabel('Header or claim name').fill('sub');
    await p.getByRole('button', { name: 'Save plan' }).click();
    await p.waitForSelector('text=Plan saved.');
    await p.getByLabel('hits per minute, per end user').fill('30');
    await p.getByRole('button', { name: 'Save limits' }).click();
    await p.waitForSelector('text=Limits saved.');
    expect(await p.inputValue('[aria-label="hits per minute, per end user"]')).toBe('30');
    expect(await p.inputValue('[aria-label="hits per minute, per application"]')).toBe('');

    // a dismissed confirmation changes nothing; a confirmed one meets the domain's refusal
    await p.goto(`${t.controlUrl}/admin/plans/${t.plans.free}`);
    p.once('dialog', (d) => void d.dismiss());
    await p.getByRole('button', { name: 'Delete plan' }).click();
    expect(p.url()).toBe(`${t.controlUrl}/admin/plans/${t.plans.free}`);
    p.once('dialog', (d) => void d.accept());
    await p.getByRole('button', { name: 'Delete plan' }).click();
    await p.waitForSelector('[data-testid=refusal]');
    expect(await p.textContent('[data-testid=refusal]')).toContain('move them to another plan first');
    await screenshot(p, '18-console-plan-refusal');
    await context.close();
  });

  it('shows an HTML page for an unknown address', async () => {
    const res = await page.goto(`${t.controlUrl}/no/such/page`);
    expect(res?.status()).toBe(404);
    expect(await page.textContent('h1')).toBe('Page not found');
    const { context, p } = await consolePage();
    const admin = await p.goto(`${t.controlUrl}/admin/no/such/page`);
    expect(admin?.status()).toBe(404);
    expect(await p.textContent('h1')).toBe('Page not found');
    await context.close();
  });

  it('has no serious or critical accessibility violations on the main pages (axe-core)', async () => {
    const found: string[] = [];
    // in light and in dark mode (issue 13: both faces follow the system's prefers-color-scheme)
    const check = async (p: Page, path: string, exclude: string[] = [], ready = '') => {
      for (const colorScheme of ['light', 'dark'] as const) {
        await p.emulateMedia({ colorScheme });
        await p.goto(`${t.controlUrl}${path}`);
        if (ready) await p.locator(ready).first().waitFor();
        for (const v of await accessibilityViolations(p, exclude)) {
          found.push(`${colorScheme} ${path}: ${v.id} (${v.impact}) ${v.help} — ${v.targets.join(', ')}`);
        }
      }
      await p.emulateMedia({ colorScheme: 'light' });
    };
    const anon = await browser.newContext();
    const a = await anon.newPage();
    for (const path of [
      '/',
      `/apis/${t.serviceId}`,
      '/signup',
      '/login',
      '/password-reset',
      '/no/such/page',
    ]) {
      await check(a, path);
    }
    await anon.close();
    for (const path of [
      '/apps',
      '/apps/new',
      `/apps/${appId}`,
      `/apps/${appId}/usage`,
      `/apps/${oauthAppId}`,
      '/team',
    ]) {
      await check(page, path);
    }
    // the docs pages, Swagger UI's widget included (issue 13: its contrast and labels fixed by the portal)
    await check(page, `/apis/${t.oauthServiceId}/docs`, [], '.opblock');
    await check(page, `/apis/${t.serviceId}/docs`, [], '.opblock');
    const { context, p } = await consolePage();
    for (const path of [
      '/admin',
      '/admin/services',
      `/admin/services/${t.serviceId}`,
      `/admin/services/${t.oauthServiceId}`,
      `/admin/plans/${t.plans.free}`,
      '/admin/accounts',
      '/admin/applications',
      `/admin/applications/${appId}`,
      `/admin/applications/${oauthAppId}`,
      '/admin/custom-fields',
      '/admin/portal-settings',
      '/admin/admin-users',
      '/admin/tokens',
      '/admin/mail',
    ]) {
      await check(p, path);
    }
    await context.close();
    expect(found).toEqual([]);
  }, 240_000);
});
