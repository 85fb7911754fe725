/**
 * Bad input that used to reach the database and come back as a 500, on both databases: empty updates, NUL
 * characters (PostgreSQL text cannot hold them), concurrent identical writes (unique conflicts) and a document
 * nested thousands deep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';
import { type PortalHarness, startPortal } from '../portal/portal-harness.js';

function expectShape(res: { statusCode: number; json(): unknown }, status: number, code: string): void {
  expect(res.statusCode).toBe(status);
  const body = res.json() as { error: { code: string; message: string; requestId: string } };
  expect(body.error).toMatchObject({ code, message: expect.any(String), requestId: expect.any(String) });
}

describe.each(dialects)('management API hardening on %s', (dialect) => {
  let h: ControlHarness;
  let serviceId = '';
  let metricId = '';
  let methodId = '';
  let ruleId = '';
  let planId = '';
  let fieldId = '';
  let accountId = '';

  beforeAll(async () => {
    h = await startControl(dialect);
    const post = async (url: string, body: unknown) => {
      const res = await h.call('POST', url, body);
      if (res.statusCode !== 201) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
      return res.json() as { id: string };
    };
    serviceId = (
      await post('/admin/api/services', {
        name: 'H',
        systemName: 'hard',
        upstreamProduction: 'http://h.test',
      })
    ).id;
    metricId = (
      await post(`/admin/api/services/${serviceId}/metrics`, { systemName: 'bytes', friendlyName: 'Bytes' })
    ).id;
    methodId = (
      await post(`/admin/api/services/${serviceId}/methods`, { systemName: 'read', friendlyName: 'Read' })
    ).id;
    ruleId = (
      await post(`/admin/api/services/${serviceId}/mapping-rules`, {
        httpMethod: 'GET',
        pattern: '/r',
        metricId: methodId,
      })
    ).id;
    planId = (await post(`/admin/api/services/${serviceId}/plans`, { name: 'P', systemName: 'p' })).id;
    fieldId = (await post('/admin/api/custom-fields', { target: 'account', name: 'vat', label: 'VAT' })).id;
    accountId = (await post('/admin/api/accounts', { name: 'Acme' })).id;
  });
  afterAll(() => h.close());

  it('an empty PATCH changes nothing and returns the entity as it is', async () => {
    const targets = [
      `/admin/api/services/${serviceId}`,
      `/admin/api/services/${serviceId}/metrics/${metricId}`,
      `/admin/api/services/${serviceId}/methods/${methodId}`,
      `/admin/api/services/${serviceId}/mapping-rules/${ruleId}`,
      `/admin/api/plans/${planId}`,
      `/admin/api/custom-fields/${fieldId}`,
      `/admin/api/accounts/${accountId}`,
      '/admin/api/portal-settings',
    ];
    for (const url of targets) {
      const before = await h.call('GET', url);
      const res = await h.call('PATCH', url, {});
      expect(res.statusCode, url).toBe(200);
      // a plan read alone also carries the warnings of its limits; the rest is the entity as it was
      const { warnings: _warnings, ...entity } = before.json();
      expect(res.json(), url).toMatchObject(entity);
    }
  });

  it('refuses NUL characters in ids, queries and bodies with 400 validation_failed', async () => {
    const cases = [
      await h.call('GET', '/admin/api/services/svc%00x'),
      await h.call('GET', `/admin/api/services/${serviceId}/metrics/met%00x`),
      await h.call('DELETE', '/admin/api/accounts/acc%00'),
      await h.call('GET', '/admin/api/accounts?q=a%00b'),
      await h.call('GET', '/admin/api/applications?accountId=%00'),
      await h.call('GET', '/admin/api/audit-log?cursor=%00'),
      await h.call('POST', '/admin/api/accounts', { name: 'A\u0000B' }),
      await h.call('PATCH', `/admin/api/accounts/${accountId}`, { customFields: { 'v\u0000at': 'x' } }),
      await h.call('PATCH', `/admin/api/services/${serviceId}/metrics/${metricId}`, {
        description: '\u0000',
      }),
      await h.call('POST', '/admin/api/services', {
        name: 'N',
        systemName: 'nul',
        upstreamProduction: 'http://n.test',
        description: 'a\u0000',
      }),
    ];
    for (const res of cases) {
      expectShape(res, 400, 'validation_failed');
      expect(JSON.stringify(res.json().error.details)).toContain('NUL');
    }
    // nothing was written
    const accounts = (await h.call('GET', '/admin/api/accounts')).json().data as { name: string }[];
    expect(accounts.map((a) => a.name)).toEqual(['Acme']);
  });

  it('concurrent identical writes end in one result, never a 500', async () => {
    const n = 8;
    const all = <T>(f: () => Promise<T>) => Promise.all(Array.from({ length: n }, f));

    const disabled = await all(() =>
      h.call('PUT', `/admin/api/plans/${planId}/disabled-methods/${methodId}`),
    );
    expect(disabled.map((r) => r.statusCode)).toEqual(Array(n).fill(200));
    expect((await h.call('GET', `/admin/api/plans/${planId}`)).json().disabledMetricIds).toEqual([methodId]);
    const enabled = await all(() =>
      h.call('DELETE', `/admin/api/plans/${planId}/disabled-methods/${methodId}`),
    );
    expect(enabled.map((r) => r.statusCode)).toEqual(Array(n).fill(200));

    const limits = await all(() =>
      h.call('PUT', `/admin/api/plans/${planId}/limits`, { metricId: methodId, period: 'day', value: 7 }),
    );
    expect(limits.map((r) => r.statusCode)).toEqual(Array(n).fill(200));
    const plan = (await h.call('GET', `/admin/api/plans/${planId}`)).json();
    expect(plan.limits).toHaveLength(1);
    expect(new Set(limits.map((r) => r.json().id))).toEqual(new Set([plan.limits[0].id]));

    const doc = {
      openapi: '3.0.0',
      paths: { '/items': { get: { operationId: 'listItems' } }, '/items/{id}': { delete: {} } },
    };
    const imports = await all(() => h.call('POST', `/admin/api/services/${serviceId}/openapi/import`, doc));
    expect(imports.map((r) => r.statusCode)).toEqual(Array(n).fill(200));
    expect(imports.reduce((sum, r) => sum + r.json().rulesCreated, 0)).toBe(2);
    const methods = (await h.call('GET', `/admin/api/services/${serviceId}/methods`)).json().data as {
      systemName: string;
    }[];
    expect(methods.map((m) => m.systemName).sort()).toEqual(['delete_items_id', 'list_items', 'read']);
    const rules = (await h.call('GET', `/admin/api/services/${serviceId}/mapping-rules`)).json().data;
    expect(rules).toHaveLength(3);

    const metrics = await all(() =>
      h.call('POST', `/admin/api/services/${serviceId}/metrics`, { systemName: 'twice', friendlyName: 'T' }),
    );
    expect(metrics.map((r) => r.statusCode).sort()).toEqual([201, ...Array(n - 1).fill(409)]);
    for (const r of metrics.filter((m) => m.statusCode === 409)) expectShape(r, 409, 'conflict');

    const fields = await all(() =>
      h.call('POST', '/admin/api/custom-fields', { target: 'user', name: 'dept', label: 'Dept' }),
    );
    expect(fields.map((r) => r.statusCode).sort()).toEqual([201, ...Array(n - 1).fill(409)]);
  });

  it('refuses a document nested thousands deep with 400, and imports nothing', async () => {
    const deep = `${'{"a":'.repeat(5000)}{}${'}'.repeat(5000)}`;
    const res = await h.app.inject({
      method: 'PUT',
      url: `/admin/api/services/${serviceId}/openapi`,
      headers: { authorization: `Bearer ${h.writeToken}`, 'content-type': 'application/json' },
      payload: `{"openapi":"3.0.0","paths":{"/deep":{"get":{}}},"components":${deep}}`,
    });
    expectShape(res, 400, 'validation_failed');
    expect(res.json().error.message).toMatch(/nested/);
    const methods = (await h.call('GET', `/admin/api/services/${serviceId}/methods`)).json().data as {
      systemName: string;
    }[];
    expect(methods.some((m) => m.systemName === 'get_deep')).toBe(false);
  });

  it('refuses YAML nested thousands deep before parsing it (the parser recurses per level)', async () => {
    for (const yaml of [
      `openapi: 3.0.0\npaths: {}\nx: ${'['.repeat(3000)}${']'.repeat(3000)}\n`,
      `openapi: 3.0.0\npaths: {}\nx:\n  ${'- '.repeat(3000)}x\n`,
      `openapi: 3.0.0\npaths: {}\nx:\n${Array.from({ length: 200 }, (_, i) => `${' '.repeat(i + 1)}a:`).join('\n')} 1\n`,
    ]) {
      const res = await h.app.inject({
        method: 'PUT',
        url: `/admin/api/services/${serviceId}/openapi`,
        headers: { authorization: `Bearer ${h.writeToken}`, 'content-type': 'application/yaml' },
        payload: yaml,
      });
      expectShape(res, 400, 'validation_failed');
      expect(res.json().error.message).toMatch(/nested more than 64 levels/);
    }
    // a real document's nesting is far below the bound
    const fine = await h.app.inject({
      method: 'PUT',
      url: `/admin/api/services/${serviceId}/openapi`,
      headers: { authorization: `Bearer ${h.writeToken}`, 'content-type': 'application/yaml' },
      payload:
        'openapi: 3.0.0\ninfo: {title: T, version: "1"}\npaths:\n  /a:\n    get:\n      responses:\n        "200":\n          description: ok\n',
    });
    expect(fine.statusCode).toBe(200);
  });
});

describe.each(dialects)('portal forms with NUL characters on %s', (dialect) => {
  let p: PortalHarness;
  beforeAll(async () => {
    p = await startPortal(dialect);
  });
  afterAll(() => p.close());

  it('POST /login and /password-reset answer a 400 page, not a 500', async () => {
    for (const [page, form] of [
      ['/login', { email: 'a\u0000@x.test', password: 'whatever password' }],
      ['/password-reset', { email: 'nul\u0000@x.test' }],
      ['/admin/login', { email: 'admin\u0000@provider.test', password: 'whatever password' }],
    ] as const) {
      const agent = p.agent();
      await agent.get(page);
      const res = await agent.post(page, form, { headers: { accept: 'text/html' } });
      expect(res.statusCode, page).toBe(400);
      expect(res.headers['content-type'], page).toMatch(/text\/html/);
    }
  });

  it("the console's OpenAPI form refuses YAML nested thousands deep with its page", async () => {
    const agent = p.agent();
    await agent.get('/admin/login');
    await agent.post('/admin/login', { email: p.adminEmail, password: p.adminPassword });
    await agent.get(`/admin/services/${p.serviceId}`);
    const res = await agent.post(
      `/admin/services/${p.serviceId}/openapi`,
      {
        document: `openapi: 3.0.0\npaths: {}\nx: ${'['.repeat(3000)}${']'.repeat(3000)}\n`,
        intent: 'publish',
      },
      { headers: { accept: 'text/html' } },
    );
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('nested more than 64 levels');
  });
});
