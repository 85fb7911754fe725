/**
 * The management API's OpenAPI document describes the management API alone, and all of it: its operations are
 * exactly the routes registered under /admin/api, with the server composed as `trellis start` composes it (portal,
 * console and OAuth mounted beside it).
 */
import type { RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlApp } from '../../src/control/index.js';
import { type ComposedControl, startComposedControl } from '../support/control.js';

let composed: ComposedControl;
let app: ControlApp;
let registered: RouteOptions[];

beforeAll(async () => {
  composed = await startComposedControl();
  ({ app, registered } = composed);
});
afterAll(() => composed.close());

/** `GET /admin/api/services/{id}` for each method of a route, HEAD (fastify adds one per GET) left out. */
function operationsOf(route: RouteOptions): string[] {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
  return methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${path}`);
}

describe('the OpenAPI document of the management API', () => {
  it('lists exactly the routes registered under /admin/api', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/admin/api/openapi.json' })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const api = registered
      .filter((r) => r.url.startsWith('/admin/api/') && !(r.schema as { hide?: boolean } | undefined)?.hide)
      .flatMap(operationsOf)
      .sort();
    // the faces are mounted: the server has many more routes than the API
    expect(registered.filter((r) => !r.url.startsWith('/admin/api')).length).toBeGreaterThan(50);
    expect(documented.filter((op) => !op.split(' ')[1]!.startsWith('/admin/api/'))).toEqual([]);
    expect(documented).toEqual([...new Set(api)]);
    expect(documented.length).toBeGreaterThan(60);
  });

  it('has no hidden management route other than the document and its reference page', () => {
    const hidden = registered
      .filter((r) => r.url.startsWith('/admin/api') && (r.schema as { hide?: boolean } | undefined)?.hide)
      .map((r) => r.url);
    expect(
      hidden.every((url) => url === '/admin/api/openapi.json' || url.startsWith('/admin/api/docs')),
    ).toBe(true);
  });
});
