/**
 * The portal's access control and form security through `app.inject`: CSRF, session cookies, login
 * throttling, escaping, and that one account can never read or change another's data, even by editing ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeApplicationPlan, createCustomField, updatePortalSettings } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import { type PortalHarness, signUp, startPortal } from './portal-harness.js';
import type { WebAgent } from './web-agent.js';

const appIdIn = (html: string) => /\/apps\/(app_[0-9a-z]+)/.exec(html)?.[1] ?? '';

async function createApp(agent: WebAgent, h: PortalHarness, name: string, planId = h.plans.free) {
  await agent.get(`/apps/new?service=${h.serviceId}`);
  return agent.submit('/apps/new', { serviceId: h.serviceId, planId, name });
}

describe('portal security', () => {
  let h: PortalHarness;
  let alice: WebAgent;
  let mallory: WebAgent;
  let aliceApp: string;

  beforeAll(async () => {
    h = await startPortal();
    alice = await signUp(h, 'alice@acme.test', 'Acme');
    mallory = await signUp(h, 'mallory@evil.test', 'Evil');
    const res = await createApp(alice, h, 'Alice app');
    expect(res.posted).toBe(303);
    aliceApp = appIdIn(res.body);
    expect(aliceApp).toMatch(/^app_/);
  });
  afterAll(() => h.close());

  it('sets an HttpOnly, SameSite=Lax session cookie (not Secure over plain HTTP)', async () => {
    const agent = h.agent();
    await agent.get('/login');
    const res = await agent.post('/login', { email: 'alice@acme.test', password: 'correct horse battery' });
    expect(res.statusCode).toBe(303);
    const cookie = res.cookies.find((c) => c.name === 'trellis_portal');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(cookie?.secure).toBeFalsy();
  });

  it('marks cookies Secure when the request arrives over TLS or the public URL is https', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/login',
      headers: { 'x-forwarded-proto': 'https' },
    });
    // trustProxy is off: a forwarded header alone is not believed.
    expect(res.cookies.find((c) => c.name === 'trellis_csrf')?.secure).toBeFalsy();
  });

  it('refuses a form without a CSRF token, with a wrong one, and from another origin', async () => {
    await alice.get('/apps');
    const none = await alice.post(`/apps/${aliceApp}/keys`, {}, { csrf: null });
    expect(none.statusCode).toBe(403);
    expect(none.body).toContain('not sent from this site');
    const forged = await alice.post(`/apps/${aliceApp}/keys`, {}, { csrf: 'x'.repeat(43) });
    expect(forged.statusCode).toBe(403);
    // Mallory's own valid token does not work with Alice's session.
    await mallory.get('/apps');
    const stolen = await alice.post(`/apps/${aliceApp}/keys`, {}, { csrf: mallory.csrf() });
    expect(stolen.statusCode).toBe(403);
    await alice.get('/apps');
    const crossSite = await alice.post(
      `/apps/${aliceApp}/keys`,
      {},
      { headers: { origin: 'https://evil.test' } },
    );
    expect(crossSite.statusCode).toBe(403);
    const anonymous = h.agent();
    const login = await anonymous.post('/login', { email: 'alice@acme.test', password: 'x' }, { csrf: null });
    expect(login.statusCode).toBe(403);
  });

  it('answers 404 for another account’s application, on every page and action', async () => {
    await mallory.get('/apps');
    for (const url of [`/apps/${aliceApp}`, `/apps/${aliceApp}/usage`]) {
      const res = await mallory.get(url);
      expect(res.statusCode, url).toBe(404);
      expect(res.body).not.toContain('Alice app');
    }
    const detail = await alice.get(`/apps/${aliceApp}`);
    const keyId = /\/keys\/(key_[0-9a-z]+)\/revoke/.exec(detail.body)?.[1] ?? '';
    await mallory.get('/apps');
    for (const [url, fields] of [
      [`/apps/${aliceApp}`, { name: 'pwned', allowedIps: '' }],
      [`/apps/${aliceApp}/keys`, {}],
      [`/apps/${aliceApp}/keys/${keyId}/revoke`, {}],
      [`/apps/${aliceApp}/plan`, { planId: h.plans.pro }],
    ] as const) {
      const res = await mallory.post(url, fields);
      expect(res.statusCode, url).toBe(404);
    }
    const after = await alice.get(`/apps/${aliceApp}`);
    expect(after.body).toContain('Alice app');
    expect((after.body.match(/\/revoke"/g) ?? []).length).toBe(1);
  });

  it('does not list another account’s applications or team', async () => {
    const apps = await mallory.get('/apps');
    expect(apps.body).not.toContain(aliceApp);
    const team = await mallory.get('/team');
    expect(team.body).not.toContain('alice@acme.test');
  });

  it('does not let a developer remove a member of another account', async () => {
    const team = await alice.get('/team');
    expect(team.statusCode).toBe(200);
    const malloryTeam = await mallory.get('/team');
    const malloryId = /\/team\/members\/(usr_[0-9a-z]+)\/role/.exec(malloryTeam.body)?.[1];
    expect(malloryId).toBeUndefined(); // alone in the account: no actions on themself
    const row = await h.store.db
      .selectFrom('users')
      .select('id')
      .where('email', '=', 'alice@acme.test')
      .executeTakeFirstOrThrow();
    const res = await mallory.post(`/team/members/${row.id}/delete`, {});
    expect(res.statusCode).toBe(404);
  });

  it('never offers or accepts a hidden plan, except to the account on it', async () => {
    const anon = await h.agent().get(`/apis/${h.serviceId}`);
    expect(anon.body).toContain('Free');
    expect(anon.body).not.toContain('Partner Secret');
    await mallory.get(`/apps/new?service=${h.serviceId}`);
    const form = await mallory.get(`/apps/new?service=${h.serviceId}`);
    expect(form.body).not.toContain(h.plans.secret);
    const res = await mallory.submit('/apps/new', {
      serviceId: h.serviceId,
      planId: h.plans.secret,
      name: 'sneaky',
    });
    expect(res.statusCode).toBe(400);
    const ask = await createApp(mallory, h, 'Mallory app');
    const malloryApp = appIdIn(ask.body);
    await mallory.get(`/apps/${malloryApp}`);
    const change = await mallory.post(`/apps/${malloryApp}/plan`, { planId: h.plans.secret });
    expect(change.statusCode).toBe(400);

    // The provider puts Alice on the hidden plan: she sees it, Mallory still does not.
    await changeApplicationPlan({ db: h.store.db, clock: h.clock }, systemActor, aliceApp, h.plans.secret);
    expect((await alice.get(`/apis/${h.serviceId}`)).body).toContain('Partner Secret');
    expect((await mallory.get(`/apis/${h.serviceId}`)).body).not.toContain('Partner Secret');
    await changeApplicationPlan({ db: h.store.db, clock: h.clock }, systemActor, aliceApp, h.plans.free);
  });

  it('escapes what developers type', async () => {
    const res = await createApp(alice, h, '<script>alert(1)</script>');
    expect(res.posted).toBe(303);
    expect(res.body).not.toContain('<script>alert(1)</script>');
    expect(res.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
  });

  it('slows login guessing with delays, and lets the right password in once the delay passed', async () => {
    await signUp(h, 'target@acme.test', 'Target');
    const agent = h.agent();
    for (let i = 0; i < 5; i++) {
      await agent.get('/login');
      const res = await agent.post('/login', { email: 'target@acme.test', password: `wrong-${i}-password` });
      expect(res.statusCode).toBe(401);
    }
    await agent.get('/login');
    const blocked = await agent.post('/login', {
      email: 'target@acme.test',
      password: 'correct horse battery',
    });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBe('1');
    h.clock.advance(1000);
    await agent.get('/login');
    const later = await agent.post('/login', {
      email: 'target@acme.test',
      password: 'correct horse battery',
    });
    expect(later.statusCode).toBe(303);
  });

  it('redirects anonymous visitors to sign in, and only to local pages afterwards', async () => {
    const res = await h.agent().get(`/apps/${aliceApp}`);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/login?next=${encodeURIComponent(`/apps/${aliceApp}`)}`);
    const agent = h.agent();
    await agent.get('/login');
    const login = await agent.post('/login', {
      email: 'alice@acme.test',
      password: 'correct horse battery',
      next: '//evil.test/phish',
    });
    expect(login.headers.location).toBe('/apps');
  });

  it('enforces required custom fields at signup and honours the signup mode', async () => {
    await createCustomField({ db: h.store.db, clock: h.clock }, systemActor, {
      target: 'account',
      name: 'vat_number',
      label: 'VAT number',
      required: true,
    });
    const agent = h.agent();
    const page = await agent.get('/signup');
    expect(page.body).toContain('VAT number');
    const missing = await agent.post('/signup', {
      organization: 'NoVat',
      name: 'N',
      email: 'novat@x.test',
      password: 'correct horse battery',
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.body).toContain('VAT number is required');
    const ok = await agent.post('/signup', {
      organization: 'WithVat',
      name: 'W',
      email: 'vat@x.test',
      password: 'correct horse battery',
      acf_vat_number: 'DE123',
    });
    expect(ok.statusCode).toBe(303);

    const cd = { db: h.store.db, clock: h.clock };
    await updatePortalSettings(cd, systemActor, { signupMode: 'approval' });
    const pending = h.agent();
    await pending.get('/signup');
    await pending.post('/signup', {
      organization: 'Later',
      name: 'L',
      email: 'later@x.test',
      password: 'correct horse battery',
      acf_vat_number: 'FR1',
    });
    const apps = await pending.get('/apps');
    expect(apps.body).toContain('awaits the approval');
    const refused = await createApp(pending, h, 'too early');
    expect(refused.statusCode).toBe(409);

    await updatePortalSettings(cd, systemActor, { signupMode: 'closed' });
    const closed = h.agent();
    expect((await closed.get('/signup')).body).toContain('Accounts are created by the provider');
    const post = await closed.post('/signup', {
      organization: 'X',
      name: 'X',
      email: 'x@x.test',
      password: 'correct horse battery',
    });
    expect(post.statusCode).toBe(403);
    await updatePortalSettings(cd, systemActor, { signupMode: 'open' });
  });
});
