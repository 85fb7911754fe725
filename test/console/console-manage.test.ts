/**
 * The console's editing and deleting through `app.inject`: end-user limits and the end-user key of a plan,
 * deleting services, plans and applications (with the domain's refusals shown on the page), editing custom
 * fields, and lists paged past 200 rows by cursor. Every new form is refused without its CSRF token and without
 * an admin session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAccount,
  createApplication,
  createCustomField,
  getApplication,
  listCustomFields,
} from '../../src/access/index.js';
import { createPlan, createService, getPlan, getService, listPlans } from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { type PortalHarness, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';

async function signInAdmin(h: PortalHarness): Promise<WebAgent> {
  const agent = h.agent();
  await agent.get('/admin/login');
  const res = await agent.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
  expect(res.statusCode).toBe(303);
  return agent;
}

describe('console: editing and deleting', () => {
  let h: PortalHarness;
  let admin: WebAgent;
  const deps = () => ({ db: h.store.db, clock: h.clock });

  beforeAll(async () => {
    h = await startPortal();
    admin = await signInAdmin(h);
  });
  afterAll(() => h.close());

  it('edits end-user limits beside application limits, and the end-user key of the plan', async () => {
    const page = await admin.get(`/admin/plans/${h.plans.free}`);
    expect(page.body).toContain(`name="eulimit_${h.hitsId}_minute"`);
    expect(page.body).toContain('per end user');
    const saved = await admin.post(`/admin/plans/${h.plans.free}/limits`, {
      [`limit_${h.hitsId}_day`]: '10000',
      [`eulimit_${h.hitsId}_minute`]: '30',
      enabled: [h.hitsId],
    });
    expect(saved.statusCode).toBe(200);
    expect(saved.body).toContain('Limits saved.');
    let plan = await getPlan(h.store.db, h.plans.free);
    expect(plan.limits.map((l) => `${l.scope}:${l.period}:${l.value}`).sort()).toEqual([
      'application:day:10000',
      'end_user:minute:30',
    ]);
    // the grid shows the saved end-user value in its own cell
    expect(saved.body).toMatch(new RegExp(`name="eulimit_${h.hitsId}_minute"[^>]*value="30"`));

    const bad = await admin.post(`/admin/plans/${h.plans.free}/limits`, {
      [`eulimit_${h.hitsId}_hour`]: 'many',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('hits.hour (per end user)');

    await admin.get(`/admin/plans/${h.plans.free}`);
    await admin.post(`/admin/plans/${h.plans.free}/limits`, {
      [`limit_${h.hitsId}_day`]: '10000',
      enabled: [h.hitsId],
    });
    plan = await getPlan(h.store.db, h.plans.free);
    expect(plan.limits.map((l) => l.scope)).toEqual(['application']);

    await admin.get(`/admin/plans/${h.plans.free}`);
    const key = await admin.post(`/admin/plans/${h.plans.free}`, {
      name: 'Free',
      state: 'published',
      endUserKeySource: 'claim',
      endUserKeyName: 'sub',
    });
    expect(key.body).toContain('Plan saved.');
    plan = await getPlan(h.store.db, h.plans.free);
    expect([plan.endUserKeySource, plan.endUserKeyName]).toEqual(['claim', 'sub']);
    const badKey = await admin.post(`/admin/plans/${h.plans.free}`, {
      name: 'Free',
      endUserKeySource: 'cookie',
      endUserKeyName: 'no spaces allowed',
    });
    expect(badKey.statusCode).toBe(400);
    expect(badKey.body).toContain('endUserKeySource');
    expect(badKey.body).toContain('endUserKeyName');
  });

  it('deletes a plan, but not one with applications', async () => {
    const account = await createAccount(deps(), systemActor, { name: 'Holder', state: 'approved' });
    await createApplication(deps(), systemActor, {
      accountId: account.id,
      serviceId: h.serviceId,
      planId: h.plans.pro,
      name: 'On pro',
    });
    await admin.get(`/admin/plans/${h.plans.pro}`);
    const refused = await admin.post(`/admin/plans/${h.plans.pro}/delete`, {});
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('data-testid="refusal"');
    expect(refused.body).toContain('move them to another plan first');
    expect((await getPlan(h.store.db, h.plans.pro)).id).toBe(h.plans.pro);

    const empty = await createPlan(deps(), systemActor, h.serviceId, { name: 'Spare', systemName: 'spare' });
    await admin.get(`/admin/plans/${empty.id}`);
    const deleted = await admin.post(`/admin/plans/${empty.id}/delete`, {});
    expect(deleted.statusCode).toBe(303);
    expect(deleted.headers.location).toBe(`/admin/services/${h.serviceId}#plans`);
    expect((await listPlans(h.store.db, { serviceId: h.serviceId })).map((p) => p.id)).not.toContain(
      empty.id,
    );
  });

  it('deletes a service, but not one with applications', async () => {
    await admin.get(`/admin/services/${h.serviceId}`);
    const refused = await admin.post(`/admin/services/${h.serviceId}/delete`, {});
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('The service still has applications');

    const spare = await createService(deps(), systemActor, {
      name: 'Spare API',
      systemName: 'spare_api',
      upstreamProduction: 'http://127.0.0.1:9',
    });
    await admin.get(`/admin/services/${spare.id}`);
    const deleted = await admin.post(`/admin/services/${spare.id}/delete`, {});
    expect(deleted.statusCode).toBe(303);
    await expect(getService(h.store.db, spare.id)).rejects.toThrow();
    expect((await admin.get(`/admin/services/${spare.id}`)).statusCode).toBe(404);
  });

  it('deletes an application', async () => {
    const account = await createAccount(deps(), systemActor, { name: 'Leaver', state: 'approved' });
    const app = await createApplication(deps(), systemActor, {
      accountId: account.id,
      serviceId: h.serviceId,
      name: 'Short-lived',
    });
    const page = await admin.get(`/admin/applications/${app.id}`);
    expect(page.body).toContain(`action="/admin/applications/${app.id}/delete"`);
    expect(page.body).toContain('data-confirm="Delete the application Short-lived');
    const deleted = await admin.post(`/admin/applications/${app.id}/delete`, {});
    expect(deleted.statusCode).toBe(303);
    expect(deleted.headers.location).toBe(`/admin/accounts/${account.id}`);
    await expect(getApplication(h.store.db, app.id)).rejects.toThrow();
  });

  it("edits a custom field's label and required flag", async () => {
    const field = await createCustomField(deps(), systemActor, {
      target: 'application',
      name: 'website',
      label: 'Web site',
    });
    await admin.get('/admin/custom-fields');
    const saved = await admin.post(`/admin/custom-fields/${field.id}`, {
      label: 'Public web site',
      required: 'on',
    });
    expect(saved.body).toContain('Field website saved.');
    let now = (await listCustomFields(h.store.db)).find((f) => f.id === field.id);
    expect([now?.label, now?.required]).toEqual(['Public web site', true]);
    await admin.get('/admin/custom-fields');
    await admin.post(`/admin/custom-fields/${field.id}`, { label: 'Public web site' });
    now = (await listCustomFields(h.store.db)).find((f) => f.id === field.id);
    expect(now?.required).toBe(false);
    const empty = await admin.post(`/admin/custom-fields/${field.id}`, { label: '' });
    expect(empty.statusCode).toBe(400);
  });

  it('pages lists past 200 rows by cursor, keeping the filters', async () => {
    for (let i = 0; i < 201; i++) {
      await createAccount(deps(), systemActor, {
        name: `Bulk ${String(i).padStart(3, '0')}`,
        state: 'approved',
      });
    }
    const first = await admin.get('/admin/accounts?q=Bulk');
    const firstNames = first.body.match(/>Bulk \d{3}</g) ?? [];
    expect(firstNames).toHaveLength(200);
    const next = /href="([^"]+)" rel="next"/.exec(first.body)?.[1]?.replace(/&amp;/g, '&') ?? '';
    expect(next).toMatch(/^\/admin\/accounts\?q=Bulk&cursor=acc_/);
    const second = await admin.get(next);
    const secondNames = second.body.match(/>Bulk \d{3}</g) ?? [];
    expect(secondNames).toEqual(['>Bulk 200<']);
    expect(second.body).not.toContain('rel="next"');
    // a cursor that is not an id starts from the beginning rather than failing
    expect((await admin.get('/admin/accounts?cursor=%27%20or%201=1')).statusCode).toBe(200);
  });

  it('refuses the new forms without a CSRF token or an admin session', async () => {
    const field = (await listCustomFields(h.store.db))[0]!;
    const posts = [
      `/admin/plans/${h.plans.secret}/delete`,
      `/admin/services/${h.serviceId}/delete`,
      `/admin/custom-fields/${field.id}`,
    ];
    await admin.get('/admin');
    for (const url of posts) {
      const res = await admin.post(url, { label: 'Hacked' }, { csrf: null });
      expect(res.statusCode, url).toBe(403);
    }
    const anon = h.agent();
    await anon.get('/admin/login');
    for (const url of posts) {
      const res = await anon.post(url, { label: 'Hacked' });
      expect(res.statusCode, url).toBe(303);
      expect(res.headers.location).toMatch(/^\/admin\/login/);
    }
    expect((await getPlan(h.store.db, h.plans.secret)).id).toBe(h.plans.secret);
    expect((await listCustomFields(h.store.db)).find((f) => f.id === field.id)?.label).not.toBe('Hacked');
  });
});
