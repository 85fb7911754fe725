/**
 * Issue 13, the provider's side in Chromium against a real Trellis: a service made in the console stays
 * invisible in the portal until it has a published plan and is published; a plan change request is approved with
 * one click on the dashboard.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, createApplication, requestApplicationPlan } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import {
  type RealTrellis,
  accessibilityViolations,
  launchChromium,
  screenshot,
  startRealTrellis,
} from './browser-harness.js';

describe('the provider’s daily work in a browser', () => {
  let t: RealTrellis;
  let browser: Browser;
  let p: Page;

  beforeAll(async () => {
    t = await startRealTrellis();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    p = await context.newPage();
    await p.goto(`${t.controlUrl}/admin/login`);
    await p.getByLabel('E-mail').fill(t.admin.email);
    await p.getByLabel('Password').fill(t.admin.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.waitForURL(/\/admin$/);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  const inPortal = async (name: string) => {
    const anon = await browser.newPage();
    await anon.goto(`${t.controlUrl}/`);
    const found = (await anon.getByRole('heading', { name }).count()) > 0;
    await anon.close();
    return found;
  };

  it('keeps a new service out of the portal until it has a published plan and is published', async () => {
    await p.goto(`${t.controlUrl}/admin/services`);
    await p.getByLabel('Name', { exact: true }).fill('Maps');
    await p.getByLabel(/^System name/).fill('maps');
    await p.getByLabel('Upstream URL').fill('http://127.0.0.1:9/');
    await p.getByRole('button', { name: 'Create service' }).click();
    await p.waitForSelector('[data-testid=portal-state]');
    expect(await p.textContent('[data-testid=portal-state]')).toContain('draft');
    expect(await inPortal('Maps')).toBe(false);

    await p.getByRole('button', { name: 'Publish in the portal' }).click();
    await p.waitForSelector('text=Published: the portal shows the service');
    await screenshot(p, '30-console-service-published-without-plan');
    // published, but without a plan to choose the portal still hides it
    expect(await p.textContent('main')).toContain('hidden until one of its plans is published');
    expect(await inPortal('Maps')).toBe(false);

    await p.locator('#p-name').fill('Maps Free');
    await p.locator('#p-sys').fill('free');
    await p.getByRole('button', { name: 'Add plan' }).click();
    await p.waitForURL(/\/admin\/plans\//);
    expect(await inPortal('Maps')).toBe(true);
  });

  it('approves a plan change request with one click on the dashboard', async () => {
    const deps = { db: t.store.db, clock: systemClock };
    const account = await createAccount(deps, systemActor, { name: 'Movers Inc' });
    const app = await createApplication(deps, systemActor, {
      accountId: account.id,
      serviceId: t.serviceId,
      planId: t.plans.free,
      name: 'Mover',
      environment: 'sandbox',
    });
    await requestApplicationPlan(deps, systemActor, app.id, t.plans.pro);
    await p.goto(`${t.controlUrl}/admin`);
    const request = p.locator('[data-testid=inbox-plan-request]', { hasText: 'Mover' });
    expect(await request.textContent()).toContain('from Free to Pro');
    await screenshot(p, '31-console-inbox');
    await request.getByRole('button', { name: 'Approve Pro' }).click();
    await p.waitForURL(/\/admin$/);
    expect(await p.locator('[data-testid=inbox-plan-request]', { hasText: 'Mover' }).count()).toBe(0);
    await p.goto(`${t.controlUrl}/admin/applications/${app.id}`);
    expect(await p.textContent('[data-testid=app-plan]')).toContain('Pro');
  });

  it('has no serious or critical accessibility violations on the dashboard and the service page', async () => {
    const found: string[] = [];
    for (const path of ['/admin', '/admin/services', `/admin/services/${t.serviceId}`]) {
      await p.goto(`${t.controlUrl}${path}`);
      for (const v of await accessibilityViolations(p))
        found.push(`${path}: ${v.id} ${v.targets.join(', ')}`);
    }
    expect(found).toEqual([]);
  }, 60_000);
});
