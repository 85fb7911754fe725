/**
 * The portal and the console for a service in `oauth2` mode, through `app.inject`: the console's OAuth settings
 * (login page, token lifetimes, a login secret shown once) and an application's redirect URIs; the portal's
 * client id and client secret (shown once), the docs page's token form, and tokens issued beside calls in the
 * usage charts of both faces. Access control and CSRF on every new form.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApplication, createAccount } from '../../src/access/index.js';
import { createPlan, createService } from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { getClientOAuthSettings, getServiceOAuthSettings } from '../../src/oauth/index.js';
import { type PortalHarness, signUp, startPortal } from './portal-harness.js';
import type { WebAgent } from './web-agent.js';

const chartOf = (html: string, label: RegExp): { values: number[]; tokens?: number[] } => {
  const tag = [...html.matchAll(/<canvas[^>]*>/g)].map((m) => m[0]).find((t) => label.test(t)) ?? '';
  const raw = /data-chart="([^"]*)"/.exec(tag)?.[1] ?? '{}';
  return JSON.parse(
    raw
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&'),
  );
};

describe('OAuth services in the portal and the console', () => {
  let h: PortalHarness;
  let admin: WebAgent;
  let dev: WebAgent;
  let serviceId = '';
  let appId = '';
  let clientId = '';

  beforeAll(async () => {
    h = await startPortal();
    const deps = { db: h.store.db, clock: h.clock };
    const service = await createService(deps, systemActor, {
      name: 'Ledger',
      systemName: 'ledger',
      upstreamProduction: 'http://127.0.0.1:9',
      authMode: 'oauth2',
    });
    serviceId = service.id;
    await createPlan(deps, systemActor, service.id, { name: 'Ledger Basic', systemName: 'basic' });
    admin = h.agent();
    await admin.get('/admin/login');
    await admin.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
    dev = await signUp(h, 'oauth@ledger.test', 'Ledger Partner');
  });
  afterAll(() => h.close());

  it('gives a developer a client id and a client secret shown once', async () => {
    const form = await dev.get(`/apps/new?service=${serviceId}`);
    const planId = /name="planId" value="(pln_[0-9a-z]+)"/.exec(form.body)?.[1] ?? '';
    const created = await dev.submit('/apps/new', { serviceId, planId, name: 'Books sync' });
    expect(created.posted).toBe(303);
    expect(created.body).toContain('Your new client secret');
    expect(created.body).toMatch(/id="new-secret" readonly value="trcs_/);
    appId = /\/apps\/(app_[0-9a-z]+)\/usage/.exec(created.body)?.[1] ?? '';
    clientId = /data-testid="client-id">([^<]+)</.exec(created.body)?.[1] ?? '';
    expect(clientId).not.toBe('');
    expect(created.body).toContain('/oauth/token');
    const again = await dev.get(`/apps/${appId}`);
    expect(again.body).not.toMatch(/value="trcs_/);
    expect(again.body).toContain(clientId);
    expect(again.body).toContain('Add a client secret');
  });

  it("offers the token form on the docs page, listing only the developer's own clients", async () => {
    const other = await createAccount({ db: h.store.db, clock: h.clock }, systemActor, {
      name: 'Someone else',
      state: 'approved',
    });
    await createApplication({ db: h.store.db, clock: h.clock }, systemActor, {
      accountId: other.id,
      serviceId,
      name: 'Not yours',
    });
    const docs = await dev.get(`/apis/${serviceId}/docs`);
    expect(docs.body).toContain('id="oauth-token"');
    expect(docs.body).toContain('data-token-url="/oauth/token"');
    expect(docs.body).toContain(`<option value="${clientId}">Books sync</option>`);
    expect(docs.body).not.toContain('Not yours');
    // the secret field has no name: without script, it is never submitted anywhere
    expect(docs.body).toMatch(/<input id="oauth-secret" type="password"(?![^>]*name=)/);
    const anon = await h.agent().get(`/apis/${serviceId}/docs`);
    expect(anon.body).not.toContain('id="oauth-token"');
  });

  it('shows tokens issued beside calls, in the portal and the console', async () => {
    const now = h.clock.now();
    const bucket = new Date(now - (now % 3_600_000)).toISOString();
    const app = await h.app.inject({
      method: 'GET',
      url: '/admin/api/applications/' + appId,
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    const accountId = app.json().accountId as string;
    // what the authorization server's counter writes: 7 client-credentials tokens this hour
    await sql`insert into oauth_token_counts (bucket, application_id, service_id, account_id, grant_type, count)
      values (${bucket}, ${appId}, ${serviceId}, ${accountId}, 'client_credentials', 7)`.execute(h.store.db);

    const usage = await dev.get(`/apps/${appId}/usage`);
    expect(usage.statusCode).toBe(200);
    expect(/data-testid="tokens-day">(\d+)</.exec(usage.body)?.[1]).toBe('7');
    expect(/data-testid="tokens-month">(\d+)</.exec(usage.body)?.[1]).toBe('7');
    const hourly = chartOf(usage.body, /Hits and tokens issued per hour/);
    expect(hourly.tokens?.reduce((a, b) => a + b, 0)).toBe(7);
    expect(hourly.tokens).toHaveLength(hourly.values.length);

    const page = await admin.get(`/admin/applications/${appId}`);
    expect(/data-testid="tokens-day">(\d+)</.exec(page.body)?.[1]).toBe('7');
    const daily = chartOf(page.body, /Calls and tokens issued per day/);
    expect(daily.tokens?.at(-1)).toBe(7);
    expect(daily.values).toHaveLength(30);

    // another account cannot read them
    const rival = await signUp(h, 'rival@ledger.test', 'Rival');
    expect((await rival.get(`/apps/${appId}/usage`)).statusCode).toBe(404);
    // a key-based service shows no token series
    const plain = await admin.get(`/admin/services/${h.serviceId}`);
    expect(plain.body).not.toContain('id="oauth"');
  });

  it('edits OAuth settings and generates a login secret shown once in the console', async () => {
    const page = await admin.get(`/admin/services/${serviceId}`);
    expect(page.body).toContain('<h2 id="oauth">OAuth 2.0</h2>');
    const saved = await admin.submit(`/admin/services/${serviceId}/oauth`, {
      loginUrl: 'https://ledger.test/login',
      accessTokenTtl: '900',
      refreshTokenTtl: '86400',
    });
    expect(saved.body).toContain('OAuth settings saved.');
    const settings = await getServiceOAuthSettings(h.store.db, serviceId);
    expect([settings.loginUrl, settings.accessTokenTtl, settings.refreshTokenTtl]).toEqual([
      'https://ledger.test/login',
      900,
      86400,
    ]);
    const bad = await admin.submit(`/admin/services/${serviceId}/oauth`, {
      loginUrl: 'javascript:alert(1)',
      accessTokenTtl: '5',
      refreshTokenTtl: '86400',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('loginUrl');
    expect(bad.body).toContain('accessTokenTtl');

    const made = await admin.submit(`/admin/services/${serviceId}/oauth/login-secret`, {});
    expect(made.posted).toBe(303);
    const secret = /id="login-secret" readonly value="(trls_[A-Za-z0-9_-]+)"/.exec(made.body)?.[1] ?? '';
    expect(secret).toMatch(/^trls_/);
    const later = await admin.get(`/admin/services/${serviceId}`);
    expect(later.body).not.toContain(secret);
    expect(later.body).toContain('A login secret is set.');
  });

  it("edits an application's redirect URIs in the console", async () => {
    const page = await admin.get(`/admin/applications/${appId}`);
    expect(page.body).toContain('Redirect URIs');
    const saved = await admin.post(`/admin/applications/${appId}/oauth`, {
      redirectUris: 'https://books.test/callback\nhttp://localhost:3000/cb',
    });
    expect(saved.body).toContain('Redirect URIs saved.');
    expect((await getClientOAuthSettings(h.store.db, appId)).redirectUris).toEqual([
      'https://books.test/callback',
      'http://localhost:3000/cb',
    ]);
    const bad = await admin.post(`/admin/applications/${appId}/oauth`, {
      redirectUris: 'http://books.test/insecure',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('is not an https URL');
  });

  it('refuses the OAuth forms without CSRF or an admin session, and leaves the secret alone', async () => {
    const before = await getServiceOAuthSettings(h.store.db, serviceId);
    await admin.get('/admin');
    for (const url of [
      `/admin/services/${serviceId}/oauth`,
      `/admin/services/${serviceId}/oauth/login-secret`,
      `/admin/applications/${appId}/oauth`,
    ]) {
      expect((await admin.post(url, { loginUrl: '' }, { csrf: null })).statusCode, url).toBe(403);
      expect((await dev.post(url, { loginUrl: '' })).statusCode, url).toBe(403);
      const anon = h.agent();
      await anon.get('/admin/login');
      const res = await anon.post(url, { loginUrl: '' });
      expect(res.statusCode, url).toBe(303);
      expect(res.headers.location).toMatch(/^\/admin\/login/);
    }
    expect(await getServiceOAuthSettings(h.store.db, serviceId)).toEqual(before);
  });
});
