import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';

describe.each(dialects)('catalog through the management API (%s)', (dialect) => {
  let h: ControlHarness;
  beforeAll(async () => {
    h = await startControl(dialect);
  });
  afterAll(() => h.close());

  it('creates a service with its hits metric, methods, rules, plans and limits', async () => {
    const created = await h.call('POST', '/admin/api/services', {
      name: 'Mail',
      systemName: 'mail',
      upstreamProduction: 'https://api.example.com',
      authMode: 'user_key',
      credentialsLocation: 'header',
      userKeyName: 'api_key',
    });
    expect(created.statusCode).toBe(201);
    const svc = created.json();
    expect(svc).toMatchObject({
      systemName: 'mail',
      upstreamSandbox: 'https://api.example.com',
      userKeyName: 'api_key',
      gatewayPathPrefix: '/mail',
    });
    expect(svc.id).toMatch(/^svc_/);

    const metrics = (await h.call('GET', `/admin/api/services/${svc.id}/metrics`)).json();
    expect(metrics.data.map((m: { systemName: string }) => m.systemName)).toEqual(['hits']);
    const hits = metrics.data[0];

    const method = await h.call('POST', `/admin/api/services/${svc.id}/methods`, {
      systemName: 'send',
      friendlyName: 'Send mail',
    });
    expect(method.statusCode).toBe(201);
    expect(method.json()).toMatchObject({ kind: 'method', parentId: hits.id });

    const rule = await h.call('POST', `/admin/api/services/${svc.id}/mapping-rules`, {
      httpMethod: 'POST',
      pattern: '/v3/mail/send',
      metricId: method.json().id,
    });
    expect(rule.statusCode).toBe(201);
    expect(rule.json()).toMatchObject({ delta: 1, position: 1, last: false });

    const plan = await h.call('POST', `/admin/api/services/${svc.id}/plans`, {
      name: 'Free',
      systemName: 'free',
    });
    expect(plan.statusCode).toBe(201);
    expect(plan.json()).toMatchObject({ isDefault: true, state: 'published', approvalRequired: false });
    const second = await h.call('POST', `/admin/api/services/${svc.id}/plans`, {
      name: 'Pro',
      systemName: 'pro',
      state: 'hidden',
    });
    expect(second.json().isDefault).toBe(false);

    const limit = await h.call('PUT', `/admin/api/plans/${plan.json().id}/limits`, {
      metricId: hits.id,
      period: 'minute',
      value: 10,
    });
    expect(limit.statusCode).toBe(200);
    const again = await h.call('PUT', `/admin/api/plans/${plan.json().id}/limits`, {
      metricId: hits.id,
      period: 'minute',
      value: 20,
    });
    expect(again.json().id).toBe(limit.json().id);
    await h.call('PUT', `/admin/api/plans/${plan.json().id}/limits`, {
      metricId: hits.id,
      period: 'eternity',
      value: 1000,
      scope: 'end_user',
    });
    const disabled = await h.call(
      'PUT',
      `/admin/api/plans/${plan.json().id}/disabled-methods/${method.json().id}`,
    );
    expect(disabled.json().disabledMetricIds).toEqual([method.json().id]);

    const full = (await h.call('GET', `/admin/api/plans/${plan.json().id}`)).json();
    expect(full.limits).toHaveLength(2);
    expect(full.limits.find((l: { period: string }) => l.period === 'minute').value).toBe(20);

    const def = await h.call('POST', `/admin/api/plans/${second.json().id}/make-default`);
    expect(def.json().isDefault).toBe(true);
    expect((await h.call('GET', `/admin/api/plans/${plan.json().id}`)).json().isDefault).toBe(false);
  });

  it('refuses a duplicate system name, the deletion of hits, and a rule on another service’s metric', async () => {
    const a = (
      await h.call('POST', '/admin/api/services', {
        name: 'A',
        systemName: 'svc-a',
        upstreamProduction: 'http://a.test',
      })
    ).json();
    const b = (
      await h.call('POST', '/admin/api/services', {
        name: 'B',
        systemName: 'svc-b',
        upstreamProduction: 'http://b.test',
      })
    ).json();
    const dup = await h.call('POST', '/admin/api/services', {
      name: 'A2',
      systemName: 'svc-a',
      upstreamProduction: 'http://a.test',
    });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.code).toBe('conflict');

    const hitsB = (await h.call('GET', `/admin/api/services/${b.id}/metrics`)).json().data[0];
    const del = await h.call('DELETE', `/admin/api/services/${b.id}/metrics/${hitsB.id}`);
    expect(del.json().error.code).toBe('invalid_state');

    const cross = await h.call('POST', `/admin/api/services/${a.id}/mapping-rules`, {
      httpMethod: 'GET',
      pattern: '/x',
      metricId: hitsB.id,
    });
    expect(cross.statusCode).toBe(400);
    expect(cross.json().error.details).toEqual([
      { field: 'metricId', message: expect.stringContaining('no metric') },
    ]);
  });

  it('imports an OpenAPI document into methods and mapping rules, idempotently', async () => {
    const svc = (
      await h.call('POST', '/admin/api/services', {
        name: 'Pets',
        systemName: 'pets',
        upstreamProduction: 'http://pets.test',
      })
    ).json();
    const doc = {
      openapi: '3.1.0',
      info: { title: 'Pets', version: '1' },
      servers: [{ url: 'https://pets.test/v1' }],
      paths: {
        '/pets': {
          get: { operationId: 'listPets', summary: 'List pets' },
          post: { operationId: 'createPet' },
        },
        '/pets/{petId}': { get: { summary: 'One pet' } },
      },
    };
    const first = await h.call('PUT', `/admin/api/services/${svc.id}/openapi`, doc);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({
      methodsCreated: ['list_pets', 'create_pet', 'get_pets_pet_id'],
      rulesCreated: 3,
      operations: 3,
    });
    const second = await h.call('PUT', `/admin/api/services/${svc.id}/openapi`, doc);
    expect(second.json()).toMatchObject({ methodsCreated: [], rulesCreated: 0 });
    const rules = (await h.call('GET', `/admin/api/services/${svc.id}/mapping-rules`)).json().data;
    expect(rules.map((r: { httpMethod: string; pattern: string }) => `${r.httpMethod} ${r.pattern}`)).toEqual(
      ['GET /v1/pets$', 'POST /v1/pets$', 'GET /v1/pets/{petId}$'],
    );
    expect((await h.call('GET', `/admin/api/services/${svc.id}/openapi`)).json().info.title).toBe('Pets');
    const bad = await h.call('PUT', `/admin/api/services/${svc.id}/openapi`, { openapi: '3.0.0' });
    expect(bad.json().error).toMatchObject({ code: 'validation_failed', details: [{ field: 'paths' }] });
  });

  it('paginates with cursors', async () => {
    for (let i = 0; i < 5; i++) {
      await h.call('POST', '/admin/api/services', {
        name: `P${i}`,
        systemName: `page-${i}`,
        upstreamProduction: 'http://p.test',
      });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await h.call('GET', `/admin/api/services?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      const page = res.json();
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((s: { id: string }) => s.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThanOrEqual(5);
    expect([...seen].sort()).toEqual(seen);
  });
});
