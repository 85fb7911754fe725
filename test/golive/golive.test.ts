/**
 * Issue 11, go-live: the partner asks in the portal, the provider approves in one click in the console, the
 * partner collects the production key once; it reaches the production upstream and the sandbox key does not;
 * rejection and revocation with comments; a clear error for every transition the state machine refuses; events
 * in the outbox match the catalogue. Through a real gateway, on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminUser } from '../../src/access/index.js';
import { checkEventPayload, systemActor } from '../../src/events/index.js';
import { startUpstream, type Upstream } from '../gateway/fixtures.js';
import type { WebAgent } from '../portal/web-agent.js';
import { type Programme, startProgramme } from '../programmes/programme-harness.js';
import { dialects } from '../support/stores.js';
import { makeService, type TestService } from './golive-harness.js';

const secretOf = (html: string, testId: string) =>
  new RegExp(`value="([^"]+)"[^>]*data-testid="${testId}"`).exec(html)?.[1];

describe.each(dialects)('go-live on %s', (dialect) => {
  let p: Programme;
  let sandbox: Upstream;
  let svc: TestService;
  let partner: WebAgent;
  let admin: WebAgent;
  let appId: string;
  let sandboxKey: string;
  let requestId: string;
  let productionKey: string;

  beforeAll(async () => {
    p = await startProgramme(dialect);
    sandbox = await startUpstream('sandbox');
    svc = await makeService(p, 'payments', { upstreamSandbox: sandbox.url });
    await createAdminUser({ db: p.store.db, clock: p.clock }, systemActor, {
      email: 'ops@provider.test',
      name: 'Ops',
      password: 'console-password-1',
    });
  });
  /** The console session, signed in afresh (the clock moves by days in these tests). */
  const signInAdmin = async () => {
    admin = p.browser();
    await admin.get('/admin/login');
    await admin.post('/admin/login', { email: 'ops@provider.test', password: 'console-password-1' });
  };
  afterAll(async () => {
    await sandbox.close();
    await p.close();
  });

  it('a partner signs up, gets a sandbox key, and the first call reaches the sandbox only', async () => {
    partner = p.browser();
    await partner.get('/signup');
    const signedUp = await partner.post('/signup', {
      organization: 'Shop Co',
      name: 'Sam Shop',
      email: 'sam@shop.test',
      password: 'correct horse battery',
    });
    expect(signedUp.statusCode).toBe(303);
    await partner.get(`/apps/new?service=${svc.id}`);
    const created = await partner.submit('/apps/new', {
      serviceId: svc.id,
      planId: svc.planId,
      name: 'Checkout',
    });
    expect(created.posted).toBe(303);
    appId = /\/apps\/(app_[a-z0-9]+)/.exec(created.location)![1]!;
    sandboxKey = secretOf(created.body, 'new-secret')!;
    expect(sandboxKey).toMatch(/^trk_/);
    p.clock.advance(90 * 60_000); // the first call an hour and a half after signup
    const r = await p.call('/payments/charges', { 'X-API-Key': sandboxKey });
    expect([r.status, r.json.upstream]).toEqual([200, 'sandbox']);
    expect(p.upstream.seen).toHaveLength(0);
  });

  it('the partner requests go-live in the portal; asking twice is refused with a clear error', async () => {
    const page = await partner.get(`/apps/${appId}`);
    expect(page.body).toContain(`href="/apps/${appId}/golive"`);
    await partner.get(`/apps/${appId}/golive`);
    const asked = await partner.submit(`/apps/${appId}/golive`, { note: 'Checkout is ready' });
    expect(asked.posted).toBe(303);
    expect(asked.body).toContain('the provider reviews it');
    const list = await p.api<{ data: { id: string; state: string; note: string }[] }>(
      'GET',
      `/golive/requests?applicationId=${appId}`,
    );
    expect(list.data.map((r) => [r.state, r.note])).toEqual([['requested', 'Checkout is ready']]);
    requestId = list.data[0]!.id;
    const again = await p.apiRaw('POST', `/applications/${appId}/golive`, {});
    expect([again.statusCode, again.json().error.code, again.json().error.message]).toEqual([
      409,
      'invalid_state',
      'A go-live request of this application is already waiting.',
    ]);
    // before approval there is no production key to collect
    const early = await p.apiRaw('POST', `/golive/requests/${requestId}/revoke`, { comment: 'x' });
    expect(early.json().error.message).toBe(
      `The go-live request ${requestId} is requested; only a request that is approved can be revoked.`,
    );
  });

  it('the provider approves in one click in the console; the partner collects the production key once', async () => {
    p.clock.advance(24 * 3600_000); // approved a day later
    await signInAdmin();
    partner = p.browser();
    await partner.get('/login');
    await partner.post('/login', { email: 'sam@shop.test', password: 'correct horse battery' });
    const queue = await admin.get('/admin/golive');
    expect(queue.body).toContain(`data-id="${requestId}"`);
    const approved = await admin.submit(`/admin/golive/${requestId}/approve`, {});
    expect(approved.posted).toBe(303);
    const request = await p.api<{ state: string; productionApplicationId: string; keyCollected: boolean }>(
      'GET',
      `/golive/requests/${requestId}`,
    );
    expect([request.state, request.keyCollected]).toEqual(['approved', false]);
    const production = await p.api<{ environment: string; credentials: unknown[]; accountId: string }>(
      'GET',
      `/applications/${request.productionApplicationId}`,
    );
    // no key exists until the partner collects it: the provider never sees it
    expect([production.environment, production.credentials]).toEqual(['production', []]);

    await partner.get(`/apps/${appId}/golive`);
    const shown = await partner.submit(`/apps/${appId}/golive/key`, {});
    productionKey = secretOf(shown.body, 'production-secret')!;
    expect(productionKey).toMatch(/^trk_/);
    const reload = await partner.get(`/apps/${appId}/golive`);
    expect(reload.body).not.toContain(productionKey);
    const twice = await partner.post(`/apps/${appId}/golive/key`, {});
    expect(twice.statusCode).toBe(409);
  });

  it('the production key reaches the production upstream; the sandbox key still only the sandbox', async () => {
    const prod = await p.call('/payments/charges', { 'X-API-Key': productionKey });
    expect([prod.status, prod.json.upstream]).toEqual([200, 'production']);
    const sb = await p.call('/payments/charges', { 'X-API-Key': sandboxKey });
    expect([sb.status, sb.json.upstream]).toEqual([200, 'sandbox']);
    expect(p.upstream.seen).toHaveLength(1);
  });

  it('revoking production refuses the production key at once; the partner reads why and may ask again', async () => {
    await admin.get('/admin/golive?state=approved');
    const revoked = await admin.submit(`/admin/golive/${requestId}/revoke`, { comment: 'logo misused' });
    expect(revoked.posted).toBe(303);
    const r = await p.call('/payments/charges', { 'X-API-Key': productionKey });
    expect(r.status).toBe(401);
    const sb = await p.call('/payments/charges', { 'X-API-Key': sandboxKey });
    expect(sb.json.upstream).toBe('sandbox');
    const page = await partner.get(`/apps/${appId}/golive`);
    expect(page.body).toContain('Production was revoked: logo misused');
    // asked again, then rejected with a comment
    const again = await p.api<{ id: string }>('POST', `/applications/${appId}/golive`, { note: 'fixed' });
    const noComment = await p.apiRaw('POST', `/golive/requests/${again.id}/reject`, {});
    expect(noComment.statusCode).toBe(400);
    await p.api('POST', `/golive/requests/${again.id}/reject`, { comment: 'screenshots missing' });
    expect((await partner.get(`/apps/${appId}/golive`)).body).toContain(
      'Your last request was rejected: screenshots missing',
    );
  });

  it('records the go-live events, each matching the catalogue', async () => {
    const rows = await p.store.db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('type', 'in', [
        'application.golive_requested',
        'application.promoted',
        'application.production_revoked',
        'application.golive_rejected',
      ])
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => r.type)).toEqual([
      'application.golive_requested',
      'application.promoted',
      'application.production_revoked',
      'application.golive_requested',
      'application.golive_rejected',
    ]);
    for (const r of rows) expect(checkEventPayload(r.type, JSON.parse(r.payload))).toEqual([]);
  });

  it('the funnel counts the account at every step, with the times signup → first call → live', async () => {
    await p.flushUsage();
    const f = await p.api<{
      stages: { stage: string; accounts: number }[];
      medianSecondsToFirstCall: number;
      medianSecondsToLive: number;
    }>('GET', `/golive/funnel?serviceId=${svc.id}`);
    expect(f.stages).toEqual([
      { stage: 'signed_up', accounts: 1 },
      { stage: 'first_sandbox_call', accounts: 1 },
      { stage: 'certified', accounts: 0 },
      { stage: 'golive_requested', accounts: 1 },
      { stage: 'live', accounts: 1 },
    ]);
    expect([f.medianSecondsToFirstCall, f.medianSecondsToLive]).toEqual([5400, 5400 + 86_400]);
    const page = (await admin.get('/admin/golive')).body;
    expect(page).toContain('data-testid="to-first-call">1.5 h<');
    expect(page).toContain('data-testid="to-live">25.5 h<');
  });

  it('a production application cannot ask to go live, nor a sandbox application of another state', async () => {
    const list = await p.api<{ data: { productionApplicationId: string | null }[] }>(
      'GET',
      `/golive/requests?applicationId=${appId}`,
    );
    const productionId = list.data.find((r) => r.productionApplicationId)!.productionApplicationId!;
    const res = await p.apiRaw('POST', `/applications/${productionId}/golive`, {});
    expect([res.statusCode, res.json().error.code]).toEqual([409, 'invalid_state']);
  });
});
