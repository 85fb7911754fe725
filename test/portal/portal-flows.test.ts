/**
 * The portal's flows through `app.inject`, on SQLite and PostgreSQL: key rotation, password reset by mail,
 * single sign-on, team invitations, and the interactive docs document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPlan,
  createService,
  publishOpenapi,
  setServiceOpenapi,
  updateService,
} from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { listMail } from '../../src/mail/index.js';
import { signSsoToken, webKey } from '../../src/portal/index.js';
import { dialects } from '../support/stores.js';
import { type PortalHarness, signUp, startPortal } from './portal-harness.js';
import type { WebAgent } from './web-agent.js';

const secretIn = (html: string) => /id="new-secret" readonly value="([^"]+)"/.exec(html)?.[1] ?? '';

describe.each(dialects)('portal flows (%s)', (dialect) => {
  let h: PortalHarness;
  let dev: WebAgent;

  beforeAll(async () => {
    h = await startPortal(dialect);
    dev = await signUp(h, 'dev@flows.test', 'Flows');
  });
  afterAll(() => h.close());

  it('creates an application with a key shown once, rotates it, and refuses to revoke the last key', async () => {
    await dev.get(`/apps/new?service=${h.serviceId}`);
    const created = await dev.submit('/apps/new', {
      serviceId: h.serviceId,
      planId: h.plans.free,
      name: 'Rotator',
    });
    expect(created.posted).toBe(303);
    const first = secretIn(created.body);
    expect(first).toMatch(/^trk_/);
    const appId = /\/apps\/(app_[0-9a-z]+)\/usage/.exec(created.body)?.[1] ?? '';
    const page = await dev.get(`/apps/${appId}`);
    expect(page.body).not.toContain(first);
    expect(page.body).toContain(first.slice(0, 10));
    const oldKey = /\/keys\/(key_[0-9a-z]+)\/revoke/.exec(page.body)?.[1] ?? '';

    const lastRevoke = await dev.post(`/apps/${appId}/keys/${oldKey}/revoke`, {});
    expect(lastRevoke.statusCode).toBe(409);
    await dev.get(`/apps/${appId}`);
    const added = await dev.submit(`/apps/${appId}/keys`, {});
    expect(added.posted).toBe(303);
    expect(secretIn(added.body)).toMatch(/^trk_/);
    expect(secretIn(added.body)).not.toBe(first);
    const revoked = await dev.post(`/apps/${appId}/keys/${oldKey}/revoke`, {});
    expect(revoked.statusCode).toBe(303);
    const after = await dev.get(`/apps/${appId}`);
    expect(after.body).toContain('revoked');

    const needsApproval = await dev.post(`/apps/${appId}/plan`, { planId: h.plans.pro });
    expect(needsApproval.body).toContain('the provider will review it');
    expect(needsApproval.body).toContain('requested: Pro');
  });

  it('resets a password by mail, once, and signs out other sessions', async () => {
    const elsewhere = h.agent();
    await elsewhere.get('/login');
    await elsewhere.post('/login', { email: 'dev@flows.test', password: 'correct horse battery' });
    expect((await elsewhere.get('/apps')).statusCode).toBe(200);

    const agent = h.agent();
    await agent.get('/password-reset');
    const asked = await agent.post('/password-reset', { email: 'dev@flows.test' });
    expect(asked.body).toContain('If an account uses that address');
    await agent.get('/password-reset');
    const unknown = await agent.post('/password-reset', { email: 'nobody@flows.test' });
    // The same answer for an unknown address: the page tells nobody who has an account.
    expect(unknown.statusCode).toBe(asked.statusCode);
    expect(unknown.body).toContain('If an account uses that address');
    // the signup's welcome mail (issue 13) went to this address too; one reset mail was sent
    const mails = (await listMail(h.store.db, { to: 'dev@flows.test' })).filter(
      (m) => m.subject === 'Reset your password',
    );
    expect(mails).toHaveLength(1);
    expect(mails[0]?.state).toBe('kept');
    expect(await listMail(h.store.db, { to: 'nobody@flows.test' })).toHaveLength(0);
    const link = /\/password-reset\/[A-Za-z0-9_-]+/.exec(mails[0]?.text ?? '')?.[0] ?? '';
    expect(link).not.toBe('');

    const form = await agent.get(link);
    expect(form.body).toContain('Choose a new password');
    const short = await agent.post(link, { password: 'short' });
    expect(short.statusCode).toBe(400);
    const done = await agent.post(link, { password: 'a brand new password' });
    expect(done.statusCode).toBe(303);
    expect((await agent.get('/apps')).statusCode).toBe(200);
    expect((await elsewhere.get('/apps')).statusCode).toBe(303);
    const again = await agent.post(link, { password: 'another new password' });
    expect(again.statusCode).toBe(400);

    const fresh = h.agent();
    await fresh.get('/login');
    expect(
      (await fresh.post('/login', { email: 'dev@flows.test', password: 'correct horse battery' })).statusCode,
    ).toBe(401);
    await fresh.get('/login');
    expect(
      (await fresh.post('/login', { email: 'dev@flows.test', password: 'a brand new password' })).statusCode,
    ).toBe(303);
    dev = fresh;
  });

  it('signs a developer in by SSO with a fresh signed token, once', async () => {
    const secret = await webKey(h.store.db, h.clock, 'sso');
    const exp = Math.floor(h.clock.now() / 1000) + 60;
    const token = signSsoToken(secret, { email: 'dev@flows.test', exp });
    const agent = h.agent();
    const res = await agent.get(`/sso?token=${encodeURIComponent(token)}&return_to=/team`);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/team');
    expect((await agent.get('/team')).body).toContain('dev@flows.test');

    const replay = await h.agent().get(`/sso?token=${encodeURIComponent(token)}`);
    expect(replay.statusCode).toBe(403);
    const forged = signSsoToken('not-the-secret', { email: 'dev@flows.test', exp });
    expect((await h.agent().get(`/sso?token=${encodeURIComponent(forged)}`)).statusCode).toBe(403);
    const expired = signSsoToken(secret, { email: 'dev@flows.test', exp: exp - 120 });
    expect((await h.agent().get(`/sso?token=${encodeURIComponent(expired)}`)).statusCode).toBe(403);
    const tooLong = signSsoToken(secret, { email: 'dev@flows.test', exp: exp + 3600 });
    expect((await h.agent().get(`/sso?token=${encodeURIComponent(tooLong)}`)).statusCode).toBe(403);
    const offsite = signSsoToken(secret, { email: 'dev@flows.test', exp });
    const away = await h
      .agent()
      .get(`/sso?token=${encodeURIComponent(offsite)}&return_to=https://evil.test/`);
    expect(away.headers.location).toBe('/apps');
  });

  it('invites a member by mail; members cannot manage the team', async () => {
    await dev.get('/team');
    const invited = await dev.submit('/team/invitations', { email: 'new@flows.test', role: 'member' });
    expect(invited.body).toContain('Invitation sent to new@flows.test');
    const mail = (await listMail(h.store.db, { to: 'new@flows.test' }))[0];
    const link = /\/invitations\/[A-Za-z0-9_]+/.exec(mail?.text ?? '')?.[0] ?? '';
    const member = h.agent();
    expect((await member.get(link)).body).toContain('new@flows.test');
    const joined = await member.post(link, { name: 'New Member', password: 'member password 1' });
    expect(joined.statusCode).toBe(303);
    const team = await member.get('/team');
    expect(team.body).toContain('New Member');
    expect(team.body).not.toContain('Invite someone');
    const refused = await member.submit('/team/invitations', { email: 'other@flows.test' });
    expect(refused.statusCode).toBe(403);
    expect((await member.get(link)).body).toContain('not valid');
  });

  it('serves the docs document pointing at the try-it relay with the gateway’s credentials', async () => {
    const cd = { db: h.store.db, clock: h.clock };
    await updateService(cd, systemActor, h.serviceId, { userKeyName: 'X-Weather-Key' });
    await setServiceOpenapi(cd, systemActor, h.serviceId, {
      openapi: '3.0.3',
      info: { title: 'Weather', version: '1' },
      servers: [{ url: 'https://api.weather.test/v2' }],
      components: { securitySchemes: { theirs: { type: 'http', scheme: 'basic' } } },
      paths: { '/forecast': { get: { operationId: 'forecast', security: [{ theirs: [] }], responses: {} } } },
    });
    const res = await h.agent().get(`/apis/${h.serviceId}/openapi.json`);
    const doc = res.json();
    expect(doc.servers).toEqual([{ url: `/try/${h.serviceId}/v2`, description: expect.any(String) }]);
    expect(doc.components.securitySchemes).toEqual({
      apiKey: { type: 'apiKey', in: 'header', name: 'X-Weather-Key', description: expect.any(String) },
    });
    expect(doc.paths['/forecast'].get.security).toBeUndefined();
    const docs = await dev.get(`/apis/${h.serviceId}/docs`);
    expect(docs.body).toContain('/assets/vendor/swagger-ui-bundle.js');
    expect(docs.body).not.toMatch(/https?:\/\/(?!localhost)[a-z0-9.-]+\/[^"]*\.(js|css)/);
  });

  it('tells where query credentials go: query parameters, not headers (issue 12, item 6)', async () => {
    const cd = { db: h.store.db, clock: h.clock };
    const mail = await createService(cd, systemActor, {
      name: 'Mail',
      systemName: 'mail-query',
      upstreamProduction: 'http://127.0.0.1:9/',
      authMode: 'app_id_app_key',
      credentialsLocation: 'query',
      appIdName: 'api_user',
      appKeyName: 'api_key',
    });
    const bronze = await createPlan(cd, systemActor, mail.id, { name: 'Bronze', systemName: 'bronze' });
    await dev.get(`/apps/new?service=${mail.id}`);
    const created = await dev.submit('/apps/new', { serviceId: mail.id, planId: bronze.id, name: 'Mailer' });
    expect(created.posted).toBe(303);
    const appPage = /\/apps\/(app_[0-9a-z]+)\/usage/.exec(created.body)?.[1] ?? '';
    const page = (await dev.get(`/apps/${appPage}`)).body;
    expect(page).toMatch(/data-testid="app-id-place">query parameter <code>api_user<\/code>/);
    expect(page).toMatch(/data-testid="app-key-place"><code>api_key<\/code> query parameter/);
    expect(page).toMatch(/data-testid="example-call">curl "[^"]*\?api_user=[^&]+&amp;api_key=&lt;key&gt;"/);
    expect(page).not.toContain('(header <code>api_user');
  });

  it('serves a Swagger 2.0 document, YAML-typed `swagger: 2.0` included, to the interactive docs (issue 12, item 3)', async () => {
    const cd = { db: h.store.db, clock: h.clock };
    const v2 = await createService(cd, systemActor, {
      name: 'Legacy',
      systemName: 'legacy-v2',
      upstreamProduction: 'http://127.0.0.1:9/',
    });
    // the portal shows an API with a published plan only (issue 13)
    await createPlan(cd, systemActor, v2.id, { name: 'Basic', systemName: 'basic' });
    await publishOpenapi(cd, systemActor, v2.id, {
      swagger: 2,
      info: { title: 'Legacy', version: '2' },
      host: 'api.legacy.test',
      basePath: '/api',
      paths: { '/mail.send.json': { post: { operationId: 'mailSend', responses: {} } } },
    });
    const doc = (await h.agent().get(`/apis/${v2.id}/openapi.json`)).json();
    expect(doc).toMatchObject({ swagger: '2.0', basePath: `/try/${v2.id}/api` });
    expect(doc.host).toBeUndefined();
    expect(doc.securityDefinitions.apiKey).toMatchObject({ type: 'apiKey', in: 'header' });
    expect(Object.keys(doc.paths)).toEqual(['/mail.send.json']);
  });

  it('refuses the try-it relay without a session or without the CSRF header', async () => {
    const anon = await h.agent().get(`/try/${h.serviceId}/forecast`);
    expect(anon.statusCode).toBe(401);
    const noHeader = await dev.get(`/try/${h.serviceId}/forecast`);
    expect(noHeader.statusCode).toBe(403);
  });
});
