/**
 * Issue 13 on SQLite and PostgreSQL: every creating form of the portal follows POST → redirect → GET (a reload
 * never creates twice), and the application and docs pages give ready-to-run snippets against the gateway — with
 * the new key right after creation, with a placeholder afterwards (a key is shown once).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getApplication, listApplications } from '../../src/access/index.js';
import { dialects } from '../support/stores.js';
import { type PortalHarness, signUp, startPortal } from './portal-harness.js';
import type { WebAgent } from './web-agent.js';

const secretIn = (html: string) => /id="new-secret" readonly value="([^"]+)"/.exec(html)?.[1] ?? '';
const unescapeHtml = (s: string) =>
  s
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
const snippetIn = (html: string, lang: string) =>
  unescapeHtml(new RegExp(`<code id="snippet-${lang}"[^>]*>([^<]*)</code>`).exec(html)?.[1] ?? '');

describe.each(dialects)('POST → redirect → GET and snippets (%s)', (dialect) => {
  let h: PortalHarness;
  let dev: WebAgent;
  let appId = '';

  beforeAll(async () => {
    h = await startPortal(dialect);
    dev = await signUp(h, 'prg@snippets.test', 'Snippets');
  });
  afterAll(() => h.close());

  const appsOfAccount = async () =>
    (await listApplications(h.store.db, { serviceId: h.serviceId }, { limit: 200 })).data.filter(
      (a) => a.name === 'Reloaded',
    );

  it('creates an application once, shows its key once in every snippet, and a reload creates nothing', async () => {
    await dev.get(`/apps/new?service=${h.serviceId}`);
    const created = await dev.submit('/apps/new', {
      serviceId: h.serviceId,
      planId: h.plans.free,
      name: 'Reloaded',
    });
    expect(created.posted).toBe(303);
    expect(created.location).toMatch(/^\/apps\/app_[0-9a-z]+$/);
    appId = created.location.slice('/apps/'.length);
    const key = secretIn(created.body);
    expect(key).toMatch(/^trk_/);
    const curl = snippetIn(created.body, 'curl');
    expect(curl).toMatch(/^curl -sS 'http[^']+\/weather\/'/);
    expect(curl).toContain(`-H 'X-API-Key: ${key}'`);
    expect(snippetIn(created.body, 'javascript')).toContain(`"X-API-Key": "${key}"`);
    expect(snippetIn(created.body, 'python')).toContain(`headers={"X-API-Key": "${key}"}`);

    // the browser's reload is a GET of the page it was sent to: nothing new, and the key is not shown again
    const reload = await dev.get(created.location);
    expect(reload.statusCode).toBe(200);
    expect(reload.body).not.toContain(key);
    expect(snippetIn(reload.body, 'curl')).toContain(`-H 'X-API-Key: YOUR_KEY'`);
    expect(reload.body).toContain('data-testid="snippet-placeholder-note"');
    expect(await appsOfAccount()).toHaveLength(1);
    expect((await getApplication(h.store.db, appId)).credentials).toHaveLength(1);
  });

  it('adds a key once: a reload of the page shows it no more and adds nothing', async () => {
    const added = await dev.submit(`/apps/${appId}/keys`, {});
    expect(added.posted).toBe(303);
    expect(added.location).toBe(`/apps/${appId}`);
    const key = secretIn(added.body);
    expect(key).toMatch(/^trk_/);
    expect(snippetIn(added.body, 'curl')).toContain(key);
    const reload = await dev.get(added.location);
    expect(reload.body).not.toContain(key);
    expect((await getApplication(h.store.db, appId)).credentials).toHaveLength(2);
  });

  it('shows the key to no other session: the one-time cookie is bound to the session that made it', async () => {
    await dev.get(`/apps/${appId}`);
    const posted = await dev.post(`/apps/${appId}/keys`, {});
    expect(posted.statusCode).toBe(303);
    const flash = dev.cookies.get('trellis_flash') ?? '';
    expect(flash).not.toBe('');
    // the same developer signed in elsewhere (another session) replays the cookie: nothing is shown
    const elsewhere = h.agent();
    await elsewhere.get('/login');
    await elsewhere.post('/login', { email: 'prg@snippets.test', password: 'correct horse battery' });
    elsewhere.cookies.set('trellis_flash', flash);
    const page = await elsewhere.get(`/apps/${appId}`);
    expect(page.statusCode).toBe(200);
    expect(secretIn(page.body)).toBe('');
    // the session that made it sees it once
    expect(secretIn((await dev.get(`/apps/${appId}`)).body)).toMatch(/^trk_/);
  });

  it('keeps a visitor’s “Get a key” across signup and login, and opens a first run filled in', async () => {
    const chosen = `/apps/new?service=${h.serviceId}`;
    const visitor = h.agent();
    const home = await visitor.get('/');
    expect(home.body).toContain(`href="/signup?next=${encodeURIComponent(chosen)}"`);
    const signup = await visitor.get(`/signup?next=${encodeURIComponent(chosen)}`);
    expect(signup.body).toContain(`name="next" value="${chosen.replace('&', '&amp;')}"`);
    expect(signup.body).toContain(`href="/login?next=${encodeURIComponent(chosen)}"`);
    const login = await h.agent().get(`/login?next=${encodeURIComponent(chosen)}`);
    expect(login.body).toContain(`href="/signup?next=${encodeURIComponent(chosen)}"`);
    const fields = { organization: 'Visitors', name: 'Vi Sitor', password: 'correct horse battery' };
    const done = await visitor.post('/signup', { ...fields, email: 'visitor@snippets.test', next: chosen });
    expect([done.statusCode, done.headers.location]).toEqual([303, chosen]);
    const first = await visitor.get(chosen);
    expect(first.body).toContain('data-testid="first-run"');
    expect(first.body).toContain('value="Visitors app"');
    // without a choice, or with another site's address, signup ends on the first-run page
    for (const next of ['', '//evil.test/x']) {
      const other = h.agent();
      await other.get('/signup');
      const res = await other.post('/signup', { ...fields, email: `v${next.length}@snippets.test`, next });
      expect(res.headers.location).toBe('/apps/new?welcome=1');
    }
  });

  it('names a form’s problems by their labels, not their field names', async () => {
    await dev.get(`/apps/new?service=${h.serviceId}`);
    const refused = await dev.post('/apps/new', { serviceId: h.serviceId, planId: 'plan_nope', name: 'X' });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('<div>Plan: choose one of the plans of the API</div>');
    expect(refused.body).not.toContain('planId:');
  });

  it('folds away the charts of a metric without calls, and shows what remains of each limit', async () => {
    const usage = (await dev.get(`/apps/${appId}/usage`)).body;
    expect(usage).toContain('data-testid="empty-charts-hits"');
    expect(usage).toContain('data-testid="remaining-forecast-day"><strong>1,000<');
  });

  it('gives the docs page snippets that call the gateway, not the try-it relay', async () => {
    const docs = await dev.get(`/apis/${h.serviceId}/docs`);
    const curl = snippetIn(docs.body, 'curl');
    expect(curl).toMatch(/^curl -sS 'http[^']+\/weather\/'/);
    expect(curl).not.toContain('/try/');
    expect(curl).toContain('YOUR_KEY');
  });
});
