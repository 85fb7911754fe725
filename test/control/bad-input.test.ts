/** Bad input gets a clear 4xx with a stable code, never a 500. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlHarness, startControl } from '../support/control.js';

let h: ControlHarness;
beforeAll(async () => {
  h = await startControl('sqlite');
});
afterAll(() => h.close());

const raw = (payload: string, contentType = 'application/json', url = '/admin/api/accounts') =>
  h.app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${h.writeToken}`, 'content-type': contentType },
    payload,
  });

describe('bad input', () => {
  it('malformed JSON → 400 malformed_json', async () => {
    const res = await raw('{"name": ');
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'malformed_json', requestId: expect.any(String) });
  });

  it('an empty JSON body → 400 malformed_json', async () => {
    const res = await raw('');
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('malformed_json');
  });

  it('unknown fields, wrong types and missing fields are all named at once', async () => {
    const res = await h.call('POST', '/admin/api/services', {
      name: 42,
      upstreamProduction: 'ftp://nope',
      colour: 'blue',
    });
    expect(res.statusCode).toBe(400);
    const { code, details } = res.json().error;
    expect(code).toBe('validation_failed');
    const fields = details.map((d: { field: string }) => d.field).sort();
    expect(fields).toEqual(['colour', 'name', 'systemName', 'upstreamProduction']);
    expect(details.find((d: { field: string }) => d.field === 'colour').message).toBe('unknown field');
  });

  it('does not coerce body types: "5" is not a number', async () => {
    const svc = (
      await h.call('POST', '/admin/api/services', {
        name: 'T',
        systemName: 'types',
        upstreamProduction: 'http://t.test',
      })
    ).json();
    const res = await h.call('PATCH', `/admin/api/services/${svc.id}`, { maxBodyBytes: '5' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details[0].field).toBe('maxBodyBytes');
  });

  it('oversized bodies → 413 body_too_large', async () => {
    const res = await raw(JSON.stringify({ name: 'x'.repeat(100 * 1024) }));
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('body_too_large');
  });

  it('an unsupported content type → 415', async () => {
    const res = await raw('name=x', 'application/x-www-form-urlencoded');
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('unsupported_media_type');
  });

  it('bad query parameters → 400 naming them', async () => {
    const res = await h.call('GET', '/admin/api/accounts?limit=100000&state=weird');
    expect(res.statusCode).toBe(400);
    const fields = res
      .json()
      .error.details.map((d: { field: string }) => d.field)
      .sort();
    expect(fields).toEqual(['limit', 'state']);
  });

  it('hostile headers and paths do not break anything', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/admin/api/services/%2e%2e%2f',
      headers: { authorization: `Bearer ${h.writeToken}`, 'x-request-id': '<script>alert(1)</script>' },
    });
    expect(res.statusCode).toBe(404);
    const nul = await h.call('GET', '/admin/api/services/%00%2e%2e%2f');
    expect(nul.statusCode).toBe(400);
    expect(nul.json().error.details).toEqual([{ field: 'id', message: 'must not contain NUL characters' }]);
    expect(res.headers['x-request-id']).toMatch(/^req_[0-9a-f]{24}$/);
    const huge = await h.app.inject({
      method: 'GET',
      url: '/admin/api/services',
      headers: { authorization: `Bearer ${'a'.repeat(5000)}` },
    });
    expect(huge.statusCode).toBe(401);
  });

  it('odd YAML documents are refused or read without writing warnings to the process', async () => {
    const svc = (
      await h.call('POST', '/admin/api/services', {
        name: 'Y',
        systemName: 'yaml-warnings',
        upstreamProduction: 'http://y.test',
      })
    ).json();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      for (const yaml of ['%YAML 9.9\n---\nopenapi: 3.0.0\n', 'openapi: !!js/function "f"\npaths: {}\n']) {
        const res = await h.app.inject({
          method: 'PUT',
          url: `/admin/api/services/${svc.id}/openapi`,
          headers: { authorization: `Bearer ${h.writeToken}`, 'content-type': 'application/yaml' },
          payload: yaml,
        });
        expect(res.statusCode).toBeLessThan(500);
      }
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.message)).toEqual([]);
  });

  it('unknown routes → 404 route_not_found in the same shape', async () => {
    const res = await h.call('GET', '/admin/api/nope');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('route_not_found');
  });

  it('serves the OpenAPI 3.1 document and the reference page', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/admin/api/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/admin/api/signup'].post.requestBody).toBeDefined();
    const page = await h.app.inject({ method: 'GET', url: '/admin/api/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('swagger');
  });
});
