/**
 * The provider's portal, their brand (issue 13), in Chromium against a real Trellis: content pages, the success
 * stories with a partner's consent, the console's Portal pages, the favicon — and every main page of the portal
 * and the console checked by axe-core (0 serious or critical findings) in light AND dark mode (the system's
 * `prefers-color-scheme`, emulated), with screenshots at 1280 and 390 px and no horizontal scrolling at 390 px.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { createContentPage, writeShowcaseEntry } from '../../src/portal/index.js';
import {
  type RealTrellis,
  accessibilityViolations,
  launchChromium,
  screenshot,
  startRealTrellis,
} from './browser-harness.js';

type Scheme = 'light' | 'dark';

describe('the provider’s brand in light and dark mode', () => {
  let t: RealTrellis;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  let appPath = '';

  async function context(scheme: Scheme, width = 1280): Promise<BrowserContext> {
    const c = await browser.newContext({
      viewport: { width, height: 900 },
      colorScheme: scheme,
      ...(width < 500 && { isMobile: true }),
    });
    contexts.push(c);
    return c;
  }

  async function signIn(page: Page, email: string, password: string, console = false): Promise<void> {
    await page.goto(`${t.controlUrl}${console ? '/admin/login' : '/login'}`);
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.endsWith('/login'));
  }

  beforeAll(async () => {
    t = await startRealTrellis();
    browser = await launchChromium();
    const deps = { db: t.store.db, clock: systemClock };
    await createContentPage(deps, systemActor, {
      slug: 'index',
      title: 'Weather data for your product',
      body: 'Forecasts for **anywhere**, by API. Start with the [guide](/pages/guide).',
    });
    await createContentPage(deps, systemActor, {
      slug: 'guide',
      title: 'Getting started',
      body: '## Three steps\n\n1. Sign up\n2. Create an application\n3. Call `GET /forecast`\n\n```\ncurl -H "X-API-Key: …" https://…/forecast\n```',
      position: 1,
    });
    await createContentPage(deps, systemActor, {
      slug: 'sdks',
      title: 'SDKs',
      body: 'For signed-in developers: the SDKs.',
      visibility: 'developers',
      position: 2,
    });

    // a partner with an application, featured by the provider with their consent (ticked in the portal below)
    const partner = await (await context('light')).newPage();
    await partner.goto(
      `${t.controlUrl}/signup?next=${encodeURIComponent(`/apps/new?service=${t.serviceId}`)}`,
    );
    await partner.getByLabel('Organization').fill('Sunny Shops');
    await partner.getByLabel('Your name').fill('Sam Sunny');
    await partner.getByLabel('E-mail').fill('sam@sunny.test');
    await partner.getByLabel(/^Password/).fill('correct horse battery');
    await partner.getByRole('button', { name: 'Create account' }).click();
    await partner.waitForURL(/\/apps\/new/);
    await partner.getByRole('button', { name: 'Create application' }).click();
    await partner.waitForSelector('#new-secret');
    appPath = new URL(partner.url()).pathname;
    await writeShowcaseEntry(deps, systemActor, appPath.slice('/apps/'.length), {
      featured: true,
      name: 'Sunny Shops weather widget',
      description: 'Shows the week’s forecast on every shop page.',
      linkUrl: 'https://sunny.example/',
    });
    await partner.goto(`${t.controlUrl}${appPath}`);
    await partner.getByTestId('showcase-link').click();
    await partner.getByLabel(/I agree that the provider features/).check();
    await partner.getByRole('button', { name: 'Save' }).click();
    await partner.getByText('Shown on the Success stories page.').waitFor();
  }, 90_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await t?.close();
  });

  const portalPages = (): [string, string][] => [
    ['front', '/'],
    ['guide', '/pages/guide'],
    ['success-stories', '/success-stories'],
    ['signup', '/signup'],
  ];
  const developerPages = (): [string, string][] => [
    ['sdks', '/pages/sdks'],
    ['applications', '/apps'],
    ['application', appPath],
    ['showcase-consent', `${appPath}/showcase`],
    ['docs', `/apis/${t.serviceId}/docs`],
  ];
  const consolePages = (): [string, string][] => [
    ['console-dashboard', '/admin'],
    ['console-portal-settings', '/admin/portal-settings'],
    ['console-mail-templates', '/admin/portal-settings/mail-templates'],
    ['console-mail-template', '/admin/portal-settings/mail-templates/signup'],
    ['console-pages', '/admin/portal-settings/pages'],
    ['console-showcase', '/admin/portal-settings/showcase'],
  ];

  it('shows the front page, the navigation, the success story and the favicon', async () => {
    const page = await (await context('light')).newPage();
    await page.goto(`${t.controlUrl}/`);
    expect(await page.textContent('h1')).toBe('Weather data for your product');
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Getting started' })
      .click();
    await page.waitForURL(/\/pages\/guide$/);
    expect(await page.textContent('h2')).toBe('Three steps');
    expect(await page.getByRole('link', { name: 'SDKs' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Success stories' }).click();
    await page.getByRole('heading', { name: 'Sunny Shops weather widget' }).waitFor();
    const icon = await page.evaluate(async () => {
      const res = await fetch('/favicon.ico');
      return { status: res.status, type: res.headers.get('content-type') };
    });
    expect(icon).toEqual({ status: 200, type: 'image/svg+xml' });
  }, 60_000);

  for (const scheme of ['light', 'dark'] as const) {
    it(`has no serious or critical axe findings on the portal and console pages in ${scheme} mode`, async () => {
      const visitor = await (await context(scheme)).newPage();
      const developer = await (await context(scheme)).newPage();
      await signIn(developer, 'sam@sunny.test', 'correct horse battery');
      const admin = await (await context(scheme)).newPage();
      await signIn(admin, t.admin.email, t.admin.password, true);
      // the mode really is the one asked for: the page's ground follows it
      await visitor.goto(`${t.controlUrl}/`);
      const ground = await visitor.evaluate('getComputedStyle(document.body).backgroundColor');
      expect(ground).toBe(scheme === 'dark' ? 'rgb(18, 20, 23)' : 'rgb(255, 255, 255)');

      const found: string[] = [];
      const check = async (page: Page, name: string, path: string) => {
        await page.goto(`${t.controlUrl}${path}`);
        if (name === 'docs') await page.locator('.opblock').first().waitFor();
        for (const v of await accessibilityViolations(page)) {
          found.push(`${scheme} ${path}: ${v.id} (${v.impact}) ${v.help} — ${v.targets.join(', ')}`);
        }
        await screenshot(page, `50-brand-${name}-${scheme}-1280`);
      };
      for (const [name, path] of portalPages()) await check(visitor, name, path);
      for (const [name, path] of developerPages()) await check(developer, name, path);
      for (const [name, path] of consolePages()) await check(admin, name, path);
      // the mail template preview and a content page's editor, as the provider sees them after a click
      await admin.goto(`${t.controlUrl}/admin/portal-settings/mail-templates/invitation`);
      await admin.getByRole('button', { name: 'Preview with sample data' }).click();
      await admin.getByTestId('preview').waitFor();
      for (const v of await accessibilityViolations(admin))
        found.push(`${scheme} preview: ${v.id} ${v.help}`);
      await screenshot(admin, `50-brand-console-mail-preview-${scheme}-1280`);
      expect(found).toEqual([]);
    }, 180_000);
  }

  it('fits 390 px without horizontal scrolling, with screenshots in both modes', async () => {
    const wide: string[] = [];
    for (const scheme of ['light', 'dark'] as const) {
      const visitor = await (await context(scheme, 390)).newPage();
      const developer = await (await context(scheme, 390)).newPage();
      await signIn(developer, 'sam@sunny.test', 'correct horse battery');
      const admin = await (await context(scheme, 390)).newPage();
      await signIn(admin, t.admin.email, t.admin.password, true);
      const all: [Page, string, string][] = [
        ...portalPages().map(([n, p]) => [visitor, n, p] as [Page, string, string]),
        ...developerPages().map(([n, p]) => [developer, n, p] as [Page, string, string]),
        ...consolePages()
          .filter(([n]) => n !== 'console-dashboard')
          .map(([n, p]) => [admin, n, p] as [Page, string, string]),
      ];
      for (const [page, name, path] of all) {
        await page.goto(`${t.controlUrl}${path}`);
        if (name === 'docs') await page.locator('.opblock').first().waitFor();
        if (await page.evaluate('document.documentElement.scrollWidth > window.innerWidth + 1')) {
          wide.push(`${scheme} ${name}`);
        }
        await screenshot(page, `51-brand-${name}-${scheme}-390`);
      }
    }
    expect(wide).toEqual([]);
  }, 180_000);
});
