/**
 * The console's Portal pages of issue 13: mail templates (refused with the variable named, previewed with sample
 * data and escaped, saved, reset), content pages (created once — POST → redirect → GET —, a taken address or a
 * refused link said on the page), the showcase, the sender and contact addresses; sign-in and CSRF on every form.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listMail } from '../../src/mail/index.js';
import { listContentPages } from '../../src/portal/index.js';
import { type PortalHarness, signUp, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';
import { dialects } from '../support/stores.js';

async function signInAdmin(h: PortalHarness): Promise<WebAgent> {
  const agent = h.agent();
  await agent.get('/admin/login');
  const res = await agent.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
  expect(res.statusCode).toBe(303);
  return agent;
}

describe.each(dialects)('console: the portal’s brand (%s)', (dialect) => {
  let h: PortalHarness;
  let admin: WebAgent;
  beforeAll(async () => {
    h = await startPortal(dialect);
    admin = await signInAdmin(h);
  }, 60_000);
  afterAll(() => h.close());

  it('edits a mail template: an unknown variable is named, a preview shows sample data, a save is used, a reset undoes it', async () => {
    const list = await admin.get('/admin/portal-settings/mail-templates');
    expect(list.body).toContain('Welcome after signup');
    await admin.get('/admin/portal-settings/mail-templates/signup');
    const refused = await admin.post('/admin/portal-settings/mail-templates/signup', {
      subject: 'Hi {{name}}',
      body: 'Your {{secret}}',
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('unknown variable {{secret}}');

    await admin.get('/admin/portal-settings/mail-templates/signup');
    const preview = await admin.post('/admin/portal-settings/mail-templates/signup/preview', {
      subject: 'Hi {{name}} <b>',
      body: 'Welcome to {{portalName}}',
    });
    expect(preview.statusCode).toBe(200);
    expect(preview.body).toContain('Hi Dana Developer &lt;b&gt;');
    expect(preview.body).toContain('Welcome to Developer Portal');
    expect(await listMail(h.store.db)).toEqual([]);

    await admin.get('/admin/portal-settings/mail-templates/signup');
    const saved = await admin.submit('/admin/portal-settings/mail-templates/signup', {
      subject: 'Welcome, {{name}}',
      body: 'Sign in at {{loginUrl}}',
    });
    expect(saved.posted).toBe(303);
    expect(saved.body).toContain('Template saved');
    await signUp(h, 'first@brand.test');
    expect((await listMail(h.store.db, { to: 'first@brand.test' }))[0]?.subject).toBe('Welcome, Dev Eloper');

    const reset = await admin.submit('/admin/portal-settings/mail-templates/signup/reset', {});
    expect(reset.body).toContain('Back to the default template');
    await signUp(h, 'second@brand.test');
    expect((await listMail(h.store.db, { to: 'second@brand.test' }))[0]?.subject).toBe(
      'Welcome to Developer Portal',
    );
  });

  it('creates a content page once, and says why a taken address or a script link is refused', async () => {
    await admin.get('/admin/portal-settings/pages');
    const created = await admin.submit('/admin/portal-settings/pages', {
      title: 'Getting started',
      slug: 'getting-started',
      body: '# Steps\n\n1. Sign up',
      visibility: 'everyone',
      inNavigation: 'yes',
      position: '',
    });
    expect(created.posted).toBe(303);
    expect(created.location).toMatch(/^\/admin\/portal-settings\/pages\/cpg_[0-9a-z]+$/);
    expect(created.body).toContain('Page created.');
    expect(created.body).toContain('<h1>Steps</h1>');
    // a reload of the page it landed on creates nothing
    await admin.get(created.location);
    expect(await listContentPages(h.store.db)).toHaveLength(1);
    expect((await h.agent().get('/')).body).toContain('href="/pages/getting-started"');

    await admin.get('/admin/portal-settings/pages');
    const taken = await admin.post('/admin/portal-settings/pages', {
      title: 'Again',
      slug: 'getting-started',
      body: '',
      visibility: 'everyone',
    });
    expect(taken.statusCode).toBe(400);
    expect(taken.body).toContain('A page with the address getting-started exists.');
    await admin.get('/admin/portal-settings/pages');
    const script = await admin.post('/admin/portal-settings/pages', {
      title: 'Bad',
      slug: 'bad',
      body: '[x](javascript:alert(1))',
      visibility: 'everyone',
    });
    expect(script.statusCode).toBe(400);
    expect(script.body).toContain('the link &quot;javascript:alert(1)&quot; is not allowed');

    await admin.get(created.location);
    const edited = await admin.submit(created.location, {
      title: 'Getting started',
      slug: 'getting-started',
      body: 'For developers only.',
      visibility: 'developers',
    });
    expect(edited.body).toContain('Page saved.');
    expect((await h.agent().get('/pages/getting-started', { accept: 'text/html' })).statusCode).toBe(404);
    await admin.submit(`${created.location}/delete`, {});
    expect(await listContentPages(h.store.db)).toHaveLength(0);
  });

  it('features a live application in the showcase and removes it', async () => {
    const dev = await signUp(h, 'partner@brand.test', 'Partner Co');
    await dev.get(`/apps/new?service=${h.serviceId}`);
    const app = await dev.submit('/apps/new', {
      serviceId: h.serviceId,
      planId: h.plans.free,
      name: 'Partner sync',
    });
    const appId = app.location.slice('/apps/'.length);
    const page = await admin.get('/admin/portal-settings/showcase');
    expect(page.body).toContain(`value="${appId}"`);
    const saved = await admin.submit('/admin/portal-settings/showcase', {
      applicationId: appId,
      name: 'Partner Co sync',
      description: 'Orders both ways.',
      linkUrl: 'https://partner.example/',
      featured: 'yes',
    });
    expect(saved.posted).toBe(303);
    expect(saved.body).toContain('Partner Co sync');
    expect(saved.body).toContain('not given');
    const bad = await admin.post('/admin/portal-settings/showcase', {
      applicationId: 'app_nothing',
      name: 'X',
      description: '',
      featured: 'yes',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('choose an application');
    await admin.get('/admin/portal-settings/showcase');
    const removed = await admin.submit(`/admin/portal-settings/showcase/${appId}/delete`, {});
    expect(removed.body).not.toContain('Partner Co sync');
  });

  it('keeps the sender and contact addresses; the contact is shown in the portal', async () => {
    await admin.get('/admin/portal-settings');
    const res = await admin.post('/admin/portal-settings', {
      name: 'Acme APIs',
      logoUrl: '',
      faviconUrl: '',
      primaryColor: '#1f6f5c',
      accentColor: '#e0a526',
      customCss: '',
      footerLinks: '',
      signupMode: 'open',
      senderAddress: 'developers@acme.test',
      contactEmail: 'api@acme.test',
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('value="developers@acme.test"');
    expect((await h.agent().get('/')).body).toContain('href="mailto:api@acme.test"');
  });

  it('asks for sign-in and a CSRF token on every new form', async () => {
    const forms = [
      '/admin/portal-settings/mail-templates/signup',
      '/admin/portal-settings/mail-templates/signup/preview',
      '/admin/portal-settings/mail-templates/signup/reset',
      '/admin/portal-settings/pages',
      '/admin/portal-settings/pages/cpg_x',
      '/admin/portal-settings/pages/cpg_x/delete',
      '/admin/portal-settings/showcase',
      '/admin/portal-settings/showcase/app_x/delete',
    ];
    const stranger = h.agent();
    await stranger.get('/admin/login');
    for (const url of forms) {
      expect((await admin.post(url, {}, { csrf: null })).statusCode, url).toBe(403);
      const anonymous = await stranger.post(url, {});
      expect(anonymous.statusCode, url).toBe(303);
      expect(String(anonymous.headers.location), url).toMatch(/^\/admin\/login/);
    }
    for (const url of [
      '/admin/portal-settings/mail-templates',
      '/admin/portal-settings/pages',
      '/admin/portal-settings/showcase',
    ]) {
      expect(String((await stranger.get(url)).headers.location), url).toMatch(/^\/admin\/login/);
    }
  });
});
