/**
 * Security checks for every route of the management API, driven by its own OpenAPI document so a new route cannot
 * escape them: no token → 401, a read-only token writing → 403, an id that does not exist or is of another kind → 404.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlHarness, startControl } from '../support/control.js';

/** A body that passes validation for each route that takes one, so the 404 check reaches the handler. */
const validBodies: Record<string, unknown> = {
  'POST /services': { name: 'S', systemName: 'sec-s', upstreamProduction: 'http://s.test' },
  'PATCH /services/{id}': { name: 'S2' },
  'PUT /services/{id}/openapi': { openapi: '3.1.0', paths: {} },
  'POST /services/{id}/openapi/import': { openapi: '3.1.0', paths: {} },
  'POST /services/{id}/metrics': { systemName: 'm', friendlyName: 'M' },
  'PATCH /services/{id}/metrics/{childId}': { friendlyName: 'M2' },
  'POST /services/{id}/methods': { systemName: 'm', friendlyName: 'M' },
  'PATCH /services/{id}/methods/{childId}': { friendlyName: 'M2' },
  'POST /services/{id}/mapping-rules': { httpMethod: 'GET', pattern: '/x', metricId: 'met_nope' },
  'PATCH /services/{id}/mapping-rules/{childId}': { delta: 2 },
  'POST /services/{id}/plans': { name: 'P', systemName: 'p' },
  'PATCH /plans/{id}': { name: 'P2' },
  'PUT /plans/{id}/limits': { metricId: 'met_nope', period: 'day', value: 1 },
  'PUT /services/{id}/end-user-limits': { metricId: 'met_nope', period: 'day', value: 1 },
  'POST /signup': {
    account: { name: 'A' },
    user: { email: 'a@sec.test', name: 'A' },
    application: { serviceId: 'svc_nope', name: 'App' },
  },
  'POST /accounts': { name: 'A' },
  'PATCH /accounts/{id}': { name: 'A2' },
  'POST /accounts/{id}/users': { email: 'u@sec.test', name: 'U' },
  'PATCH /users/{id}': { name: 'U2' },
  'POST /accounts/{id}/invitations': { email: 'i@sec.test' },
  'POST /invitations/accept': { token: 'inv_nope', name: 'I', password: 'long enough password' },
  'POST /applications': { accountId: 'acc_nope', serviceId: 'svc_nope', name: 'App' },
  'PATCH /applications/{id}': { name: 'App2' },
  'POST /applications/{id}/change-plan': { planId: 'pln_nope' },
  'POST /custom-fields': { target: 'account', name: 'vat', label: 'VAT' },
  'PATCH /custom-fields/{id}': { label: 'VAT2' },
  'POST /admin-users': { email: 'adm@sec.test', name: 'Adm', password: 'long enough password' },
  'POST /admin-tokens': { name: 't', scope: 'read' },
  'PATCH /portal-settings': { name: 'Portal' },
  'PATCH /services/{id}/oauth': { accessTokenTtl: 300 },
  'PATCH /applications/{id}/oauth': { redirectUris: [] },
  'POST /oauth/signing-keys/rotate': {},
  'POST /applications/{id}/golive': { note: 'ready' },
  'POST /golive/requests/{id}/approve': {},
  'POST /golive/requests/{id}/reject': { comment: 'not yet' },
  'POST /golive/requests/{id}/revoke': { comment: 'abuse' },
  'POST /webhooks/endpoints': { url: 'https://hooks.sec.test/in', eventTypes: ['account.created'] },
  'PATCH /webhooks/endpoints/{id}': { description: 'd' },
  'POST /webhooks/endpoints/{id}/rotate-secret': {},
  'POST /webhooks/endpoints/{id}/recover': { since: '2026-01-01T00:00:00Z' },
  'PATCH /services/{id}/insight-settings': { minCalls: 10 },
  'POST /certification/evidence/{id}/review': { decision: 'accepted' },
  'PUT /services/{id}/certification-plan': {},
  'POST /applications/{id}/certification-runs': {},
  'POST /certification-runs/{id}/evaluate': {},
  'POST /certification-runs/{id}/cancel': {},
  'POST /services/{id}/event-types': {
    name: 'order.created',
    description: 'An order was placed',
    schema: { type: 'object' },
    example: {},
  },
  'PATCH /services/{id}/event-types/{name}': { description: 'An order was placed.' },
  'POST /events': { type: 'order.created', payload: {} },
  'POST /applications/{id}/webhook-endpoints': {
    url: 'https://hooks.sec.test/in',
    eventTypes: ['order.created'],
  },
  'PATCH /applications/{id}/webhook-endpoints/{childId}': { url: 'https://hooks.sec.test/in2' },
  'POST /applications/{id}/webhook-endpoints/{childId}/rotate-secret': {},
  'PUT /mail-templates/{key}': { subject: 'Welcome', body: 'Hello {{name}}' },
  'POST /mail-templates/{key}/preview': {},
  'POST /content-pages': { slug: 'sec', title: 'Security', body: 'Hello' },
  'PATCH /content-pages/{id}': { title: 'Security 2' },
  'PUT /applications/{id}/showcase': { featured: true, name: 'App', description: 'It does things' },
  'PUT /portal-settings/favicon': { image: 'AAAA' },
};

