/**
 * Issue 11 in the console: the certification plan editor writes the plan the management API reads (problems named
 * beside the form, nothing saved), and the go-live page shows a running run's report card with the evidence image
 * (admins only) and reviews it — a rejection needs a comment. On SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminUser } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import type { WebAgent } from '../portal/web-agent.js';
import { type Programme, startProgramme } from '../programmes/programme-harness.js';
import { dialects } from '../support/stores.js';
import { makePng, uploadFromPortal } from './evidence-fixtures.js';
import { makeService, type TestService } from './golive-harness.js';

describe.each(dialects)('certification in the console on %s', (dialect) => {
  let p: Programme;
  let svc: TestService;
  let admin: WebAgent;
  let partner: WebAgent;
  let appId = '';
  let evidenceId = '';

  beforeAll(async () => {
    p = await startProgramme(dialect);
    svc = await makeService(p, 'payments', { upstreamSandbox: p.upstream.url });
    await createAdminUser({ db: p.store.db, clock: p.clock }, systemActor, {
      email: 'ops@provider.test',
      name: 'Ops',
      password: 'console-password-1',
    });
    admin = p.browser();
    await admin.get('/admin/login');
    await admin.post('/admin/login', { email: 'ops@provider.test', password: 'console-password-1' });
    partner = p.browser();
    await partner.get('/signup');
    await partner.post('/signup', {
      organization: 'Shop Co',
      name: 'Sam',
      email: 'sam@shop.test',
      password: 'correct horse battery',
    });
    await partner.get(`/apps/new?service=${svc.id}`);
    const created = await partner.submit('/apps/new', {
      serviceId: svc.id,
      planId: svc.planId,
      name: 'Checkout',
    });
    appId = /\/apps\/(app_[a-z0-9]+)/.exec(created.location)![1]!;
  });
  afterAll(() => p.close());

  const form = (extra: Record<string, string>) => ({
    check_retry_after: 'required',
    check_token_reuse: 'optional',
    check_backoff_5xx: 'off',
    rateLimitEvery: '5',
    retryAfterSeconds: '3',
    serverErrorEvery: '0',
    unavailableEvery: '',
    slowEvery: '0',
    slowMs: '0',
    expiredTokenEvery: '0',
    windowMinutes: '45',
    minCalls: '0',
    itemRows: '3',
    item_0_key: 'logo',
    item_0_title: 'Our logo in your checkout',
    item_0_description: 'As your users see it.',
    item_0_required: '1',
    item_1_key: 'outage',
    item_1_title: 'What your user sees when we are down',
    item_1_description: '',
    item_2_key: '',
    item_2_title: '',
    item_2_description: '',
    ...extra,
  });

  it('without a plan: no Certification link in the portal, no certification panel in the console', async () => {
    const appPage = await partner.get(`/apps/${appId}`);
    expect(appPage.statusCode).toBe(200);
    expect(appPage.body).toContain('data-testid="golive-link"');
    expect(appPage.body).not.toContain('data-testid="certification-link"');
    // the page itself, reached by its address, says why there is nothing to do
    const certPage = await partner.get(`/apps/${appId}/certification`);
    expect(certPage.body).toContain('data-testid="no-plan"');
    expect(certPage.body).toContain('has no certification plan');
    const consolePage = await admin.get(`/admin/applications/${appId}`);
    expect(consolePage.statusCode).toBe(200);
    expect(consolePage.body).not.toContain('data-testid="certification"');
  });

  it('the plan editor names the problems beside the form and saves nothing', async () => {
    const page = await admin.get(`/admin/services/${svc.id}/certification`);
    expect(page.body).toContain('data-testid="no-plan"');
    const noFault = await admin.submit(
      `/admin/services/${svc.id}/certification`,
      form({ rateLimitEvery: '0' }),
    );
    expect(noFault.posted).toBe(400);
    expect(noFault.body).toContain('the retry_after check needs faults.rateLimitEvery above 0');
    const notANumber = await admin.submit(
      `/admin/services/${svc.id}/certification`,
      form({ minCalls: 'many' }),
    );
    expect(notANumber.posted).toBe(400);
    expect(notANumber.body).toContain('Min calls');
    // the form comes back as typed
    expect(notANumber.body).toContain('value="Our logo in your checkout"');
    const api = await p.apiRaw('GET', `/services/${svc.id}/certification-plan`);
    expect(api.statusCode).toBe(404);
  });

  it('saves the plan the management API reads', async () => {
    await admin.get(`/admin/services/${svc.id}/certification`);
    const saved = await admin.submit(`/admin/services/${svc.id}/certification`, form({}));
    expect(saved.posted).toBe(303);
    expect(saved.body).toContain('Certification plan saved.');
    const view = await p.api<{ plan: Record<string, unknown> }>(
      'GET',
      `/services/${svc.id}/certification-plan`,
    );
    expect(view.plan).toEqual({
      checks: [
        { kind: 'retry_after', required: true },
        { kind: 'token_reuse', required: false },
      ],
      faults: {
        rateLimitEvery: 5,
        retryAfterSeconds: 3,
        serverErrorEvery: 0,
        unavailableEvery: 0,
        slowEvery: 0,
        slowMs: 0,
        expiredTokenEvery: 0,
      },
      manualItems: [
        {
          key: 'logo',
          title: 'Our logo in your checkout',
          description: 'As your users see it.',
          required: true,
        },
        { key: 'outage', title: 'What your user sees when we are down', description: '', required: false },
      ],
      windowMinutes: 45,
      minCalls: 0,
      autoApprove: false,
    });
    // the editor shows what is stored, with an empty row to add an item
    const page = await admin.get(`/admin/services/${svc.id}/certification`);
    expect(page.body).toContain('name="item_1_key" value="outage"');
    expect(page.body).toContain('name="item_2_key" value=""');
  });

  it('shows a running run on the go-live page with the image, to admins only; a rejection needs a comment', async () => {
    const run = await p.api<{ id: string }>('POST', `/applications/${appId}/certification-runs`, {});
    await partner.get(`/apps/${appId}/certification`);
    const up = await uploadFromPortal(p, partner, appId, run.id, 'logo', {
      filename: 'logo.png',
      type: 'image/png',
      bytes: makePng(4, 4),
    });
    expect(up.statusCode).toBe(303);
    evidenceId = (await p.api<{ data: { id: string }[] }>('GET', `/certification/runs/${run.id}/evidence`))
      .data[0]!.id;
    const golive = await admin.get('/admin/golive');
    expect(golive.body).toContain(`data-application="${appId}"`);
    expect(golive.body).toContain(`src="/admin/certification/evidence/${evidenceId}"`);
    const image = await admin.get(`/admin/certification/evidence/${evidenceId}`);
    expect([
      image.statusCode,
      image.headers['content-type'],
      image.headers['x-content-type-options'],
    ]).toEqual([200, 'image/png', 'nosniff']);
    // a partner's session is no admin session
    const asPartner = await partner.get(`/admin/certification/evidence/${evidenceId}`);
    expect(asPartner.statusCode).toBe(303);
    expect(asPartner.rawPayload.length).toBe(0);

    const bare = await admin.submit(`/admin/certification/evidence/${evidenceId}/review`, {
      decision: 'rejected',
      comment: '',
      back: '/admin/golive',
    });
    expect(bare.posted).toBe(400);
    await admin.get('/admin/golive');
    const rejected = await admin.submit(`/admin/certification/evidence/${evidenceId}/review`, {
      decision: 'rejected',
      comment: 'The logo is stretched.',
      back: 'https://elsewhere.test/',
    });
    expect([rejected.posted, rejected.location]).toEqual([303, '/admin/golive']);
    const one = await p.api<{ reviewState: string; reviewComment: string; reviewedBy: string }>(
      'GET',
      `/certification/evidence/${evidenceId}`,
    );
    expect(one).toMatchObject({ reviewState: 'rejected', reviewComment: 'The logo is stretched.' });
    expect(one.reviewedBy).toMatch(/^admin_user:adm_/);
    expect((await partner.get(`/apps/${appId}/certification`)).body).toContain('The logo is stretched.');
  });

  it('the console application page shows the latest run’s card, reviews that come back to it, and past runs', async () => {
    expect((await partner.get(`/apps/${appId}`)).body).toContain('data-testid="certification-link"');
    const runs = await p.api<{ data: { id: string }[] }>('GET', `/applications/${appId}/certification-runs`);
    const first = runs.data[0]!.id;
    const page = await admin.get(`/admin/applications/${appId}`);
    expect(page.body).toContain('data-testid="certification"');
    expect(page.body).toContain(`data-testid="report-card" data-run="${first}"`);
    expect(page.body).toContain('The logo is stretched.');
    expect(page.body).not.toContain('data-testid="past-runs"');

    // a second run: the card is the new run's, and the first one is a link away
    const run = await p.api<{ id: string; state: string }>('GET', `/certification-runs/${first}`);
    if (run.state === 'running') await p.api('POST', `/certification-runs/${first}/cancel`, {});
    const second = await p.api<{ id: string }>('POST', `/applications/${appId}/certification-runs`, {});
    const now = await admin.get(`/admin/applications/${appId}`);
    expect(now.body).toContain(`data-testid="report-card" data-run="${second.id}"`);
    expect(now.body).toContain(`href="/admin/applications/${appId}?run=${first}#certification"`);
    const past = await admin.get(`/admin/applications/${appId}?run=${first}`);
    expect(past.body).toContain(`data-testid="report-card" data-run="${first}"`);
    expect(past.body).toContain('The logo is stretched.');
    expect(past.body).toContain(`href="/admin/applications/${appId}?run=${second.id}#certification"`);

    // the partner uploads for the new run; the provider accepts from the application page and lands back on it
    await partner.get(`/apps/${appId}/certification`);
    const up = await uploadFromPortal(p, partner, appId, second.id, 'logo', {
      filename: 'logo.png',
      type: 'image/png',
      bytes: makePng(6, 6),
    });
    expect(up.statusCode).toBe(303);
    const latest = (
      await p.api<{ data: { id: string }[] }>('GET', `/certification/runs/${second.id}/evidence`)
    ).data[0]!.id;
    const reloaded = await admin.get(`/admin/applications/${appId}`);
    expect(reloaded.body).toContain(`src="/admin/certification/evidence/${latest}"`);
    expect(reloaded.body).toContain(`name="back" value="/admin/applications/${appId}"`);
    const accepted = await admin.submit(`/admin/certification/evidence/${latest}/review`, {
      decision: 'accepted',
      comment: '',
      back: `/admin/applications/${appId}`, // the form's hidden field, checked above
    });
    expect([accepted.posted, accepted.location]).toEqual([303, `/admin/applications/${appId}`]);
    expect(accepted.body).toContain('data-testid="item-state-logo">accepted');
    // a run of another application, or none at all, is not found (never a 500)
    expect((await admin.get(`/admin/applications/${appId}?run=crun_nope`)).statusCode).toBe(404);
    // a partner's session is no admin session
    const asPartner = await partner.get(`/admin/applications/${appId}`);
    expect(asPartner.statusCode).toBe(303);
    expect(asPartner.body).not.toContain('report-card');
  });

  it('removes the plan', async () => {
    await admin.get(`/admin/services/${svc.id}/certification`);
    const removed = await admin.submit(`/admin/services/${svc.id}/certification/delete`, {});
    expect(removed.posted).toBe(303);
    expect((await p.apiRaw('GET', `/services/${svc.id}/certification-plan`)).statusCode).toBe(404);
    // no plan, no Certification link and no panel, even with runs kept
    expect((await partner.get(`/apps/${appId}`)).body).not.toContain('data-testid="certification-link"');
    expect((await admin.get(`/admin/applications/${appId}`)).body).not.toContain(
      'data-testid="certification"',
    );
  });
});
