/**
 * Custom fields in the portal's forms (issue 12, items 4 and 5): the invitation page asks for the required user
 * fields, the signup form lists fields by position (First and Last Name first), and a field with choices is a select
 * whose other values the server refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustomField } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import { listMail } from '../../src/mail/index.js';
import { dialects } from '../support/stores.js';
import { type PortalHarness, startPortal } from './portal-harness.js';
import type { WebAgent } from './web-agent.js';

describe.each(dialects)('custom fields in the portal (%s)', (dialect) => {
  let h: PortalHarness;
  let dev: WebAgent;

  beforeAll(async () => {
    h = await startPortal(dialect);
    const cd = { db: h.store.db, clock: h.clock };
    await createCustomField(cd, systemActor, {
      target: 'user',
      name: 'first_name',
      label: 'First Name',
      required: true,
      position: 10,
    });
    await createCustomField(cd, systemActor, {
      target: 'user',
      name: 'last_name',
      label: 'Last Name',
      required: true,
      position: 20,
    });
    await createCustomField(cd, systemActor, {
      target: 'application',
      name: 'team',
      label: 'Team',
      position: 150,
    });
    await createCustomField(cd, systemActor, {
      target: 'application',
      name: 'platform',
      label: 'Platform',
      required: true,
      choices: ['mobile', 'web', 'desktop'],
    });
    dev = h.agent();
    await dev.get('/signup');
    const res = await dev.post('/signup', {
      organization: 'Partner Co',
      name: 'First Partner',
      email: 'first@partner.test',
      password: 'correct horse battery',
      ucf_first_name: 'First',
      ucf_last_name: 'Partner',
    });
    expect(res.statusCode).toBe(303);
  });
  afterAll(() => h.close());

  it('lists First and Last Name first on the signup form', async () => {
    const page = (await h.agent().get('/signup')).body;
    const order = ['ucf_first_name', 'ucf_last_name', 'id="organization"', 'id="name"', 'id="email"'].map(
      (s) => page.indexOf(s),
    );
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('makes a select of a field with choices, and refuses another value', async () => {
    const form = (await dev.get(`/apps/new?service=${h.serviceId}`)).body;
    expect(form).toMatch(/<select id="cf_platform" name="cf_platform" required/);
    expect(form).toContain('<option value="desktop"');
    // a custom field goes where its position puts it among the built-in ones (name 100, description 200)
    expect(form.indexOf('id="description"')).toBeLessThan(form.indexOf('id="cf_platform"'));
    expect(form.indexOf('id="name"')).toBeLessThan(form.indexOf('id="cf_team"'));
    expect(form.indexOf('id="cf_team"')).toBeLessThan(form.indexOf('id="description"'));
    const refused = await dev.submit('/apps/new', {
      serviceId: h.serviceId,
      planId: h.plans.free,
      name: 'TV app',
      cf_platform: 'tv',
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('Platform must be one of: mobile, web, desktop');
    const created = await dev.submit('/apps/new', {
      serviceId: h.serviceId,
      planId: h.plans.free,
      name: 'Web app',
      cf_platform: 'web',
    });
    expect(created.posted).toBe(303);
  });

  it('asks an invitee for the required user fields and creates the second user', async () => {
    await dev.get('/team');
    const sent = await dev.submit('/team/invitations', { email: 'second@partner.test' });
    expect(sent.statusCode).toBe(200);
    const mail = (await listMail(h.store.db)).find((m) => m.to === 'second@partner.test');
    const link = /\/invitations\/[A-Za-z0-9_-]+/.exec(mail?.text ?? '')?.[0] ?? '';
    const invitee = h.agent();
    const page = (await invitee.get(link)).body;
    expect(page).toContain('name="ucf_first_name"');
    expect(page).toContain('name="ucf_last_name"');
    const missing = await invitee.post(link, { name: 'Second User', password: 'correct horse battery' });
    expect(missing.statusCode).toBe(400);
    expect(missing.body).toContain('First Name is required');
    const joined = await invitee.post(link, {
      name: 'Second User',
      password: 'correct horse battery',
      ucf_first_name: 'Second',
      ucf_last_name: 'User',
    });
    expect(joined.statusCode).toBe(303);
    const team = (await dev.get('/team')).body;
    expect(team).toContain('Second User');
  });
});
