/**
 * Issue 13 on both databases: a service made in the console is a draft, invisible in the portal (catalog, its
 * pages, the new-application form) until the provider publishes it and it has a published plan; services made
 * before (migration 0012) or through the management API stay published.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPlan,
  getPlan,
  getService,
  listMetrics,
  listServices,
  setPlanLimit,
} from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { type PortalHarness, signUp, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';
import { dialects } from '../support/stores.js';

describe.each(dialects)('a service stays a draft until published (%s)', (dialect) => {
  let h: PortalHarness;
  let admin: WebAgent;
  let dev: WebAgent;
  let serviceId = '';

  beforeAll(async () => {
    h = await startPortal(dialect);
    admin = h.agent();
    await admin.get('/admin/login');
    await admin.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
    dev = await signUp(h, 'dev@draft.test', 'Drafts');
  });
  afterAll(() => h.close());

  const visible = async () => {
    const home = (await h.agent().get('/')).body;
    const page = await h.agent().get(`/apis/${serviceId}`, { accept: 'text/html' });
    const form = (await dev.get('/apps/new')).body;
    return {
      home: home.includes('Ledger Draft'),
      page: page.statusCode,
      form: form.includes(`value="${serviceId}"`),
    };
  };

  it('keeps existing services published', async () => {
    expect((await getService(h.store.db, h.serviceId)).portalState).toBe('published');
    expect((await h.agent().get('/')).body).toContain('Weather');
  });

  it('creates a draft in the console, hidden from the portal', async () => {
    await admin.get('/admin/services');
    const made = await admin.submit('/admin/services', {
      name: 'Ledger Draft',
      systemName: 'ledger_draft',
      upstreamProduction: 'http://127.0.0.1:9/',
    });
    expect(made.posted).toBe(303);
    serviceId = (await listServices(h.store.db, { limit: 200 })).data.find(
      (s) => s.systemName === 'ledger_draft',
    )!.id;
    expect(made.body).toContain('data-testid="portal-state">draft (hidden)');
    expect(await visible()).toEqual({ home: false, page: 404, form: false });
    expect((await h.agent().get(`/apis/${serviceId}/openapi.json`)).statusCode).toBe(404);
    // a plan published while the service is a draft does not show it either
    await createPlan({ db: h.store.db, clock: h.clock }, systemActor, serviceId, {
      name: 'Basic',
      systemName: 'basic',
    });
    expect(await visible()).toEqual({ home: false, page: 404, form: false });
  });

  it('shows it once published, and hides it again back in draft', async () => {
    const page = `/admin/services/${serviceId}`;
    await admin.get(page);
    const published = await admin.submit(page, { portalState: 'published' });
    expect(published.posted).toBe(303);
    expect(published.body).toContain('Published: the portal shows the service');
    expect(published.body).toContain('data-testid="portal-state">published');
    // the button posts nothing else: the service's other settings are unchanged
    const service = await getService(h.store.db, serviceId);
    expect([service.name, service.upstreamProduction]).toEqual(['Ledger Draft', 'http://127.0.0.1:9/']);
    expect(await visible()).toEqual({ home: true, page: 200, form: true });
    await admin.submit(page, { portalState: 'draft' });
    expect(await visible()).toEqual({ home: false, page: 404, form: false });
  });

  it('shows only the credential names of the service’s authentication mode', async () => {
    const keyed = (await admin.get(`/admin/services/${h.serviceId}`)).body;
    expect(keyed).toContain('name="userKeyName"');
    expect(keyed).not.toContain('name="appIdName"');
    await admin.submit(`/admin/services/${h.serviceId}`, { authMode: 'app_id_app_key' });
    const paired = (await admin.get(`/admin/services/${h.serviceId}`)).body;
    expect(paired).not.toContain('name="userKeyName"');
    expect(paired).toContain('name="appIdName"');
    expect(paired).toContain('name="appKeyName"');
    await admin.submit(`/admin/services/${h.serviceId}`, { authMode: 'user_key' });
  });

  it('shows the common periods of the limits grid first, the others on request, and leaves hidden ones alone', async () => {
    const page = (await admin.get(`/admin/plans/${h.plans.free}`)).body;
    const columns = [
      ...page.matchAll(/<th scope="col">(minute|hour|day|week|month|year|eternity)<\/th>/g),
    ].map((m) => m[1]);
    expect(columns).toEqual(['minute', 'hour', 'day', 'month']);
    expect(page).toContain('data-testid="all-periods"');
    const all = (await admin.get(`/admin/plans/${h.plans.free}?periods=all`)).body;
    expect(all).toContain('<th scope="col">eternity</th>');
    // a year limit set elsewhere survives a save of the short grid, and shows as its own column from then on
    const forecast = (await listMetrics(h.store.db, h.serviceId)).find((m) => m.systemName === 'forecast')!;
    await setPlanLimit({ db: h.store.db, clock: h.clock }, systemActor, h.plans.free, {
      metricId: forecast.id,
      period: 'year',
      value: 9000,
    });
    await admin.get(`/admin/plans/${h.plans.free}`);
    await admin.post(`/admin/plans/${h.plans.free}/limits`, {
      periods: 'minute,hour,day,month',
      [`limit_${forecast.id}_day`]: '1000',
    });
    const plan = await getPlan(h.store.db, h.plans.free);
    expect(plan.limits.find((l) => l.period === 'year')?.value).toBe(9000);
    expect((await admin.get(`/admin/plans/${h.plans.free}`)).body).toContain('<th scope="col">year</th>');
  });

  it('refuses an application for a draft service', async () => {
    const plan = (
      await h.store.db
        .selectFrom('plans')
        .select('id')
        .where('service_id', '=', serviceId)
        .executeTakeFirstOrThrow()
    ).id;
    await dev.get('/apps/new');
    const refused = await dev.post('/apps/new', { serviceId, planId: plan, name: 'Too early' });
    expect(refused.statusCode).toBe(400);
  });
});
