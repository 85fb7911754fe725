/**
 * Issue 10 in Chromium against a real Trellis (authorization server, gateway, portal, console): a partner signs up
 * and makes two OAuth clients; a scripted client takes a new token for every call through the real gateway, the
 * other keeps one token. Once a round of the worker's insights job ran, the partner sees the token-churn finding
 * and its advice on the churning application's usage page (and nothing on the other), and the provider sees it on
 * the console's Insights page and on the application's page.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InsightsJob, listFindings } from '../../src/insights/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { until } from '../gateway/fixtures.js';
import {
  type RealTrellis,
  accessibilityViolations,
  launchChromium,
  screenshot,
  startRealTrellis,
} from './browser-harness.js';

interface Client {
  appId: string;
  clientId: string;
  secret: string;
}

const CALLS = 25;

describe('insights in a browser', () => {
  let t: RealTrellis;
  let browser: Browser;
  let partner: BrowserContext;
  let page: Page;
  const clients: Record<'churn' | 'cached', Client> = {
    churn: { appId: '', clientId: '', secret: '' },
    cached: { appId: '', clientId: '', secret: '' },
  };

  beforeAll(async () => {
    t = await startRealTrellis();
    browser = await launchChromium();
    partner = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    page = await partner.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** Creates an application of the OAuth API in the portal; its client secret is shown once. */
  async function createClient(name: string): Promise<Client> {
    await page.goto(`${t.controlUrl}/apps/new?service=${t.oauthServiceId}`);
    await page.getByLabel('Name').fill(name);
    await page.getByRole('button', { name: 'Create application' }).click();
    await page.waitForSelector('#new-secret');
    const secret = await page.inputValue('#new-secret');
    const clientId = (await page.textContent('[data-testid=client-id]')) ?? '';
    const appId = /\/apps\/(app_[0-9a-z]+)\/usage/.exec(await page.content())?.[1] ?? '';
    expect(secret).toMatch(/^trcs_/);
    expect(appId).toMatch(/^app_/);
    return { appId, clientId, secret };
  }

  async function token(c: Client): Promise<string> {
    const res = await fetch(`${t.controlUrl}/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${c.clientId}:${c.secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(200);
    return String(((await res.json()) as { access_token: string }).access_token);
  }

  async function balance(bearer: string): Promise<number> {
    const res = await fetch(`${t.gatewayUrl}/ledger/balance`, {
      headers: { authorization: `Bearer ${bearer}` },
    });
    await res.arrayBuffer();
    return res.status;
  }

  it('signs a partner up and makes two OAuth clients in the portal', async () => {
    await page.goto(`${t.controlUrl}/signup`);
    await page.getByLabel('Organization').fill('Churn & Co');
    await page.getByLabel('Your name').fill('Cy Client');
    await page.getByLabel('E-mail').fill('cy@churn.test');
    await page.getByLabel(/^Password/).fill('correct horse battery');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/apps\/new/);
    clients.churn = await createClient('Ledger churn');
    clients.cached = await createClient('Ledger cached');
  });

  it('scripts the calls through the real authorization server and gateway, and the insights find the churn', async () => {
    // one token for every call
    for (let i = 0; i < CALLS; i++) expect(await balance(await token(clients.churn))).toBe(200);
    // one token kept for every call
    const kept = await token(clients.cached);
    for (let i = 0; i < CALLS; i++) expect(await balance(kept)).toBe(200);

    // the gateway's usage flush and the authorization server's token counter write a little later
    const counted = async (appId: string, table: 'usage_route_calls' | 'oauth_token_counts') => {
      const column = table === 'usage_route_calls' ? 'calls' : 'count';
      const rows = (await t.store.db
        .selectFrom(table as never)
        .select(column as never)
        .where('application_id' as never, '=', appId as never)
        .execute()) as Record<string, number>[];
      return rows.reduce((sum, r) => sum + Number(r[column]), 0);
    };
    await until(
      async () =>
        (await counted(clients.churn.appId, 'usage_route_calls')) === CALLS &&
        (await counted(clients.cached.appId, 'usage_route_calls')) === CALLS &&
        (await counted(clients.churn.appId, 'oauth_token_counts')) === CALLS &&
        (await counted(clients.cached.appId, 'oauth_token_counts')) === 1,
      20_000,
      50,
    );
    // a round of the worker's insights job (as trellis worker runs it, here without its timer)
    const job = new InsightsJob(
      { db: t.store.db, clock: systemClock },
      { intervalMs: 60_000, holder: 'browser-test', logger: { error: () => {} } },
    );
    expect(await job.tick()).toBe(true);
    const { data } = await listFindings(t.store.db, { serviceId: t.oauthServiceId, limit: 10 });
    expect(data.map((f) => [f.applicationId, f.kind])).toEqual([[clients.churn.appId, 'token_churn']]);
    expect(data[0]?.evidence.numbers).toMatchObject({
      tokensIssued: CALLS,
      apiCalls: CALLS,
      tokensPerCall: 1,
    });
  });

  it('shows the partner the finding and its advice on the churning application only', async () => {
    await page.goto(`${t.controlUrl}/apps/${clients.churn.appId}/usage`);
    const finding = page.locator('[data-testid=finding][data-kind=token_churn]');
    await finding.waitFor();
    const text = (await finding.textContent()) ?? '';
    expect(text).toContain('token churn');
    expect(text).toContain(`requested ${CALLS} access tokens for ${CALLS} API calls`);
    expect(text).toContain('Keep the token and reuse it until it expires');
    expect(await page.textContent('[data-testid=health]')).toContain(`${CALLS} calls`);
    await screenshot(page, '40-portal-insights-token-churn');

    await page.goto(`${t.controlUrl}/apps/${clients.cached.appId}/usage`);
    await page.locator('[data-testid=no-findings]').waitFor();
    expect(await page.locator('[data-testid=finding]').count()).toBe(0);
  });

  it('shows the provider the finding on the Insights page and on the application page', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await context.newPage();
    await p.goto(`${t.controlUrl}/admin/login`);
    await p.getByLabel('E-mail').fill(t.admin.email);
    await p.getByLabel('Password').fill(t.admin.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.waitForURL(/\/admin$/);

    await p.getByRole('link', { name: 'Insights' }).first().click();
    await p.waitForURL(/\/admin\/insights$/);
    const findings = p.locator('[data-testid=finding]');
    expect(await findings.count()).toBe(1);
    const finding = findings.first();
    expect(await finding.getAttribute('data-kind')).toBe('token_churn');
    const text = (await finding.textContent()) ?? '';
    expect(text).toContain('Ledger churn');
    expect(text).toContain('Keep the token and reuse it until it expires');
    expect(text).toContain('tokensPerCall');
    await screenshot(p, '41-console-insights-token-churn');
    const found = (await accessibilityViolations(p)).map((v) => `insights: ${v.id} ${v.targets.join(', ')}`);

    await finding.getByRole('link', { name: 'Ledger churn' }).click();
    await p.waitForURL(new RegExp(`/admin/applications/${clients.churn.appId}$`));
    expect(await p.textContent('[data-testid=open-findings]')).toContain('token churn');
    expect(await p.textContent('[data-testid=health]')).toContain(`${CALLS} calls`);
    // the per-route health table: the one route the client called, every call a 200
    const route = p.locator('[data-testid=health-routes] tbody tr');
    expect(await route.count()).toBe(1);
    expect(await route.locator('th').textContent()).toBe('GET /balance');
    expect(await route.locator('td').allTextContents()).toEqual([
      String(CALLS),
      expect.stringMatching(/^\d/),
      expect.stringMatching(/^\d/),
      expect.stringMatching(/^\d/),
      '0.0 %',
      '0.0 %',
      '0.0 %',
    ]);
    await screenshot(p, '42-console-application-health');
    for (const v of await accessibilityViolations(p))
      found.push(`application: ${v.id} ${v.targets.join(', ')}`);
    expect(found).toEqual([]);

    await p.goto(`${t.controlUrl}/admin/applications/${clients.cached.appId}`);
    expect(await p.locator('[data-testid=open-findings]').count()).toBe(0);
    await context.close();
  });
});
