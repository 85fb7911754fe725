/**
 * Content pages and the partner showcase (issue 13), on SQLite and PostgreSQL: Markdown rendered without HTML and
 * with links checked; the front page; pages for everyone, for signed-in developers and for accounts on given
 * plans (404 for anyone else, and absent from their navigation); the management API's refusals; the showcase shown
 * only when the provider features an application and its partner consents (consent given in the portal by an admin
 * of the owning account only); the console's editors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/events/index.js';
import { createContentPage, writeShowcaseEntry } from '../../src/portal/index.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';
import { type PortalHarness, signUp, startPortal } from './portal-harness.js';
import type { WebAgent } from './web-agent.js';

async function newApp(h: PortalHarness, dev: WebAgent, planId: string, name: string): Promise<string> {
  await dev.get(`/apps/new?service=${h.serviceId}`);
  const created = await dev.submit('/apps/new', { serviceId: h.serviceId, planId, name });
  expect(created.location).toMatch(/^\/apps\/app_[0-9a-z]+$/);
  return created.location.slice('/apps/'.length);
}

describe.each(dialects)('content pages and the showcase in the portal (%s)', (dialect) => {
  let h: PortalHarness;
  let deps: { db: PortalHarness['store']['db']; clock: PortalHarness['clock'] };
  beforeAll(async () => {
    h = await startPortal(dialect);
    deps = { db: h.store.db, clock: h.clock };
  }, 60_000);
  afterAll(() => h.close());

  it('shows the front page in Markdown, with HTML shown as text', async () => {
    await createContentPage(deps, systemActor, {
      slug: 'index',
      title: 'Payments for platforms',
      body: '## Start here\n\nRead the [guide](/pages/guide) or write to <b>us</b>.\n\n<script>alert(1)</script>',
    });
    const home = await h.agent().get('/');
    expect(home.statusCode).toBe(200);
    expect(home.body).toContain('<h1>Payments for platforms</h1>');
    expect(home.body).toContain('<h2>Start here</h2>');
    expect(home.body).toContain('<a href="/pages/guide">guide</a>');
    expect(home.body).toContain('&lt;b&gt;us&lt;/b&gt;');
    expect(home.body).not.toContain('<script>alert(1)');
    // the APIs are still listed under it
    expect(home.body).toContain('Weather');
  });

  it('shows a page to everyone, to developers, or to accounts on plans; 404 and no link for anyone else', async () => {
    await createContentPage(deps, systemActor, {
      slug: 'guide',
      title: 'Guide',
      body: 'For all.',
      position: 1,
    });
    await createContentPage(deps, systemActor, {
      slug: 'sdk',
      title: 'SDK downloads',
      body: 'For developers.',
      visibility: 'developers',
      position: 2,
    });
    await createContentPage(deps, systemActor, {
      slug: 'pro-support',
      title: 'Pro support',
      body: 'Call us.',
      visibility: 'plans',
      planIds: [h.plans.free],
      position: 3,
    });
    const visitor = h.agent();
    const html = { accept: 'text/html' };
    expect((await visitor.get('/pages/guide', html)).statusCode).toBe(200);
    const home = await visitor.get('/');
    expect(home.body).toContain('href="/pages/guide"');
    expect(home.body).not.toContain('href="/pages/sdk"');
    expect(home.body).not.toContain('Pro support');
    const hidden = await visitor.get('/pages/sdk', html);
    expect(hidden.statusCode).toBe(404);
    // the same answer as for a page that does not exist
    const missing = await visitor.get('/pages/nothing-here', html);
    expect(missing.statusCode).toBe(404);
    expect(hidden.body.replace(/sdk/g, 'x')).toBe(missing.body.replace(/nothing-here/g, 'x'));
    expect((await visitor.get('/pages/pro-support', html)).statusCode).toBe(404);

    const dev = await signUp(h, 'dev@pages.test');
    expect((await dev.get('/pages/sdk')).statusCode).toBe(200);
    expect((await dev.get('/pages/pro-support')).statusCode).toBe(404);
    expect((await dev.get('/apps')).body).not.toContain('Pro support');
    await newApp(h, dev, h.plans.free, 'On free');
    const page = await dev.get('/pages/pro-support');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Call us.');
    expect(page.body).toContain('href="/pages/pro-support" aria-current="page"');

    // an account on another plan (pending approval, not live) does not see it
    const other = await signUp(h, 'other@pages.test', 'Other');
    await newApp(h, other, h.plans.pro, 'On pro');
    expect((await other.get('/pages/pro-support')).statusCode).toBe(404);
    expect((await other.get('/pages/index')).statusCode).toBe(404);
  });

  it('features an application only with its partner’s consent, given by an admin of its account', async () => {
    const owner = await signUp(h, 'owner@stories.test', 'Storied');
    const appId = await newApp(h, owner, h.plans.free, 'Shop sync');
    await writeShowcaseEntry(deps, systemActor, appId, {
      featured: true,
      name: 'Storied Shop Sync',
      description: 'Keeps <shops> in sync.',
      linkUrl: 'https://storied.example/',
      logoUrl: 'https://storied.example/logo.png',
    });
    const visitor = h.agent();
    expect((await visitor.get('/success-stories')).body).not.toContain('Storied Shop Sync');

    // nobody else may consent for it: another account's developer gets 404, as for an unknown application
    const stranger = await signUp(h, 'stranger@stories.test', 'Stranger');
    await stranger.get('/apps');
    expect((await stranger.post(`/apps/${appId}/showcase`, { consent: 'yes' })).statusCode).toBe(404);
    expect((await stranger.get(`/apps/${appId}/showcase`)).statusCode).toBe(404);
    // and no form posts without its CSRF token
    expect((await owner.post(`/apps/${appId}/showcase`, { consent: 'yes' }, { csrf: null })).statusCode).toBe(
      403,
    );

    const page = await owner.get(`/apps/${appId}/showcase`);
    expect(page.body).toContain('Not shown: waiting for your consent.');
    const consented = await owner.submit(`/apps/${appId}/showcase`, { consent: 'yes' });
    expect(consented.posted).toBe(303);
    expect(consented.body).toContain('Shown on the Success stories page.');
    const stories = await visitor.get('/success-stories');
    expect(stories.body).toContain('Storied Shop Sync');
    expect(stories.body).toContain('Keeps &lt;shops&gt; in sync.');
    expect(stories.body).toContain('href="https://storied.example/"');

    const withdrawn = await owner.submit(`/apps/${appId}/showcase`, {});
    expect(withdrawn.body).toContain('Consent withdrawn');
    expect((await visitor.get('/success-stories')).body).not.toContain('Storied Shop Sync');

    // a consented application the provider does not feature is not shown
    await owner.get(`/apps/${appId}/showcase`);
    await owner.submit(`/apps/${appId}/showcase`, { consent: 'yes' });
    await writeShowcaseEntry(deps, systemActor, appId, {
      featured: false,
      name: 'Storied Shop Sync',
      description: '',
    });
    expect((await visitor.get('/success-stories')).body).not.toContain('Storied Shop Sync');
  });
});

describe.each(dialects)('content pages and showcase through the management API (%s)', (dialect) => {
  let h: ControlHarness;
  beforeAll(async () => {
    h = await startControl(dialect);
  }, 60_000);
  afterAll(() => h.close());

  it('creates, reads, updates and deletes a page; refuses a taken address, bad links and missing plans', async () => {
    const created = await h.call('POST', '/admin/api/content-pages', {
      slug: 'getting-started',
      title: 'Getting started',
      body: '1. Sign up\n2. [Get a key](/apps/new)\n\nMail [us](mailto:api@acme.example)',
    });
    expect(created.statusCode).toBe(201);
    const page = created.json();
    expect(page).toMatchObject({ url: '/pages/getting-started', visibility: 'everyone', inNavigation: true });
    expect(page.id).toMatch(/^cpg_/);

    const taken = await h.call('POST', '/admin/api/content-pages', {
      slug: 'getting-started',
      title: 'Again',
      body: '',
    });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error.code).toBe('conflict');

    const script = await h.call('POST', '/admin/api/content-pages', {
      slug: 'bad',
      title: 'Bad',
      body: '[click](javascript:alert(1)) ![x](data:image/svg+xml,abc)',
    });
    expect(script.statusCode).toBe(400);
    const messages = (script.json().error.details as { message: string }[]).map((d) => d.message).join('\n');
    expect(messages).toContain('javascript:alert(1)');
    expect(messages).toContain('data:image/svg+xml,abc');

    const noPlans = await h.call('POST', '/admin/api/content-pages', {
      slug: 'partners',
      title: 'Partners',
      body: '',
      visibility: 'plans',
    });
    expect(noPlans.statusCode).toBe(400);
    const unknownPlan = await h.call('POST', '/admin/api/content-pages', {
      slug: 'partners',
      title: 'Partners',
      body: '',
      visibility: 'plans',
      planIds: ['pln_nothing'],
    });
    expect(unknownPlan.statusCode).toBe(400);
    expect(unknownPlan.json().error.message).toContain('pln_nothing');
    const badSlug = await h.call('POST', '/admin/api/content-pages', {
      slug: '../etc',
      title: 'x',
      body: '',
    });
    expect(badSlug.statusCode).toBe(400);

    const patched = await h.call('PATCH', `/admin/api/content-pages/${page.id}`, {
      visibility: 'developers',
      inNavigation: false,
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({
      visibility: 'developers',
      inNavigation: false,
      title: 'Getting started',
    });
    expect((await h.call('GET', `/admin/api/content-pages/${page.id}`)).json().visibility).toBe('developers');
    expect((await h.call('GET', '/admin/api/content-pages')).json().data).toHaveLength(1);
    expect((await h.call('DELETE', `/admin/api/content-pages/${page.id}`)).statusCode).toBe(204);
    expect((await h.call('GET', `/admin/api/content-pages/${page.id}`)).statusCode).toBe(404);
    expect((await h.call('DELETE', `/admin/api/content-pages/${page.id}`)).statusCode).toBe(404);
  });

  it('refuses a showcase entry for an unknown application and bad links', async () => {
    const unknown = await h.call('PUT', '/admin/api/applications/app_nothing/showcase', {
      featured: true,
      name: 'X',
      description: '',
    });
    expect(unknown.statusCode).toBe(404);
    const badLink = await h.call('PUT', '/admin/api/applications/app_nothing/showcase', {
      featured: true,
      name: 'X',
      description: '',
      linkUrl: 'javascript:alert(1)',
    });
    expect(badLink.statusCode).toBe(400);
    expect((await h.call('GET', '/admin/api/showcase')).json()).toEqual({ data: [] });
    expect((await h.call('GET', '/admin/api/applications/app_nothing/showcase')).statusCode).toBe(404);
  });
});
