/**
 * Everything the console does has a management API operation (issue 12, item 7): a provider running its programme
 * from its own code (the customer programme of seed 002) needs no console. Every action of the console (a POST
 * under /admin) is mapped here to the operation that does the same; a new console action without one fails.
 */
import type { RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlApp } from '../../src/control/index.js';
import { verifySsoToken, signSsoToken } from '../../src/portal/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { type ComposedControl, startComposedControl } from '../support/control.js';
import type { TestStore } from '../support/stores.js';
import { createAdminToken, createAdminUser } from '../../src/access/index.js';
import { createMetric, createService, listEndUserLimits } from '../../src/catalog/index.js';
import { WebAgent } from '../portal/web-agent.js';
import { systemActor } from '../../src/events/index.js';
import { webKey } from '../../src/portal/index.js';

/** Console action → the management API operation doing the same (`null`: the console's own session). */
const parity: Record<string, string | null> = {
  'POST /admin/login': null,
  'POST /admin/logout': null,
  'POST /admin/accounts/{id}/{action}': 'POST /admin/api/accounts/{id}/approve',
  'POST /admin/applications/{id}/plan': 'POST /admin/api/applications/{id}/change-plan',
  'POST /admin/applications/{id}/oauth': 'PATCH /admin/api/applications/{id}/oauth',
  'POST /admin/applications/{id}/delete': 'DELETE /admin/api/applications/{id}',
  'POST /admin/applications/{id}/decline-plan': 'POST /admin/api/applications/{id}/decline-plan',
  'POST /admin/applications/{id}/{action}': 'POST /admin/api/applications/{id}/approve',
  'POST /admin/golive/{id}/{action}': 'POST /admin/api/golive/requests/{id}/approve',
  'POST /admin/custom-fields': 'POST /admin/api/custom-fields',
  'POST /admin/custom-fields/{id}': 'PATCH /admin/api/custom-fields/{id}',
  'POST /admin/custom-fields/{id}/delete': 'DELETE /admin/api/custom-fields/{id}',
  'POST /admin/portal-settings': 'PATCH /admin/api/portal-settings',
  'POST /admin/portal-settings/sso-secret': 'POST /admin/api/portal-settings/sso-secret',
  'POST /admin/admin-users': 'POST /admin/api/admin-users',
  'POST /admin/admin-users/{id}/delete': 'DELETE /admin/api/admin-users/{id}',
  'POST /admin/tokens': 'POST /admin/api/admin-tokens',
  'POST /admin/tokens/{id}/revoke': 'POST /admin/api/admin-tokens/{id}/revoke',
  'POST /admin/services': 'POST /admin/api/services',
  'POST /admin/services/{id}/delete': 'DELETE /admin/api/services/{id}',
  'POST /admin/services/{id}': 'PATCH /admin/api/services/{id}',
  'POST /admin/services/{id}/oauth': 'PATCH /admin/api/services/{id}/oauth',
  'POST /admin/services/{id}/oauth/login-secret': 'POST /admin/api/services/{id}/oauth/login-secret',
  'POST /admin/services/{id}/metrics': 'POST /admin/api/services/{id}/metrics',
  'POST /admin/services/{id}/metrics/{metricId}/delete': 'DELETE /admin/api/services/{id}/metrics/{childId}',
  'POST /admin/services/{id}/rules': 'POST /admin/api/services/{id}/mapping-rules',
  'POST /admin/services/{id}/rules/{ruleId}/delete':
    'DELETE /admin/api/services/{id}/mapping-rules/{childId}',
  'POST /admin/services/{id}/openapi': 'PUT /admin/api/services/{id}/openapi',
  'POST /admin/services/{id}/plans': 'POST /admin/api/services/{id}/plans',
  'POST /admin/services/{id}/end-user-limits': 'PUT /admin/api/services/{id}/end-user-limits',
  'POST /admin/services/{id}/end-user-limits/{limitId}/delete':
    'DELETE /admin/api/services/{id}/end-user-limits/{childId}',
  'POST /admin/plans/{id}': 'PATCH /admin/api/plans/{id}',
  'POST /admin/plans/{id}/delete': 'DELETE /admin/api/plans/{id}',
  'POST /admin/plans/{id}/default': 'POST /admin/api/plans/{id}/make-default',
  'POST /admin/plans/{id}/limits': 'PUT /admin/api/plans/{id}/limits',
  'POST /admin/insights/{id}/{action}': 'POST /admin/api/findings/{id}/acknowledge',
  'POST /admin/portal-settings/mail-templates/{key}': 'PUT /admin/api/mail-templates/{key}',
  'POST /admin/portal-settings/mail-templates/{key}/preview': 'POST /admin/api/mail-templates/{key}/preview',
  'POST /admin/portal-settings/mail-templates/{key}/reset': 'DELETE /admin/api/mail-templates/{key}',
  'POST /admin/portal-settings/pages': 'POST /admin/api/content-pages',
  'POST /admin/portal-settings/pages/{id}': 'PATCH /admin/api/content-pages/{id}',
  'POST /admin/portal-settings/pages/{id}/delete': 'DELETE /admin/api/content-pages/{id}',
  'POST /admin/portal-settings/showcase': 'PUT /admin/api/applications/{id}/showcase',
  'POST /admin/portal-settings/showcase/{id}/delete': 'DELETE /admin/api/applications/{id}/showcase',
  'POST /admin/portal-settings/favicon': 'PUT /admin/api/portal-settings/favicon',
  'POST /admin/portal-settings/favicon/delete': 'DELETE /admin/api/portal-settings/favicon',
  'POST /admin/services/{id}/certification': 'PUT /admin/api/services/{id}/certification-plan',
  'POST /admin/services/{id}/certification/delete': 'DELETE /admin/api/services/{id}/certification-plan',
  'POST /admin/certification/evidence/{id}/review': 'POST /admin/api/certification/evidence/{id}/review',
  'POST /admin/webhooks': 'POST /admin/api/webhooks/endpoints',
  'POST /admin/webhooks/{id}': 'PATCH /admin/api/webhooks/endpoints/{id}',
  'POST /admin/webhooks/{id}/enabled': 'PATCH /admin/api/webhooks/endpoints/{id}',
  'POST /admin/webhooks/{id}/rotate': 'POST /admin/api/webhooks/endpoints/{id}/rotate-secret',
  'POST /admin/webhooks/{id}/test': 'POST /admin/api/webhooks/endpoints/{id}/test',
  'POST /admin/webhooks/{id}/delete': 'DELETE /admin/api/webhooks/endpoints/{id}',
  'POST /admin/webhooks/{id}/recover': 'POST /admin/api/webhooks/endpoints/{id}/recover',
  'POST /admin/webhooks/{id}/messages/{messageId}/replay':
    'POST /admin/api/webhooks/endpoints/{id}/messages/{childId}/replay',
  'POST /admin/webhooks/partners/{appId}/{id}/enabled':
    'PATCH /admin/api/applications/{id}/webhook-endpoints/{childId}',
  'POST /admin/webhooks/partners/{appId}/{id}/messages/{messageId}/replay':
    'POST /admin/api/applications/{id}/webhook-endpoints/{childId}/messages/{messageId}/replay',
  // the provider's endpoint routes reach partners' endpoints by id (docs/webhooks.md)
  'POST /admin/webhooks/partners/{appId}/{id}/recover': 'POST /admin/api/webhooks/endpoints/{id}/recover',
};

