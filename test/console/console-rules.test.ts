/**
 * The console's mapping rules form: a rule the service has already (same verb, pattern and metric, whatever the
 * delta) is refused on the form itself, 409 with a message saying why, and no second rule is made.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listMappingRules } from '../../src/catalog/index.js';
import { type PortalHarness, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';

describe('console: mapping rules form', () => {
  let h: PortalHarness;
  let admin: WebAgent;

  beforeAll(async () => {
    h = await startPortal();
    admin = h.agent();
    await admin.get('/admin/login');
    const res = await admin.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
    expect(res.statusCode).toBe(303);
  });
  afterAll(() => h.close());

  it('shows a rule the service has already as a problem of the form, not a second rule or a 500', async () => {
    const page = `/admin/services/${h.serviceId}`;
    const rule = { httpMethod: 'GET', pattern: '/forecast/{city}$', metricId: h.hitsId, delta: '1' };
    await admin.get(page);
    const added = await admin.submit(`${page}/rules`, rule);
    expect(added.posted).toBe(303);
    expect(added.body).toContain('/forecast/{city}$');

    const again = await admin.post(`${page}/rules`, { ...rule, delta: '2' });
    expect(again.statusCode).toBe(409);
    expect(again.headers['content-type']).toMatch(/^text\/html/);
    const rulesSection = again.body.slice(
      again.body.indexOf('id="rules"'),
      again.body.indexOf('id="openapi"'),
    );
    expect(rulesSection).toContain('role="alert"');
    expect(rulesSection).toContain('Pattern: This service already has a mapping rule GET /forecast/{city}$');
    expect(rulesSection).toContain('would count every call it matches twice');

    const rules = await listMappingRules(h.store.db, h.serviceId);
    expect(rules.filter((r) => r.pattern === '/forecast/{city}$')).toHaveLength(1);
  });
});
