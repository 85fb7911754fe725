/**
 * The customer programme of seed 002 (SendGrid-style), set up as its article does, on SQLite and PostgreSQL,
 * read as the article's checklist (issue 12):
 * - a metric per API, a rule for every HTTP method on each API's path, `api_user` / `api_key` in the query string;
 * - Bronze, Silver, Gold and Platinum plans without approval, Bronze with the Web API only, and an overall
 *   throttle on hits that applies to every call (item 2), with a warning for what escapes it;
 * - the provider's Swagger 2.0 spec published as interactive docs, changing nothing that is counted (items 1, 3);
 * - accounts made by signup express from the provider's own code, portal signup closed, single sign-on with a secret
 *   made through the management API (item 7);
 * - the portal tells the customer to send the credentials as query parameters (item 6);
 * - a key created through the API works on the next call (item 8);
 * - usage per application and metric read through the management API, the same numbers as the portal (item 10).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signSsoToken } from '../../src/portal/index.js';
import type { WebAgent } from '../portal/web-agent.js';
import { dialects } from '../support/stores.js';
import { type Programme, startProgramme } from './programme-harness.js';

interface Metric {
  id: string;
  systemName: string;
  parentId: string | null;
}
interface Plan {
  id: string;
  name: string;
  warnings?: { metricId: string; message: string }[];
}

const swaggerSpec = [
  "swagger: '2.0'",
  'info: {title: SendGrid Web API, version: "2"}',
  'host: api.sendgrid.test',
  'basePath: /api',
  'paths:',
  '  /mail.send.json:',
  '    post: {operationId: mailSend, summary: Send a mail, responses: {"200": {description: sent}}}',
  '  /bounces.get.json:',
  '    get: {operationId: bouncesGet, responses: {"200": {description: the bounces}}}',
].join('\n');

describe.each(dialects)('customer programme, SendGrid-style (%s)', (dialect) => {
  let p: Programme;
  let serviceId: string;
  let hits: Metric;
  const metrics: Record<string, Metric> = {};
  const plans: Record<string, Plan> = {};
  let customer: { accountId: string; applicationId: string; appId: string; key: string; email: string };
  let browser: WebAgent;

  beforeAll(async () => {
    p = await startProgramme(dialect);
  });
  afterAll(() => p.close());

  it('defines the API: a metric per SendGrid API, counted on hits, a rule for every HTTP method, query credentials', async () => {
    const service = await p.api<{ id: string; secretToken: string | null }>('POST', '/services', {
      name: 'SendGrid',
      systemName: 'sendgrid',
      upstreamProduction: p.upstream.url,
      upstreamSandbox: p.upstream.url,
      authMode: 'app_id_app_key',
      credentialsLocation: 'query',
      appIdName: 'api_user',
      appKeyName: 'api_key',
    });
    serviceId = service.id;
    hits = (await p.api<{ data: Metric[] }>('GET', `/services/${serviceId}/metrics`)).data[0]!;
    for (const [systemName, friendlyName, pattern] of [
      ['web_api', 'Web API v2', '/api/'],
      ['v3_api', 'Web API v3', '/v3/'],
      ['parse_api', 'Parse API', '/parse/'],
    ] as const) {
      const metric = await p.api<Metric>('POST', `/services/${serviceId}/metrics`, {
        systemName,
        friendlyName,
        parent: 'hits',
      });
      expect(metric.parentId).toBe(hits.id);
      metrics[systemName] = metric;
      await p.api('POST', `/services/${serviceId}/mapping-rules`, {
        httpMethod: 'ANY',
        pattern,
        metricId: metric.id,
      });
    }
  });

  it('publishes the Swagger 2.0 spec as interactive docs without changing what is counted (items 1 and 3)', async () => {
    const rulesBefore = (await p.api<{ data: unknown[] }>('GET', `/services/${serviceId}/mapping-rules`))
      .data;
    const res = await p.apiRaw('PUT', `/services/${serviceId}/openapi`, swaggerSpec, 'application/yaml');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ version: 'swagger 2.0', operations: 2 });
    expect((await p.api<{ data: unknown[] }>('GET', `/services/${serviceId}/mapping-rules`)).data).toEqual(
      rulesBefore,
    );
    expect((await p.api<{ data: unknown[] }>('GET', `/services/${serviceId}/methods`)).data).toEqual([]);
    const docs = (await p.browser().get(`/apis/${serviceId}/openapi.json`)).json();
    expect(docs).toMatchObject({ swagger: '2.0', basePath: `/try/${serviceId}/api` });
    expect(docs.securityDefinitions).toMatchObject({
      appId: { in: 'query', name: 'api_user' },
      appKey: { in: 'query', name: 'api_key' },
    });
  });

  it('makes Bronze, Silver, Gold and Platinum plans; Bronze has the Web API only and a throttle on hits (item 2)', async () => {
    for (const name of ['Bronze', 'Silver', 'Gold', 'Platinum']) {
      plans[name] = await p.api<Plan>('POST', `/services/${serviceId}/plans`, {
        name,
        systemName: name.toLowerCase(),
        approvalRequired: false,
      });
    }
    for (const m of ['v3_api', 'parse_api']) {
      await p.api('PUT', `/plans/${plans.Bronze!.id}/disabled-methods/${metrics[m]!.id}`);
    }
    const throttle = await p.api<{ warnings: unknown[] }>('PUT', `/plans/${plans.Bronze!.id}/limits`, {
      metricId: hits.id,
      period: 'minute',
      value: 5,
    });
    expect(throttle.warnings).toEqual([]);
    expect((await p.api<Plan>('GET', `/plans/${plans.Bronze!.id}`)).warnings).toEqual([]);
  });

  it('warns in the API and the console when a metric escapes the hits throttle (item 2)', async () => {
    const marketing = await p.api<Metric>('POST', `/services/${serviceId}/metrics`, {
      systemName: 'marketing_api',
      friendlyName: 'Marketing API',
    });
    expect(marketing.parentId).toBeNull();
    await p.api('POST', `/services/${serviceId}/mapping-rules`, {
      httpMethod: 'ANY',
      pattern: '/marketing/',
      metricId: marketing.id,
    });
    const plan = await p.api<Plan>('GET', `/plans/${plans.Bronze!.id}`);
    expect(plan.warnings).toEqual([
      expect.objectContaining({ metricId: hits.id, message: expect.stringContaining('marketing_api') }),
    ]);
    await p.api('POST', '/admin-users', {
      email: 'ops@sendgrid.test',
      name: 'Ops',
      password: 'console-password-1',
    });
    const admin = p.browser();
    await admin.get('/admin/login');
    await admin.post('/admin/login', { email: 'ops@sendgrid.test', password: 'console-password-1' });
    const page = (await admin.get(`/admin/plans/${plans.Bronze!.id}`)).body;
    expect(page).toContain('data-testid="limit-warnings"');
    expect(page).toContain('standalone metrics marketing_api');
    // the provider follows the warning: the marketing API goes away
    await p.api('DELETE', `/services/${serviceId}/metrics/${marketing.id}`);
    expect((await p.api<Plan>('GET', `/plans/${plans.Bronze!.id}`)).warnings).toEqual([]);
  });

  it('creates customer accounts from its own code by signup express, and closes portal signup', async () => {
    const created = await p.api<{
      account: { id: string };
      application: { id: string; appId: string; secret: { value: string } };
    }>('POST', '/signup', {
      account: { name: 'Acme Mail' },
      user: { email: 'dev@acme.test', name: 'Acme Dev' },
      application: { serviceId, planId: plans.Bronze!.id, name: 'Acme mailer' },
    });
    customer = {
      accountId: created.account.id,
      applicationId: created.application.id,
      appId: created.application.appId,
      key: created.application.secret.value,
      email: 'dev@acme.test',
    };
    await p.api('PATCH', '/portal-settings', { signupMode: 'closed' });
    const signup = await p.browser().get('/signup');
    expect(signup.body).not.toContain('name="organization"');
  });

  it('signs the customer into the portal with an SSO secret made through the management API (item 7)', async () => {
    const { secret } = await p.api<{ secret: string }>('POST', '/portal-settings/sso-secret');
    browser = p.browser();
    const token = signSsoToken(secret, { email: customer.email, exp: p.clock.now() / 1000 + 60 });
    const landed = await browser.get(`/sso?token=${encodeURIComponent(token)}`);
    expect(landed.statusCode).toBe(303);
    expect((await browser.get('/apps')).body).toContain('Acme mailer');
  });

  it('tells the customer to send api_user and api_key as query parameters (item 6)', async () => {
    const page = (await browser.get(`/apps/${customer.applicationId}`)).body;
    expect(page).toMatch(/data-testid="app-id-place">query parameter <code>api_user<\/code>/);
    expect(page).toMatch(/data-testid="app-key-place"><code>api_key<\/code> query parameter/);
    expect(page).not.toContain('(header <code>api_user');
  });

  it('lets Bronze call the Web API with query credentials, refuses the others, and throttles hits per minute (item 2)', async () => {
    const q = `api_user=${customer.appId}&api_key=${encodeURIComponent(customer.key)}`;
    expect((await p.call(`/sendgrid/api/mail.send.json?${q}`, {}, 'POST')).status).toBe(200);
    expect((await p.call(`/sendgrid/v3/mail/send?${q}`, {}, 'POST')).status).toBe(403);
    expect((await p.call(`/sendgrid/api/bounces.get.json?${q}`)).status).toBe(200);
    // without the credentials in the query (in headers instead), the call is refused
    const inHeaders = await p.call('/sendgrid/api/bounces.get.json', {
      api_user: customer.appId,
      api_key: customer.key,
    });
    expect(inHeaders.status).toBe(401);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await p.call(`/sendgrid/api/bounces.get.json?${q}`)).status);
    // 5 a minute on hits, though every rule counts a metric: 2 + 3 calls pass, the 4th of this loop does not
    expect(statuses).toEqual([200, 200, 200, 429]);
    p.clock.advance(60_000);
    expect((await p.call(`/sendgrid/api/bounces.get.json?${q}`)).status).toBe(200);
  });

  it('accepts a key created through the API on the very next call (item 8)', async () => {
    p.clock.advance(60_000);
    const fresh = await p.api<{ value: string }>('POST', `/applications/${customer.applicationId}/keys`);
    const res = await p.call(
      `/sendgrid/api/mail.send.json?api_user=${customer.appId}&api_key=${encodeURIComponent(fresh.value)}`,
      {},
      'POST',
    );
    expect(res.status).toBe(200);
  });

  it('reads usage per application and metric through the management API, as the portal shows it (item 10)', async () => {
    await p.flushUsage();
    const from = new Date(p.clock.now() - 29 * 86_400_000).toISOString();
    const to = new Date(p.clock.now() + 1).toISOString();
    const usage = await p.api<{
      applications: { applicationId: string; metrics: { systemName: string; total: number }[] }[];
    }>('GET', `/accounts/${customer.accountId}/usage?granularity=day&from=${from}&to=${to}`);
    expect(usage.applications.map((a) => a.applicationId)).toEqual([customer.applicationId]);
    const totals = Object.fromEntries(usage.applications[0]!.metrics.map((m) => [m.systemName, m.total]));
    // accepted calls: 2 + 1 (before the loop) + 3 (the loop) + 1 (next minute) + 1 (new key)
    expect(totals).toMatchObject({ hits: 7, web_api: 7, v3_api: 0, parse_api: 0 });
    const portal = (await browser.get(`/apps/${customer.applicationId}/usage`)).body;
    for (const [name, total] of Object.entries(totals)) {
      expect(portal).toContain(`data-testid="total-month-${name}">${total}<`);
    }
  });
});