let composed: ComposedControl;
let app: ControlApp;
let store: TestStore;
let registered: RouteOptions[];

beforeAll(async () => {
  composed = await startComposedControl();
  ({ app, store, registered } = composed);
});
afterAll(() => composed.close());

const operationsOf = (route: RouteOptions) =>
  (Array.isArray(route.method) ? route.method : [route.method]).map(
    (m) => `${m} ${route.url.replace(/:([A-Za-z]+)/g, '{$1}')}`,
  );

describe('console and management API parity', () => {
  it('maps every console action to a management API operation that exists', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/admin/api/openapi.json' })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    const api = new Set(
      Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`),
      ),
    );
    const actions = registered
      .filter((r) => r.url.startsWith('/admin/') && !r.url.startsWith('/admin/api'))
      .flatMap(operationsOf)
      .filter((op) => !op.startsWith('GET ') && !op.startsWith('HEAD '));
    const unmapped = actions.filter((op) => !(op in parity));
    expect(unmapped).toEqual([]);
    const missing = actions
      .filter((op) => parity[op] && !api.has(parity[op]!))
      .map((op) => `${op} → ${parity[op]}`);
    expect(missing).toEqual([]);
  });

  it('makes a new SSO secret through the management API, the one the portal then checks tokens with', async () => {
    const token = await createAdminToken({ db: store.db, clock: new ManualClock() }, systemActor, {
      name: 'sso',
      scope: 'read_write',
    });
    const before = await webKey(store.db, new ManualClock(), 'sso');
    const res = await app.inject({
      method: 'POST',
      url: '/admin/api/portal-settings/sso-secret',
      headers: { authorization: `Bearer ${token.token}` },
    });
    expect(res.statusCode).toBe(201);
    const { secret } = res.json() as { secret: string };
    expect(secret).toMatch(/^trsso_/);
    expect(secret).not.toBe(before);
    expect(await webKey(store.db, new ManualClock(), 'sso')).toBe(secret);
    const now = Date.UTC(2026, 5, 1, 12);
    const signed = signSsoToken(secret, { email: 'dev@customer.test', exp: now / 1000 + 60 });
    expect(verifySsoToken(secret, signed, now)).toMatchObject({ ok: true });
    expect(verifySsoToken(before, signed, now)).toMatchObject({ ok: false });
  });

  it('sets the end-user limits of a whole service in the console, as PUT /services/{id}/end-user-limits does (item 9)', async () => {
    const deps = { db: store.db, clock: new ManualClock() };
    const service = await createService(deps, systemActor, {
      name: 'Tweets',
      systemName: 'tweets-console',
      upstreamProduction: 'http://tweets.test',
    });
    const method = await createMetric(deps, systemActor, service.id, 'method', {
      systemName: 'mentions',
      friendlyName: 'Mentions',
    });
    await createAdminUser(deps, systemActor, {
      email: 'ops@tweets.test',
      name: 'Ops',
      password: 'console-password-1',
    });
    const admin = new WebAgent(app);
    await admin.get('/admin/login');
    await admin.post('/admin/login', { email: 'ops@tweets.test', password: 'console-password-1' });
    await admin.get(`/admin/services/${service.id}`);
    const saved = await admin.submit(`/admin/services/${service.id}/end-user-limits`, {
      endUserKeySource: 'header',
      endUserKeyName: 'X-Twitter-User',
      metricId: method.id,
      period: 'minute',
      value: '15',
    });
    // the page again with a notice, or a redirect to it (POST → redirect → GET)
    expect([200, 303]).toContain(saved.statusCode);
    expect(await listEndUserLimits(store.db, service.id)).toEqual([
      expect.objectContaining({ metricId: method.id, period: 'minute', value: 15 }),
    ]);
    const page = (await admin.get(`/admin/services/${service.id}`)).body;
    expect(page).toContain('value="X-Twitter-User"');
    expect(page).toMatch(
      /data-testid="end-user-limits">[\s\S]*<code>mentions<\/code><\/td><td>minute<\/td><td>15</,
    );
  });
});
