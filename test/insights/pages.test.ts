/**
 * Insights in the pages: the provider sees a finding with its advice and evidence on the console's Insights page
 * (escaped, acknowledge and resolve behind CSRF and an admin session), and the partner sees its own finding and
 * advice, its health and the calls refused with 429 on its application's usage page in the portal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApplication } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import { insertFinding } from '../../src/insights/insights.store.js';
import { newId } from '../../src/kernel/index.js';
import { UsageRecorder } from '../../src/usage/index.js';
import { type PortalHarness, signUp, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';

describe('insights pages', () => {
  let h: PortalHarness;
  let dev: WebAgent;
  let appId: string;
  let findingId: string;

  beforeAll(async () => {
    h = await startPortal();
    dev = await signUp(h, 'churn@partner.test');
    const user = await h.store.db
      .selectFrom('users')
      .select('account_id')
      .where('email', '=', 'churn@partner.test')
      .executeTakeFirstOrThrow();
    const deps = { db: h.store.db, clock: h.clock };
    const created = await createApplication(deps, systemActor, {
      accountId: user.account_id,
      serviceId: h.serviceId,
      planId: h.plans.free,
      name: 'Churny <script>alert(1)</script>',
    });
    appId = created.id;
    const now = new Date(h.clock.now()).toISOString();
    findingId = newId('finding');
    await insertFinding(h.store.db, {
      id: findingId,
      service_id: h.serviceId,
      application_id: appId,
      account_id: user.account_id,
      kind: 'token_churn',
      subject: '',
      severity: 'high',
      state: 'open',
      first_seen: now,
      last_seen: now,
      resolved_at: null,
      evidence: JSON.stringify({
        numbers: { tokensIssued: 50, apiCalls: 50, tokensPerCall: 1 },
        timeline: [
          {
            at: now,
            calls: 50,
            clientErrors: 0,
            rateLimited: 3,
            serverErrors: 0,
            earlyRetries: 0,
            readsAfterCreate: 0,
          },
        ],
      }),
      advice: 'Keep the token and reuse it until it expires <b>now</b>.',
      created_at: now,
      updated_at: now,
      open_key: `${appId}|token_churn|`,
    });
    const recorder = new UsageRecorder({ db: h.store.db, clock: h.clock, flushIntervalMs: 0 });
    for (const status of [200, 200, 429, 429, 429]) {
      recorder.record({
        at: h.clock.now(),
        serviceId: h.serviceId,
        applicationId: appId,
        accountId: user.account_id,
        metrics: [],
        status,
        latencyMs: 12,
        bytesIn: 0,
        bytesOut: 0,
        endUser: null,
        clientIp: '127.0.0.1',
        method: 'GET',
        route: '',
        retryAfterS: status === 429 ? 30 : 0,
      });
    }
    await recorder.close();
  });
  afterAll(() => h.close());

  it('shows the partner its finding with the advice, its health and the calls refused with 429', async () => {
    const page = await dev.get(`/apps/${appId}/usage`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('data-kind="token_churn"');
    expect(page.body).toContain('Keep the token and reuse it until it expires &lt;b&gt;now&lt;/b&gt;.');
    expect(page.body).toMatch(/data-testid="refused-429">3</);
    expect(page.body).toContain('5 calls');
  });

  it('shows the provider the finding on the Insights page, escaped, and acknowledges and resolves it behind CSRF', async () => {
    const admin = h.agent();
    await admin.get('/admin/login');
    expect(
      (await admin.post('/admin/login', { email: h.adminEmail, password: h.adminPassword })).statusCode,
    ).toBe(303);
    const page = await admin.get('/admin/insights');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('data-kind="token_churn"');
    expect(page.body).toContain('Churny &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.body).not.toContain('<script>alert(1)');
    expect(page.body).toContain('tokensPerCall');
    // the application's health panel: its last 24 hours and its open finding
    const appPage = await admin.get(`/admin/applications/${appId}`);
    expect(appPage.statusCode).toBe(200);
    expect(appPage.body).toMatch(/data-testid="health">\s*5 calls · latency p50/);
    expect(appPage.body).toContain('60.0 % 429');
    expect(appPage.body).toContain('data-testid="open-findings"');
    const forged = await admin.post(`/admin/insights/${findingId}/acknowledge`, {}, { csrf: null });
    expect(forged.statusCode).toBe(403);
    const anon = h.agent();
    await anon.get('/admin/login');
    const anonymous = await anon.post(`/admin/insights/${findingId}/acknowledge`, {});
    expect(String(anonymous.headers.location)).toMatch(/^\/admin\/login/);
    expect((await admin.get('/admin/insights')).body).toContain('data-kind="token_churn"');
    const acked = await admin.post(`/admin/insights/${findingId}/acknowledge`, {});
    expect(acked.statusCode).toBe(303);
    expect((await admin.get('/admin/insights?state=acknowledged')).body).toContain('data-kind="token_churn"');
    expect((await admin.post(`/admin/insights/${findingId}/resolve`, {})).statusCode).toBe(303);
    expect((await admin.get('/admin/insights')).body).toContain('data-testid="no-findings"');
    expect((await dev.get(`/apps/${appId}/usage`)).body).toContain('data-testid="no-findings"');
  });
});
