/**
 * The admin console through `app.inject`: who may enter, CSRF, and the provider's main actions — approving and
 * re-planning applications, services with OpenAPI import and the limits grid, portal settings, tokens, mail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getApplication, getPortalSettings } from '../../src/access/index.js';
import { getPlan, listMappingRules, listMetrics } from '../../src/catalog/index.js';
import { type PortalHarness, signUp, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';

async function signInAdmin(h: PortalHarness): Promise<WebAgent> {
  const agent = h.agent();
  await agent.get('/admin/login');
  const res = await agent.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
  expect(res.statusCode).toBe(303);
  return agent;
}

describe('admin console', () => {
  let h: PortalHarness;
  let admin: WebAgent;
  let dev: WebAgent;
  let appId: string;

  beforeAll(async () => {
    h = await startPortal();
    admin = await signInAdmin(h);
    dev = await signUp(h, 'dev@console.test', 'Console Co');
    await dev.get('/apps/new');
    const created = await dev.submit('/apps/new', {
      serviceId: h.serviceId,
      planId: h.plans.pro,
      name: 'Needs review',
    });
    appId = /\/apps\/(app_[0-9a-z]+)\/usage/.exec(created.body)?.[1] ?? '';
    expect(created.body).toContain('pending');
  });
  afterAll(() => h.close());

  it('keeps out anonymous visitors, developers and admin API tokens', async () => {
    for (const url of ['/admin', '/admin/services', `/admin/applications/${appId}`, '/admin/mail']) {
      const res = await h.agent().get(url);
      expect(res.statusCode, url).toBe(303);
      expect(res.headers.location).toMatch(/^\/admin\/login\?next=/);
    }
    expect((await dev.get('/admin')).statusCode).toBe(303);
    const withToken = await h.app.inject({
      method: 'GET',
      url: '/admin/services',
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    expect(withToken.statusCode).toBe(303);
    // The management API keeps its own guard and JSON errors.
    const api = await h.app.inject({ method: 'GET', url: '/admin/api/services' });
    expect(api.statusCode).toBe(401);
    expect(api.json().error.code).toBe('unauthenticated');
  });

  it('scopes the console session cookie to /admin and refuses wrong passwords', async () => {
    const agent = h.agent();
    await agent.get('/admin/login');
    const res = await agent.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
    expect(res.cookies.find((c) => c.name === 'trellis_console')).toMatchObject({
      path: '/admin',
      httpOnly: true,
      sameSite: 'Lax',
    });
    const other = h.agent();
    await other.get('/admin/login');
    expect(
      (await other.post('/admin/login', { email: h.adminEmail, password: 'not the password' })).statusCode,
    ).toBe(401);
  });

  it('returns an admin to the console page asked for, never outside the console, and throttles guessing', async () => {
    const back = h.agent();
    await back.get('/admin/login');
    const ok = await back.post('/admin/login', {
      email: h.adminEmail,
      password: h.adminPassword,
      next: '/admin/services',
    });
    expect(ok.headers.location).toBe('/admin/services');
    const away = h.agent();
    await away.get('/admin/login');
    const outside = await away.post('/admin/login', {
      email: h.adminEmail,
      password: h.adminPassword,
      next: '/apps',
    });
    expect(outside.headers.location).toBe('/admin');
    const offsite = h.agent();
    await offsite.get('/admin/login');
    const evil = await offsite.post('/admin/login', {
      email: h.adminEmail,
      password: h.adminPassword,
      next: '//evil.example/admin',
    });
    expect(evil.headers.location).toBe('/admin');

    const guesser = h.agent();
    await guesser.get('/admin/login');
    let last = 0;
    for (let i = 0; i < 12 && last !== 429; i++) {
      last = (await guesser.post('/admin/login', { email: 'guess@provider.test', password: `guess ${i}` }))
        .statusCode;
    }
    expect(last).toBe(429);
  });

  it('refuses console forms without a CSRF token', async () => {
    await admin.get(`/admin/applications/${appId}`);
    const res = await admin.post(`/admin/applications/${appId}/approve`, {}, { csrf: null });
    expect(res.statusCode).toBe(403);
    expect((await getApplication(h.store.db, appId)).state).toBe('pending');
  });

  it('approves an application and changes its plan', async () => {
    const list = await admin.get('/admin/applications?state=pending');
    expect(list.body).toContain('Needs review');
    await admin.get(`/admin/applications/${appId}`);
    expect((await admin.post(`/admin/applications/${appId}/approve`, {})).statusCode).toBe(303);
    expect((await getApplication(h.store.db, appId)).state).toBe('live');
    await admin.get(`/admin/applications/${appId}`);
    const changed = await admin.post(`/admin/applications/${appId}/plan`, { planId: h.plans.secret });
    expect(changed.body).toContain('Plan changed.');
    expect((await getApplication(h.store.db, appId)).planId).toBe(h.plans.secret);
    // The developer sees the plan they are on, hidden or not.
    expect((await dev.get(`/apps/${appId}`)).body).toContain('Partner Secret');
  });

  it('searches, suspends and resumes accounts', async () => {
    const found = await admin.get('/admin/accounts?q=Console');
    expect(found.body).toContain('Console Co');
    const accountId = /\/admin\/accounts\/(acc_[0-9a-z]+)/.exec(found.body)?.[1] ?? '';
    await admin.get(`/admin/accounts/${accountId}`);
    expect((await admin.post(`/admin/accounts/${accountId}/suspend`, {})).statusCode).toBe(303);
    // A suspended account's developers are signed out of the portal.
    expect((await dev.get('/apps')).statusCode).toBe(303);
    await admin.get(`/admin/accounts/${accountId}`);
    expect((await admin.post(`/admin/accounts/${accountId}/resume`, {})).statusCode).toBe(303);
    const bogus = await admin.post(`/admin/accounts/${accountId}/delete-everything`, {});
    expect(bogus.statusCode).toBe(404);
  });

  it('creates a service, imports OpenAPI and edits the limits grid', async () => {
    await admin.get('/admin/services');
    const bad = await admin.post('/admin/services', {
      name: 'Maps',
      systemName: 'Not Valid!',
      upstreamProduction: 'ftp://x',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('systemName');
    const ok = await admin.post('/admin/services', {
      name: 'Maps',
      systemName: 'maps',
      upstreamProduction: 'http://127.0.0.1:9',
    });
    expect(ok.statusCode).toBe(303);
    const serviceId = ok.headers.location?.toString().split('/').pop() ?? '';
    await admin.get(`/admin/services/${serviceId}`);
    const yaml = [
      'openapi: 3.0.3',
      'info: {title: Maps, version: "1"}',
      'paths:',
      '  /tiles/{z}/{x}/{y}:',
      '    get: {operationId: getTile, responses: {"200": {description: ok}}}',
      '  /geocode:',
      '    post: {operationId: geocode, responses: {"200": {description: ok}}}',
    ].join('\n');
    const published = await admin.submit(`/admin/services/${serviceId}/openapi`, {
      document: yaml,
      intent: 'publish',
    });
    expect(published.body).toContain('Published the docs (openapi 3.0.3, 2 operations)');
    expect(await listMappingRules(h.store.db, serviceId)).toEqual([]);
    const imported = await admin.submit(`/admin/services/${serviceId}/openapi`, {
      document: yaml,
      intent: 'import',
    });
    expect(imported.body).toContain('Imported 2 operations');
    const metrics = await listMetrics(h.store.db, serviceId);
    expect(metrics.map((m) => m.systemName).sort()).toEqual(['geocode', 'get_tile', 'hits']);
    expect((await listMappingRules(h.store.db, serviceId)).map((r) => r.pattern)).toContain(
      '/tiles/{z}/{x}/{y}$',
    );
    const notDoc = await admin.submit(`/admin/services/${serviceId}/openapi`, { document: 'just: text' });
    expect(notDoc.statusCode).toBe(400);

    const created = await admin.post(`/admin/services/${serviceId}/plans`, {
      name: 'Basic',
      systemName: 'basic',
      state: 'published',
    });
    const planId = created.headers.location?.toString().split('/').pop() ?? '';
    const grid = await admin.get(`/admin/plans/${planId}`);
    expect(grid.body).toContain('data-testid="limits-grid"');
    const tile = metrics.find((m) => m.systemName === 'get_tile')!;
    const hits = metrics.find((m) => m.systemName === 'hits')!;
    const geocode = metrics.find((m) => m.systemName === 'geocode')!;
    const saved = await admin.post(`/admin/plans/${planId}/limits`, {
      [`limit_${hits.id}_minute`]: '100',
      [`limit_${tile.id}_day`]: '5000',
      enabled: [hits.id, tile.id],
    });
    expect(saved.body).toContain('Limits saved.');
    let plan = await getPlan(h.store.db, planId);
    expect(plan.limits.map((l) => `${l.metricId}:${l.period}:${l.value}`).sort()).toEqual(
      [`${hits.id}:minute:100`, `${tile.id}:day:5000`].sort(),
    );
    expect(plan.disabledMetricIds).toEqual([geocode.id]);
    const badCell = await admin.post(`/admin/plans/${planId}/limits`, { [`limit_${hits.id}_hour`]: 'lots' });
    expect(badCell.statusCode).toBe(400);
    await admin.get(`/admin/plans/${planId}`);
    await admin.post(`/admin/plans/${planId}/limits`, {
      [`limit_${tile.id}_day`]: '6000',
      enabled: [hits.id, tile.id, geocode.id],
    });
    plan = await getPlan(h.store.db, planId);
    expect(plan.limits.map((l) => `${l.metricId}:${l.period}:${l.value}`)).toEqual([`${tile.id}:day:6000`]);
    expect(plan.disabledMetricIds).toEqual([]);
  });

  it('edits portal branding and shows the SSO secret only when it is made', async () => {
    await admin.get('/admin/portal-settings');
    const bad = await admin.post('/admin/portal-settings', {
      name: 'Dev Hub',
      primaryColor: 'red',
      accentColor: '#000000',
      signupMode: 'open',
    });
    expect(bad.statusCode).toBe(400);
    const ok = await admin.post('/admin/portal-settings', {
      name: 'Weather Dev Hub',
      primaryColor: '#123456',
      accentColor: '#abcdef',
      signupMode: 'approval',
      footerLinks: 'Terms | https://weather.test/terms',
      customCss: 'body { letter-spacing: 0 }',
    });
    expect(ok.body).toContain('Settings saved.');
    expect((await getPortalSettings(h.store.db)).signupMode).toBe('approval');
    const home = await h.agent().get('/');
    expect(home.body).toContain('Weather Dev Hub');
    expect(home.body).toContain('https://weather.test/terms');
    expect((await h.agent().get('/theme.css')).body).toContain('--primary:#123456');

    const page = await admin.get('/admin/portal-settings');
    expect(page.body).not.toMatch(/value="trsso_/);
    const rotated = await admin.post('/admin/portal-settings/sso-secret', {});
    expect(rotated.body).toMatch(/id="sso-secret" readonly value="trsso_/);
  });

  it('creates an admin API token shown once that works on the management API', async () => {
    await admin.get('/admin/tokens');
    const res = await admin.submit('/admin/tokens', { name: 'ci', scope: 'read' });
    const token = /id="new-token" readonly value="(trat_[A-Za-z0-9]+)"/.exec(res.body)?.[1] ?? '';
    expect(token).toMatch(/^trat_/);
    const api = await h.app.inject({
      method: 'GET',
      url: '/admin/api/services',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(api.statusCode).toBe(200);
    expect((await admin.get('/admin/tokens')).body).not.toContain(token);
  });

  it('shows the mail outbox and renders the dashboard', async () => {
    await h.agent().get('/password-reset');
    const asker = h.agent();
    await asker.get('/password-reset');
    await asker.post('/password-reset', { email: 'dev@console.test' });
    const mail = await admin.get('/admin/mail');
    expect(mail.body).toContain('dev@console.test');
    expect(mail.body).toContain('Reset your password');
    const dash = await admin.get('/admin');
    expect(dash.statusCode).toBe(200);
    expect(dash.body).toContain('calls today');
  });

  it('signs out', async () => {
    const agent = await signInAdmin(h);
    await agent.get('/admin');
    expect((await agent.post('/admin/logout', {})).statusCode).toBe(303);
    expect((await agent.get('/admin')).statusCode).toBe(303);
  });
});
