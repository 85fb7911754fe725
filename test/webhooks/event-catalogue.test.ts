/**
 * The event catalogue (issue 9): every event the management API causes is listed, and its payload has the
 * declared shape. The scenario touches every admin entity; the check reads the outbox itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestApplicationPlan } from '../../src/access/index.js';
import { checkEventPayload, eventDefinition, eventTypes, systemActor } from '../../src/events/index.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';

/** The admin events issue 9 names, at least. */
const required = [
  'account.created',
  'account.updated',
  'account.approved',
  'account.suspended',
  'account.resumed',
  'account.deleted',
  'user.created',
  'user.updated',
  'user.deleted',
  'application.created',
  'application.updated',
  'application.plan_changed',
  'application.plan_change_requested',
  'application.suspended',
  'application.resumed',
  'application.deleted',
  'credential.created',
  'credential.revoked',
];

describe('the event catalogue lists every type with a version and a payload schema', () => {
  it('has the admin events of issue 9', () => {
    for (const type of required) {
      const def = eventDefinition(type);
      expect(def, type).toBeDefined();
      expect(def?.version).toBe(1);
      expect(def?.description.length).toBeGreaterThan(5);
    }
    expect(eventTypes().length).toBeGreaterThan(50);
  });

  it('refuses unknown types and wrong payloads, naming the field', () => {
    expect(checkEventPayload('account.exploded', {})).toEqual([
      'account.exploded is not in the event catalogue',
    ]);
    const problems = checkEventPayload('account.created', { account: { id: 1 }, accountId: 'acc_x' });
    expect(problems.some((p) => p.startsWith('/account/id'))).toBe(true);
  });
});

describe.each(dialects)('every recorded event matches its declared payload (%s)', (dialect) => {
  let h: ControlHarness;
  beforeAll(async () => {
    h = await startControl(dialect);
  });
  afterAll(() => h.close());

  async function ok(method: 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, body?: unknown) {
    const res = await h.call(method, `/admin/api${url}`, body);
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
    return res.statusCode === 204 ? {} : res.json();
  }

  it('after a scenario touching every admin entity', async () => {
    await ok('POST', '/custom-fields', { target: 'account', name: 'crm_id', label: 'CRM id' });
    const field = await ok('POST', '/custom-fields', { target: 'user', name: 'phone', label: 'Phone' });
    await ok('PATCH', `/custom-fields/${field.id}`, { label: 'Phone number' });
    const service = await ok('POST', '/services', {
      name: 'Pay',
      systemName: 'pay',
      upstreamProduction: 'https://pay.test',
    });
    await ok('PATCH', `/services/${service.id}`, { name: 'PayMe' });
    const method = await ok('POST', `/services/${service.id}/methods`, {
      systemName: 'pay',
      friendlyName: 'Pay',
    });
    const rule = await ok('POST', `/services/${service.id}/mapping-rules`, {
      httpMethod: 'POST',
      pattern: '/pay',
      metricId: method.id,
    });
    await ok('PATCH', `/services/${service.id}/mapping-rules/${rule.id}`, { delta: 2 });
    const free = await ok('POST', `/services/${service.id}/plans`, { name: 'Free', systemName: 'free' });
    const pro = await ok('POST', `/services/${service.id}/plans`, {
      name: 'Pro',
      systemName: 'pro',
      approvalRequired: true,
    });
    await ok('POST', `/plans/${free.id}/make-default`);
    await ok('PUT', `/plans/${free.id}/limits`, { metricId: method.id, period: 'day', value: 100 });
    await ok('PUT', `/plans/${free.id}/disabled-methods/${method.id}`);
    await ok('DELETE', `/plans/${free.id}/disabled-methods/${method.id}`);

    const account = await ok('POST', '/accounts', {
      name: 'Acme',
      state: 'pending',
      customFields: { crm_id: 'L-1' },
    });
    await ok('PATCH', `/accounts/${account.id}`, { name: 'Acme Ltd' });
    await ok('POST', `/accounts/${account.id}/approve`);
    await ok('POST', `/accounts/${account.id}/suspend`);
    await ok('POST', `/accounts/${account.id}/resume`);
    const user = await ok('POST', `/accounts/${account.id}/users`, { email: 'a@acme.test', name: 'A' });
    const second = await ok('POST', `/accounts/${account.id}/users`, { email: 'b@acme.test', name: 'B' });
    await ok('PATCH', `/users/${user.id}`, { name: 'Ann', customFields: { phone: '+852 1234' } });
    await ok('DELETE', `/users/${second.id}`);
    const invitation = await ok('POST', `/accounts/${account.id}/invitations`, { email: 'c@acme.test' });
    await ok('DELETE', `/accounts/${account.id}/invitations/${invitation.id}`);

    const app = await ok('POST', '/applications', {
      accountId: account.id,
      serviceId: service.id,
      name: 'Shop',
    });
    await ok('PATCH', `/applications/${app.id}`, { description: 'the shop' });
    await ok('POST', `/applications/${app.id}/change-plan`, { planId: pro.id });
    await ok('POST', `/applications/${app.id}/change-plan`, { planId: free.id });
    await requestApplicationPlan({ db: h.store.db, clock: h.clock }, systemActor, app.id, pro.id);
    await ok('POST', `/applications/${app.id}/suspend`);
    await ok('POST', `/applications/${app.id}/resume`);
    const key = await ok('POST', `/applications/${app.id}/keys`);
    await ok('POST', `/applications/${app.id}/keys/${key.credentialId}/revoke`);
    await ok('DELETE', `/applications/${app.id}`);
    await ok('DELETE', `/accounts/${account.id}`);
    await ok('PATCH', '/portal-settings', { name: 'Pay portal' });
    await ok('DELETE', `/services/${service.id}/mapping-rules/${rule.id}`);

    const rows = await h.store.db.selectFrom('events').select(['type', 'payload']).orderBy('seq').execute();
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.type);
      expect(checkEventPayload(row.type, JSON.parse(row.payload)), `${row.type}: ${row.payload}`).toEqual([]);
    }
    for (const type of required) expect(seen, type).toContain(type);
    const created = rows.find((r) => r.type === 'account.created');
    expect(JSON.parse(created?.payload ?? '{}').account.customFields).toEqual({ crm_id: 'L-1' });
  });
});
