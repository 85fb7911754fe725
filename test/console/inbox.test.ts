/**
 * Issue 13: the dashboard's inbox lists pending accounts, pending applications and plan change requests, each
 * answered in one click (approve, or approve / decline the requested plan), back on the dashboard.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getAccount, getApplication } from '../../src/access/index.js';
import { type PortalHarness, signUp, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';

describe('dashboard inbox', () => {
  let h: PortalHarness;
  let admin: WebAgent;
  let dev: WebAgent;

  beforeAll(async () => {
    h = await startPortal();
    admin = h.agent();
    await admin.get('/admin/login');
    await admin.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
    dev = await signUp(h, 'dev@inbox.test', 'Inbox Co');
  });
  afterAll(() => h.close());

  const appOf = async (name: string) => {
    await dev.get(`/apps/new?service=${h.serviceId}`);
    const planId = name === 'Pending one' ? h.plans.pro : h.plans.free;
    const made = await dev.submit('/apps/new', { serviceId: h.serviceId, planId, name });
    return made.location.slice('/apps/'.length);
  };

  it('approves a pending application in one click from the dashboard', async () => {
    const id = await appOf('Pending one');
    const board = await admin.get('/admin');
    expect(board.body).toContain('data-testid="inbox-application"');
    const form = new RegExp(`action="/admin/applications/${id}/approve"`);
    expect(board.body).toMatch(form);
    const res = await admin.post(`/admin/applications/${id}/approve`, { back: '/admin' });
    expect([res.statusCode, res.headers.location]).toEqual([303, '/admin']);
    expect((await getApplication(h.store.db, id)).state).toBe('live');
    expect((await admin.get('/admin')).body).not.toMatch(form);
  });

  it('approves or declines a requested plan in one click', async () => {
    const moving = await appOf('Moving up');
    const staying = await appOf('Staying put');
    for (const id of [moving, staying]) {
      await dev.get(`/apps/${id}`);
      await dev.post(`/apps/${id}/plan`, { planId: h.plans.pro });
      expect((await getApplication(h.store.db, id)).requestedPlanId).toBe(h.plans.pro);
    }
    const board = (await admin.get('/admin')).body;
    expect(board.match(/data-testid="inbox-plan-request"/g)).toHaveLength(2);
    expect(board).toContain('asks to move from <strong>Free</strong> to <strong>Pro</strong>');

    const approved = await admin.post(`/admin/applications/${moving}/plan`, {
      planId: h.plans.pro,
      back: '/admin',
    });
    expect([approved.statusCode, approved.headers.location]).toEqual([303, '/admin']);
    const declined = await admin.post(`/admin/applications/${staying}/decline-plan`, { back: '/admin' });
    expect([declined.statusCode, declined.headers.location]).toEqual([303, '/admin']);

    const [m, s] = [await getApplication(h.store.db, moving), await getApplication(h.store.db, staying)];
    expect([m.planId, m.requestedPlanId]).toEqual([h.plans.pro, null]);
    expect([s.planId, s.requestedPlanId]).toEqual([h.plans.free, null]);
    expect((await admin.get('/admin')).body).not.toContain('data-testid="inbox-plan-request"');
    // declining twice is refused: nothing is asked any more
    expect(
      (await admin.post(`/admin/applications/${staying}/decline-plan`, { back: '/admin' })).statusCode,
    ).toBe(409);
  });

  it('names the account and the plan of each application in the list', async () => {
    const list = (await admin.get('/admin/applications')).body;
    expect(list).toContain('<th scope="col">Account</th>');
    expect(list).toMatch(/data-testid="app-account">Inbox Co</);
    expect(list).toMatch(/data-testid="app-plan-cell">Pro</);
    expect(list).toMatch(/data-testid="app-plan-cell">Free</);
  });

  it('approves a pending account in one click', async () => {
    const other = await signUp(h, 'wait@inbox.test', 'Waiting Ltd');
    expect(other).toBeDefined();
    const row = await h.store.db
      .selectFrom('accounts')
      .select('id')
      .where('name', '=', 'Waiting Ltd')
      .executeTakeFirstOrThrow();
    await h.store.db.updateTable('accounts').set({ state: 'pending' }).where('id', '=', row.id).execute();
    await admin.get('/admin');
    expect(admin.lastHtml).toContain('data-testid="inbox-account"');
    const res = await admin.post(`/admin/accounts/${row.id}/approve`, { back: '/admin' });
    expect([res.statusCode, res.headers.location]).toEqual([303, '/admin']);
    expect((await getAccount(h.store.db, row.id)).state).toBe('approved');
  });
});
