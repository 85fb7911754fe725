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
      // no sandbox unless named: never a copy of the production upstream (issue 11)
      upstreamSandbox: '',
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
    const first = await h.call('POST', `/admin/api/services/${svc.id}/openapi/import`, doc);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({
      methodsCreated: ['list_pets', 'create_pet', 'get_pets_pet_id'],
      rulesCreated: 3,
      operations: 3,
      skipped: [],
    });
    expect(first.json().added).toHaveLength(3);
    const second = await h.call('POST', `/admin/api/services/${svc.id}/openapi/import`, doc);
    expect(second.json()).toMatchObject({ methodsCreated: [], rulesCreated: 0, added: [] });
    expect(second.json().skipped).toHaveLength(3);
    const rules = (await h.call('GET', `/admin/api/services/${svc.id}/mapping-rules`)).json().data;
    expect(rules.map((r: { httpMethod: string; pattern: string }) => `${r.httpMethod} ${r.pattern}`)).toEqual(
      ['GET /v1/pets$', 'POST /v1/pets$', 'GET /v1/pets/{petId}$'],
    );
    expect((await h.call('GET', `/admin/api/services/${svc.id}/openapi`)).json().info.title).toBe('Pets');
    const bad = await h.call('PUT', `/admin/api/services/${svc.id}/openapi`, { openapi: '3.0.0' });
    expect(bad.json().error).toMatchObject({ code: 'validation_failed', details: [{ field: 'paths' }] });
  });

  it('publishes API docs without changing a rule or a method (issue 12, item 1)', async () => {
    const svc = (
      await h.call('POST', '/admin/api/services', {
        name: 'Docs only',
        systemName: 'docs-only',
        upstreamProduction: 'http://docs.test',
      })
    ).json();
    const hits = (await h.call('GET', `/admin/api/services/${svc.id}/metrics`)).json().data[0];
    await h.call('POST', `/admin/api/services/${svc.id}/mapping-rules`, {
      httpMethod: 'ANY',
      pattern: '/',
      metricId: hits.id,
    });
    const doc = {
      openapi: '3.0.3',
      info: { title: 'Docs', version: '1' },
      paths: { '/things': { get: { operationId: 'listThings' } }, '/things/{id}': { delete: {} } },
    };
    const published = await h.call('PUT', `/admin/api/services/${svc.id}/openapi`, doc);
    expect(published.statusCode).toBe(200);
    expect(published.json()).toEqual({ version: 'openapi 3.0.3', operations: 2 });
    const rules = (await h.call('GET', `/admin/api/services/${svc.id}/mapping-rules`)).json().data;
    expect(rules.map((r: { pattern: string }) => r.pattern)).toEqual(['/']);
    expect((await h.call('GET', `/admin/api/services/${svc.id}/methods`)).json().data).toEqual([]);
    expect((await h.call('GET', `/admin/api/services/${svc.id}/openapi`)).json().info.title).toBe('Docs');
    expect((await h.call('GET', `/admin/api/services/${svc.id}`)).json().hasOpenapi).toBe(true);
  });

  it('imports a definition into what exists: an operation a rule already counts gets no second rule and no method (issue 12, item 1)', async () => {
    const svc = (
      await h.call('POST', '/admin/api/services', {
        name: 'Merge',
        systemName: 'merge',
        upstreamProduction: 'http://merge.test',
      })
    ).json();
    const mentions = (
      await h.call('POST', `/admin/api/services/${svc.id}/methods`, {
        systemName: 'mentions_timeline',
        friendlyName: 'GET statuses/mentions_timeline',
      })
    ).json();
    const handMade = (
      await h.call('POST', `/admin/api/services/${svc.id}/mapping-rules`, {
        httpMethod: 'GET',
        pattern: '/statuses/mentions_timeline',
        metricId: mentions.id,
      })
    ).json();
    const doc = {
      openapi: '3.1.0',
      info: { title: 'Twitter', version: '1.1' },
      paths: {
        '/statuses/mentions_timeline': { get: { operationId: 'getMentionsTimeline' } },
        '/statuses/update': { post: { operationId: 'postStatusesUpdate' } },
      },
    };
    const res = await h.call('POST', `/admin/api/services/${svc.id}/openapi/import`, doc);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      methodsCreated: ['post_statuses_update'],
      rulesCreated: 1,
      operations: 2,
      added: [
        { operation: 'POST /statuses/update', method: 'post_statuses_update', pattern: '/statuses/update$' },
      ],
      skipped: [
        {
          operation: 'GET /statuses/mentions_timeline',
          reason: 'a mapping rule of the service already counts it',
          ruleId: handMade.id,
        },
      ],
    });
    const methods = (await h.call('GET', `/admin/api/services/${svc.id}/methods`)).json().data;
    expect(methods.map((m: { systemName: string }) => m.systemName).sort()).toEqual([
      'mentions_timeline',
      'post_statuses_update',
    ]);
    const rules = (await h.call('GET', `/admin/api/services/${svc.id}/mapping-rules`)).json().data;
    expect(rules.map((r: { httpMethod: string; pattern: string }) => `${r.httpMethod} ${r.pattern}`)).toEqual(
      ['GET /statuses/mentions_timeline', 'POST /statuses/update$'],
    );
  });

  it('accepts Swagger 2.0 and OpenAPI 3.0/3.1, as JSON or YAML; refuses other versions (issue 12, item 3)', async () => {
    const svc = (
      await h.call('POST', '/admin/api/services', {
        name: 'Swagger',
        systemName: 'swagger',
        upstreamProduction: 'http://swagger.test',
      })
    ).json();
    const yaml = [
      "swagger: '2.0'",
      'info: {title: SendGrid, version: "2"}',
      'basePath: /api',
      'paths:',
      '  /mail.send.json:',
      '    post: {operationId: mailSend, responses: {"200": {description: ok}}}',
    ].join('\n');
    const published = await h.app.inject({
      method: 'PUT',
      url: `/admin/api/services/${svc.id}/openapi`,
      headers: { authorization: `Bearer ${h.writeToken}`, 'content-type': 'application/yaml' },
      payload: yaml,
    });
    expect(published.statusCode).toBe(200);
    expect(published.json()).toEqual({ version: 'swagger 2.0', operations: 1 });
    expect((await h.call('GET', `/admin/api/services/${svc.id}/openapi`)).json().swagger).toBe('2.0');
    const imported = await h.call('POST', `/admin/api/services/${svc.id}/openapi/import`, {
      swagger: '2.0',
      basePath: '/api',
      paths: { '/mail.send.json': { post: { operationId: 'mailSend' } } },
    });
    expect(imported.json()).toMatchObject({ methodsCreated: ['mail_send'], rulesCreated: 1 });
    expect(imported.json().added[0].pattern).toBe('/api/mail.send.json$');
    for (const openapi of ['3.0.0', '3.1.0']) {
      const ok = await h.call('PUT', `/admin/api/services/${svc.id}/openapi`, { openapi, paths: {} });
      expect(ok.json()).toEqual({ version: `openapi ${openapi}`, operations: 0 });
    }
    const v4 = await h.call('PUT', `/admin/api/services/${svc.id}/openapi`, { openapi: '4.0.0', paths: {} });
    expect(v4.json().error).toMatchObject({ code: 'validation_failed', details: [{ field: 'openapi' }] });
    const notYaml = await h.app.inject({
      method: 'PUT',
      url: `/admin/api/services/${svc.id}/openapi`,
      headers: { authorization: `Bearer ${h.writeToken}`, 'content-type': 'application/yaml' },
      payload: 'a: [unclosed',
    });
    expect(notYaml.statusCode).toBe(400);
  });

  it('makes the hierarchy explicit and warns about limits no call reaches (issue 12, item 2)', async () => {
    const svc = (
      await h.call('POST', '/admin/api/services', {
        name: 'Grid',
        systemName: 'grid',
        upstreamProduction: 'http://grid.test',
      })
    ).json();
    const path = `/admin/api/services/${svc.id}`;
    const hits = (await h.call('GET', `${path}/metrics`)).json().data[0];
    const web = (
      await h.call('POST', `${path}/metrics`, { systemName: 'web_api', friendlyName: 'Web API' })
    ).json();
    expect(web).toMatchObject({ kind: 'metric', parentId: null });
    const v3 = (
      await h.call('POST', `${path}/metrics`, {
        systemName: 'v3_api',
        friendlyName: 'v3 API',
        parent: 'hits',
      })
    ).json();
    expect(v3).toMatchObject({ kind: 'metric', parentId: hits.id });
    const send = (
      await h.call('POST', `${path}/methods`, { systemName: 'send', friendlyName: 'Send' })
    ).json();
    expect(send).toMatchObject({ kind: 'method', parentId: hits.id });
    const unused = (
      await h.call('POST', `${path}/methods`, { systemName: 'unused', friendlyName: 'U' })
    ).json();
    for (const [pattern, metricId] of [
      ['/api/', web.id],
      ['/v3/', v3.id],
    ]) {
      await h.call('POST', `${path}/mapping-rules`, { httpMethod: 'ANY', pattern, metricId });
    }
    const plan = (await h.call('POST', `${path}/plans`, { name: 'Bronze', systemName: 'bronze' })).json();
    const onHits = await h.call('PUT', `/admin/api/plans/${plan.id}/limits`, {
      metricId: hits.id,
      period: 'minute',
      value: 100,
    });
    expect(onHits.statusCode).toBe(200);
    expect(onHits.json().warnings).toEqual([
      expect.objectContaining({
        metricId: hits.id,
        message: expect.stringContaining(
          'does not apply to calls counted only on the standalone metrics web_api',
        ),
      }),
    ]);
    const onUnused = await h.call('PUT', `/admin/api/plans/${plan.id}/limits`, {
      metricId: unused.id,
      period: 'day',
      value: 5,
    });
    expect(onUnused.json().warnings[0].message).toMatch(
      /can never be reached: no mapping rule counts unused/,
    );
    const onV3 = await h.call('PUT', `/admin/api/plans/${plan.id}/limits`, {
      metricId: v3.id,
      period: 'day',
      value: 5,
    });
    expect(onV3.json().warnings).toEqual([]);
    const read = (await h.call('GET', `/admin/api/plans/${plan.id}`)).json();
    expect(read.warnings.map((w: { metricId: string }) => w.metricId).sort()).toEqual(
      [hits.id, unused.id].sort(),
    );
    // a catch-all rule on hits counts every call: the hits limit applies to all of them; but a call to /v3/ now
    // counts twice on hits (once by the catch-all, once through v3_api), and the warning says so
    await h.call('POST', `${path}/mapping-rules`, { httpMethod: 'ANY', pattern: '/', metricId: hits.id });
    const after = (await h.call('GET', `/admin/api/plans/${plan.id}`)).json();
    expect(after.warnings).toEqual([
      expect.objectContaining({
        metricId: hits.id,
        message: expect.stringMatching(/counts some calls twice: .*ANY \/v3\/ \(also ANY \/\)/),
      }),
      expect.objectContaining({ metricId: unused.id }),
    ]);
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
