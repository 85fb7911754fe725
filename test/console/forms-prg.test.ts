/**
 * Issue 13: the creating forms of the console (admin tokens, a service's login secret, its settings and OpenAPI
 * import) and the portal's invitations follow POST → redirect → GET: the POST answers 303, the page reached shows
 * the notice or the secret once, and reloading it creates nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getUser, listAdminTokens, listInvitations } from '../../src/access/index.js';
import { createService, listMetrics } from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { type PortalHarness, signUp, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';

describe('POST → redirect → GET in the console and the team page', () => {
  let h: PortalHarness;
  let admin: WebAgent;

  beforeAll(async () => {
    h = await startPortal();
    admin = h.agent();
    await admin.get('/admin/login');
    await admin.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
  });
  afterAll(() => h.close());

  it('makes one admin token, shown once', async () => {
    const before = (await listAdminTokens(h.store.db)).length;
    await admin.get('/admin/tokens');
    const made = await admin.submit('/admin/tokens', { name: 'deploy', scope: 'read' });
    expect([made.posted, made.location]).toEqual([303, '/admin/tokens']);
    const token = /id="new-token" readonly value="([^"]+)"/.exec(made.body)?.[1] ?? '';
    expect(token).toMatch(/^trat_/);
    const reload = await admin.get('/admin/tokens');
    expect(reload.body).not.toContain(token);
    expect((await listAdminTokens(h.store.db)).length).toBe(before + 1);
  });

  it('generates one login secret, shown once, and keeps the place and a notice after saving a service', async () => {
    const service = await createService({ db: h.store.db, clock: h.clock }, systemActor, {
      name: 'Ledger',
      systemName: 'ledger_prg',
      upstreamProduction: 'http://127.0.0.1:9/',
      authMode: 'oauth2',
    });
    const page = `/admin/services/${service.id}`;
    await admin.get(page);
    const made = await admin.submit(`${page}/oauth/login-secret`, {});
    expect([made.posted, made.location]).toEqual([303, `${page}#oauth`]);
    const secret = /id="login-secret" readonly value="([^"]+)"/.exec(made.body)?.[1] ?? '';
    expect(secret).toMatch(/^trls_/);
    expect(made.body).toContain('New login secret generated.');
    const reload = await admin.get(page);
    expect(reload.body).not.toContain(secret);
    expect(reload.body).not.toContain('New login secret generated.');

    const saved = await admin.submit(page, { name: 'Ledger II' });
    expect([saved.posted, saved.location]).toEqual([303, `${page}#settings`]);
    expect(saved.body).toContain('Settings saved.');
    // the notice sits in the section saved, where the page returns (#settings), not at the top
    expect(saved.body.indexOf('Settings saved.')).toBeGreaterThan(saved.body.indexOf('<h2 id="settings">'));
    expect(saved.body.indexOf('Settings saved.')).toBeLessThan(saved.body.indexOf('<h2 id="metrics">'));

    const doc = JSON.stringify({
      openapi: '3.0.3',
      info: { title: 'L', version: '1' },
      paths: { '/balance': { get: { operationId: 'balance', responses: {} } } },
    });
    const imported = await admin.submit(`${page}/openapi`, { document: doc, intent: 'import' });
    expect([imported.posted, imported.location]).toEqual([303, `${page}#openapi`]);
    expect(imported.body).toContain('Imported 1 operations');
    const methods = (await listMetrics(h.store.db, service.id)).length;
    await admin.get(page);
    expect((await listMetrics(h.store.db, service.id)).length).toBe(methods);
  });

  it('sends one invitation: a reload of the team page sends none', async () => {
    const dev = await signUp(h, 'lead@team-prg.test', 'Team PRG');
    await dev.get('/team');
    const sent = await dev.submit('/team/invitations', { email: 'mate@team-prg.test', role: 'member' });
    expect([sent.posted, sent.location]).toEqual([303, '/team']);
    expect(sent.body).toContain('Invitation sent to mate@team-prg.test.');
    const reload = await dev.get('/team');
    expect(reload.body).not.toContain('Invitation sent to');
    const lead = await h.store.db
      .selectFrom('users')
      .select('id')
      .where('email', '=', 'lead@team-prg.test')
      .executeTakeFirstOrThrow();
    const accountId = (await getUser(h.store.db, lead.id)).accountId;
    expect(await listInvitations(h.store.db, accountId)).toHaveLength(1);
  });
});