/** A query that passes validation for each route that requires one, for the same reason. */
const validQueries: Record<string, string> = {
  'GET /applications/{id}/oauth/tokens-issued': '?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z',
  'GET /usage': '?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z',
  'GET /traffic': '?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z',
  'GET /accounts/{id}/usage': '?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z',
};

interface Operation {
  method: string;
  path: string;
  hasBody: boolean;
}

let h: ControlHarness;
const operations: Operation[] = [];
let otherKindId = '';

beforeAll(async () => {
  h = await startControl('sqlite');
  const doc = (await h.app.inject({ method: 'GET', url: '/admin/api/openapi.json' })).json() as {
    paths: Record<string, Record<string, { requestBody?: unknown }>>;
  };
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      operations.push({
        method: method.toUpperCase(),
        path: path.replace(/^\/admin\/api/, ''),
        hasBody: !!op.requestBody,
      });
    }
  }
  // An id that exists, but of a kind no route takes at {id}: an audit entry.
  await h.call('POST', '/admin/api/accounts', { name: 'Someone' });
  otherKindId = (await h.call('GET', '/admin/api/audit-log?limit=1')).json().data[0].id;
});
afterAll(() => h.close());

function urlOf(op: Operation, id: string): string {
  const query = validQueries[`${op.method} ${op.path}`] ?? '';
  const path = op.path
    .replace('{id}', id)
    .replace('{childId}', id)
    .replace('{name}', 'order.created')
    .replace('{key}', 'signup');
  return `/admin/api${path}${query}`;
}

function bodyOf(op: Operation): unknown {
  if (!op.hasBody) return undefined;
  const body = validBodies[`${op.method} ${op.path}`];
  if (body === undefined)
    throw new Error(`security test: give ${op.method} ${op.path} a valid body in validBodies`);
  return body;
}

describe('management API security', () => {
  it('documents a good number of operations', () => {
    expect(operations.length).toBeGreaterThan(50);
  });

  it('refuses every operation without a token, or with a bad one (401)', async () => {
    for (const op of operations) {
      const none = await h.call(op.method as 'GET', urlOf(op, 'svc_x'), bodyOf(op), null);
      expect(none.statusCode, `${op.method} ${op.path}`).toBe(401);
      expect(none.json().error.code).toBe('unauthenticated');
      const bad = await h.call(
        op.method as 'GET',
        urlOf(op, 'svc_x'),
        bodyOf(op),
        'trat_notARealTokenAtAll000000000000',
      );
      expect(bad.statusCode, `${op.method} ${op.path}`).toBe(401);
    }
  });

  it('refuses every write with a read-only token (403) and lets reads through', async () => {
    for (const op of operations) {
      const res = await h.call(op.method as 'GET', urlOf(op, 'svc_x'), bodyOf(op), h.readToken);
      if (op.method === 'GET') expect(res.statusCode, `${op.method} ${op.path}`).not.toBe(403);
      else {
        expect(res.statusCode, `${op.method} ${op.path}`).toBe(403);
        expect(res.json().error.code).toBe('forbidden');
      }
    }
  });

  it('answers 404 for ids that do not exist or are of another kind', async () => {
    const withId = operations.filter((op) => op.path.includes('{id}'));
    expect(withId.length).toBeGreaterThan(30);
    for (const op of withId) {
      for (const id of ['svc_0000000000000000000000000x', 'app_0000000000000000000000000x', otherKindId]) {
        const res = await h.call(op.method as 'GET', urlOf(op, id), bodyOf(op));
        expect(res.statusCode, `${op.method} ${op.path} with ${id}`).toBe(404);
        expect(res.json().error.code).toBe('not_found');
      }
    }
  });

  it('stops revoked tokens', async () => {
    const created = (
      await h.call('POST', '/admin/api/admin-tokens', { name: 'short-lived', scope: 'read' })
    ).json();
    expect((await h.call('GET', '/admin/api/services', undefined, created.token)).statusCode).toBe(200);
    await h.call('POST', `/admin/api/admin-tokens/${created.id}/revoke`);
    expect((await h.call('GET', '/admin/api/services', undefined, created.token)).statusCode).toBe(401);
  });

  it('never returns stored secrets or hashes', async () => {
    const list = await h.call('GET', '/admin/api/admin-tokens');
    expect(list.body).not.toMatch(/secret_hash|secretHash|password/i);
    expect(list.body).not.toContain(h.writeToken);
  });
});
