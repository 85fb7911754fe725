/**
 * The mails a partner expects (issue 13): account approved, application approved, plan changed (by the provider,
 * or a request applied at once or approved), plan request declined, go-live approved or rejected with the
 * comment, production revoked with the comment, webhook endpoint disabled. Each is
 * sent once per change to the account's admins, from the provider's edited template, with the values substituted
 * (one pass: a value is never read as a template; a subject stays on one line), with the portal's name, sender and
 * contact; nothing is sent when nothing changed. The console previews every new template, escaped. The control
 * role as `trellis start` composes it sends them too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken, createAdminUser, requestApplicationPlan } from '../../src/access/index.js';
import { createPlan, createService } from '../../src/catalog/index.js';
import { adminApiModules, controlModules } from '../../src/cli/compose.js';
import { composeControlRole } from '../../src/cli/roles.js';
import { loadConfig } from '../../src/config/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { type ChangeDeps, systemActor } from '../../src/events/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import {
  type MailNotifier,
  type OutboxMail,
  createMailNotifier,
  createMailer,
  listMail,
} from '../../src/mail/index.js';
import { mailDisabled } from '../../src/webhooks/delivery-health.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import { WebAgent } from './web-agent.js';

const portalUrl = 'http://localhost:3000';

describe.each(dialects)('mails about a partner’s application (%s)', (dialect) => {
  let store: TestStore;
  let clock: ManualClock;
  let app: ControlApp;
  let notifier: MailNotifier;
  let token: string;
  let cd: ChangeDeps;
  const errors: unknown[] = [];
  let plans: { free: string; pro: string; gold: string };
  let serviceId: string;
  let accountId: string;
  const admins = ['ada@partner.test', 'bob@partner.test'];
  const member = 'mo@partner.test';

  async function call(method: 'GET' | 'POST' | 'PUT' | 'PATCH', url: string, body?: unknown) {
    return app.inject({
      method,
      url: `/admin/api${url}`,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { payload: JSON.stringify(body) }),
    });
  }

  /** The mails each address got since `since` (outbox ids sort by time), oldest first. */
  async function mailsSince(since: string, to: string): Promise<OutboxMail[]> {
    await notifier.settled();
    return (await listMail(store.db, { to })).filter((m) => m.id > since).reverse();
  }

  async function mark(): Promise<string> {
    await notifier.settled();
    clock.advance(1000);
    return (await listMail(store.db, { limit: 1 }))[0]?.id ?? '';
  }

  async function newApplication(name: string, planId: string): Promise<string> {
    const res = await call('POST', '/applications', { accountId, serviceId, planId, name });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  }

  beforeAll(async () => {
    store = await freshStore(dialect);
    clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
    const config = loadConfig({}, { databaseUrl: store.url, logLevel: 'silent' });
    notifier = createMailNotifier({
      db: store.db,
      mailer: createMailer({ db: store.db, clock, smtpUrl: '', from: 'portal@localhost', portalUrl }),
      portalUrl,
      onError: (err) => errors.push(err),
    });
    cd = { db: store.db, clock, onCommitted: (changes) => notifier.notify(changes) };
    const deps = { db: store.db, clock };
    const service = await createService(deps, systemActor, {
      name: 'Weather',
      systemName: 'weather',
      upstreamProduction: 'http://127.0.0.1:9/',
    });
    serviceId = service.id;
    const free = await createPlan(deps, systemActor, service.id, { name: 'Free', systemName: 'free' });
    const pro = await createPlan(deps, systemActor, service.id, {
      name: 'Pro',
      systemName: 'pro',
      approvalRequired: true,
    });
    const gold = await createPlan(deps, systemActor, service.id, { name: 'Gold', systemName: 'gold' });
    plans = { free: free.id, pro: pro.id, gold: gold.id };
    token = (await createAdminToken(deps, systemActor, { name: 'tests', scope: 'read_write' })).token;
    await createAdminUser(deps, systemActor, {
      email: 'admin@provider.test',
      name: 'Ada Admin',
      password: 'console-password-1',
    });
    app = await buildControlApp(
      { config, store, clock, onCommitted: cd.onCommitted },
      { adminApi: adminApiModules, modules: controlModules },
    );
    await app.ready();
    accountId = (await call('POST', '/accounts', { name: 'Partner Ltd' })).json().id;
    for (const [email, role] of [
      [admins[0], 'admin'],
      [admins[1], 'admin'],
      [member, 'member'],
    ] as const) {
      const res = await call('POST', `/accounts/${accountId}/users`, { email, name: email, role });
      expect(res.statusCode, res.body).toBe(201);
    }
    const settings = await call('PATCH', '/portal-settings', {
      name: 'Acme APIs',
      senderAddress: 'developers@acme.test',
      contactEmail: 'api@acme.test',
    });
    expect(settings.statusCode, settings.body).toBe(200);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await store?.cleanup();
  });

  it('lists the new templates with their variables in the API', async () => {
    const list = (await call('GET', '/mail-templates')).json().data as {
      key: string;
      variables: { name: string }[];
    }[];
    const variables = (key: string) => list.find((t) => t.key === key)?.variables.map((v) => v.name);
    expect(variables('application_approved')).toEqual(
      expect.arrayContaining(['applicationName', 'accountName', 'serviceName', 'planName', 'applicationUrl']),
    );
    expect(variables('plan_changed')).toEqual(expect.arrayContaining(['previousPlanName', 'planName']));
    expect(variables('golive_decided')).toEqual(
      expect.arrayContaining(['decision', 'comment', 'nextStep', 'goLiveUrl', 'portalName', 'contactEmail']),
    );
    expect(variables('production_revoked')).toEqual(
      expect.arrayContaining([
        'applicationName',
        'productionApplicationName',
        'comment',
        'goLiveUrl',
        'serviceName',
        'contactEmail',
      ]),
    );
    expect(variables('webhook_endpoint_disabled')).toEqual(
      expect.arrayContaining(['url', 'endpointId', 'failingSince', 'days']),
    );
  });

  it('application approved: once, to the account’s admins, from the edited template; a second approval sends nothing', async () => {
    const saved = await call('PUT', '/mail-templates/application_approved', {
      subject: '{{portalName}}: {{applicationName}} approved',
      body: '{{accountName}} / {{serviceName}} / {{planName}} / {{applicationUrl}} / {{contactEmail}}',
    });
    expect(saved.statusCode, saved.body).toBe(200);
    // a name that looks like a template and tries to add a header stays what it is
    const id = await newApplication('Shop {{contactEmail}}\r\nBcc: all@victim.test', plans.pro);
    expect((await call('GET', `/applications/${id}`)).json().state).toBe('pending');
    const since = await mark();
    const approved = await call('POST', `/applications/${id}/approve`);
    expect(approved.statusCode, approved.body).toBe(200);
    for (const to of admins) {
      const mails = await mailsSince(since, to);
      expect(mails).toHaveLength(1);
      expect(mails[0]).toMatchObject({
        subject: 'Acme APIs: Shop {{contactEmail}} Bcc: all@victim.test approved',
        text: `Partner Ltd / Weather / Pro / ${portalUrl}/apps/${id} / api@acme.test`,
      });
    }
    expect(await mailsSince(since, member)).toEqual([]);
    const again = await call('POST', `/applications/${id}/approve`);
    expect(again.statusCode).toBe(409);
    for (const to of admins) expect(await mailsSince(since, to)).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('plan changed: by the provider, by a request applied at once, by a request approved; never for the same plan', async () => {
    await call('PUT', '/mail-templates/plan_changed', {
      subject: '{{applicationName}}: {{previousPlanName}} → {{planName}}',
      body: 'On {{serviceName}} for {{accountName}}.',
    });
    const id = await newApplication('Plans', plans.free);
    const since = await mark();
    const moved = await call('POST', `/applications/${id}/change-plan`, { planId: plans.gold });
    expect(moved.statusCode, moved.body).toBe(200);
    // the same plan again: a change is recorded, but there is nothing to tell
    expect((await call('POST', `/applications/${id}/change-plan`, { planId: plans.gold })).statusCode).toBe(
      200,
    );
    // the developer's request for a plan without approval applies at once (the portal calls this)
    await requestApplicationPlan(cd, { type: 'developer', id: null }, id, plans.free);
    // a plan needing approval: nothing until the provider approves the request
    await requestApplicationPlan(cd, { type: 'developer', id: null }, id, plans.pro);
    expect((await mailsSince(since, admins[0]!)).map((m) => m.subject)).toEqual([
      'Plans: Free → Gold',
      'Plans: Gold → Free',
    ]);
    expect((await call('POST', `/applications/${id}/change-plan`, { planId: plans.pro })).statusCode).toBe(
      200,
    );
    for (const to of admins) {
      const mails = await mailsSince(since, to);
      expect(mails.map((m) => m.subject)).toEqual([
        'Plans: Free → Gold',
        'Plans: Gold → Free',
        'Plans: Free → Pro',
      ]);
      expect(mails[2]?.text).toBe('On Weather for Partner Ltd.');
    }
    expect(await mailsSince(since, member)).toEqual([]);
  });

  it('plan request declined: once, naming the plan asked for and the plan kept', async () => {
    await call('PUT', '/mail-templates/plan_change_declined', {
      subject: '{{applicationName}}: no {{requestedPlanName}}',
      body: 'Staying on {{planName}}. Ask {{contactEmail}}.',
    });
    const id = await newApplication('Declined', plans.free);
    await requestApplicationPlan(cd, { type: 'developer', id: null }, id, plans.pro);
    const since = await mark();
    expect((await call('POST', `/applications/${id}/decline-plan`)).statusCode).toBe(200);
    expect((await call('POST', `/applications/${id}/decline-plan`)).statusCode).toBe(409);
    for (const to of admins) {
      expect((await mailsSince(since, to)).map((m) => [m.subject, m.text])).toEqual([
        ['Declined: no Pro', 'Staying on Free. Ask api@acme.test.'],
      ]);
    }
    expect(await mailsSince(since, member)).toEqual([]);
  });

  it('account approved: once, to its admins, when the provider approves an account that waited', async () => {
    await call('PUT', '/mail-templates/account_approved', {
      subject: '{{accountName}} may start',
      body: 'Create applications at {{appsUrl}} on {{portalName}}.',
    });
    const waiting = (await call('POST', '/accounts', { name: 'Waiting Co', state: 'pending' })).json().id;
    await call('POST', `/accounts/${waiting}/users`, { email: 'w@waiting.test', name: 'W', role: 'admin' });
    await call('POST', `/accounts/${waiting}/users`, { email: 'm@waiting.test', name: 'M', role: 'member' });
    const since = await mark();
    expect((await call('POST', `/accounts/${waiting}/approve`)).statusCode).toBe(200);
    expect((await call('POST', `/accounts/${waiting}/approve`)).statusCode).toBe(409);
    expect((await mailsSince(since, 'w@waiting.test')).map((m) => [m.subject, m.text])).toEqual([
      ['Waiting Co may start', `Create applications at ${portalUrl}/apps on Acme APIs.`],
    ]);
    expect(await mailsSince(since, 'm@waiting.test')).toEqual([]);
    // the partner's own account got nothing
    for (const to of admins) expect(await mailsSince(since, to)).toEqual([]);
  });

  it('go-live decided: rejected with the comment, then approved, once each; a decision refused sends nothing', async () => {
    await call('PUT', '/mail-templates/golive_decided', {
      subject: 'Go-live {{decision}}: {{applicationName}}',
      body: '{{comment}}\n{{nextStep}}\n{{goLiveUrl}}',
    });
    const id = await newApplication('Sandbox app', plans.free);
    const since = await mark();
    const asked = await call('POST', `/applications/${id}/golive`, { note: 'ready' });
    expect(asked.statusCode, asked.body).toBe(201);
    const rejected = await call('POST', `/golive/requests/${asked.json().id}/reject`, {
      comment: 'Handle <429> with {{retry}}.',
    });
    expect(rejected.statusCode, rejected.body).toBe(200);
    const again = await call('POST', `/applications/${id}/golive`, {});
    const approved = await call('POST', `/golive/requests/${again.json().id}/approve`, {
      comment: 'Welcome.',
    });
    expect(approved.statusCode, approved.body).toBe(200);
    expect(
      (await call('POST', `/golive/requests/${again.json().id}/reject`, { comment: 'x' })).statusCode,
    ).toBe(409);
    for (const to of admins) {
      const mails = await mailsSince(since, to);
      expect(mails.map((m) => [m.subject, m.text])).toEqual([
        [
          'Go-live rejected: Sandbox app',
          `Handle <429> with {{retry}}.\nFix what the comment says, then ask again on the go-live page.\n${portalUrl}/apps/${id}/golive`,
        ],
        [
          'Go-live approved: Sandbox app',
          `Welcome.\nCollect your production key (shown once) on the go-live page.\n${portalUrl}/apps/${id}/golive`,
        ],
      ]);
    }
    expect(await mailsSince(since, member)).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('production revoked: once per revoke, by the API or the console, with the comment; a refused revoke sends nothing', async () => {
    await call('PUT', '/mail-templates/production_revoked', {
      subject: 'Revoked: {{applicationName}}',
      body: '{{productionApplicationName}} on {{serviceName}}: {{comment}}\nAsk again: {{goLiveUrl}} ({{contactEmail}})',
    });
    const id = await newApplication('Revoked app', plans.free);
    const goLive = async (): Promise<string> => {
      const asked = await call('POST', `/applications/${id}/golive`, {});
      expect(asked.statusCode, asked.body).toBe(201);
      const requestId = asked.json().id as string;
      const approved = await call('POST', `/golive/requests/${requestId}/approve`, {});
      expect(approved.statusCode, approved.body).toBe(200);
      return requestId;
    };
    const first = await goLive();
    const since = await mark();
    expect((await call('POST', '/golive/requests/glr_missing/revoke', { comment: 'x' })).statusCode).toBe(
      404,
    );
    const revoked = await call('POST', `/golive/requests/${first}/revoke`, {
      comment: 'Ignored <429> and {{retry}}.',
    });
    expect(revoked.statusCode, revoked.body).toBe(200);
    expect((await call('POST', `/golive/requests/${first}/revoke`, { comment: 'again' })).statusCode).toBe(
      409,
    );
    // asked again, approved again, revoked again — this time in the console
    const second = await goLive();
    const admin = new WebAgent(app);
    await admin.get('/admin/login');
    expect(
      (await admin.post('/admin/login', { email: 'admin@provider.test', password: 'console-password-1' }))
        .statusCode,
    ).toBe(303);
    await admin.get('/admin/golive?state=approved');
    const byConsole = await admin.submit(`/admin/golive/${second}/revoke`, { comment: 'Logo misused.' });
    expect(byConsole.posted).toBe(303);
    const refused = await admin.submit(`/admin/golive/${second}/revoke`, { comment: 'twice' });
    expect(refused.posted).toBe(409);
    const url = `${portalUrl}/apps/${id}/golive`;
    for (const to of admins) {
      const mails = (await mailsSince(since, to)).filter((m) => m.subject.startsWith('Revoked'));
      expect(mails.map((m) => [m.subject, m.text])).toEqual([
        [
          'Revoked: Revoked app',
          `Revoked app (production) on Weather: Ignored <429> and {{retry}}.\nAsk again: ${url} (api@acme.test)`,
        ],
        [
          'Revoked: Revoked app',
          `Revoked app (production) on Weather: Logo misused.\nAsk again: ${url} (api@acme.test)`,
        ],
      ]);
    }
    expect(await mailsSince(since, member)).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('webhook endpoint disabled: the provider’s edited template, with the portal’s sender', async () => {
    await call('PUT', '/mail-templates/webhook_endpoint_disabled', {
      subject: 'Off: {{url}}',
      body: '{{endpointId}} failed since {{failingSince}} ({{days}} days). {{portalName}}',
    });
    const sent: { from: string; subject: string }[] = [];
    const mailer = createMailer({
      db: store.db,
      clock,
      smtpUrl: '',
      from: 'webhooks@localhost',
      transport: { send: async (m) => void sent.push(m) },
    });
    const since = await mark();
    await mailDisabled(store.db, mailer, [
      {
        endpointId: 'whe_gone',
        url: 'https://hooks.test/x',
        failingSince: '2026-05-27T12:00:00.000Z',
        days: 5,
      },
    ]);
    await mailer.settled();
    // an endpoint without an account is the provider's: its admins are told
    const mails = await mailsSince(since, 'admin@provider.test');
    expect(mails.map((m) => [m.subject, m.text])).toEqual([
      ['Off: https://hooks.test/x', 'whe_gone failed since 2026-05-27T12:00:00.000Z (5 days). Acme APIs'],
    ]);
    expect(sent.map((m) => m.from)).toEqual(['developers@acme.test']);
  });

  it('the console previews each new template with sample values, escaped', async () => {
    const admin = new WebAgent(app);
    await admin.get('/admin/login');
    const login = await admin.post('/admin/login', {
      email: 'admin@provider.test',
      password: 'console-password-1',
    });
    expect(login.statusCode).toBe(303);
    const list = await admin.get('/admin/portal-settings/mail-templates');
    for (const name of [
      'Account approved',
      'Plan request declined',
      'Application approved',
      'Plan changed',
      'Go-live decided',
      'Production revoked',
      'Webhook endpoint disabled',
    ])
      expect(list.body).toContain(name);
    const drafts: Record<string, [string, string]> = {
      application_approved: ['<b>{{applicationName}}</b>', 'Plan {{planName}} at {{applicationUrl}}'],
      plan_changed: ['<b>{{applicationName}}</b>', '{{previousPlanName}} to {{planName}}'],
      plan_change_declined: ['<b>{{applicationName}}</b>', '{{requestedPlanName}} declined, on {{planName}}'],
      account_approved: ['<b>{{accountName}}</b>', 'Apps: {{appsUrl}}'],
      golive_decided: ['<b>{{applicationName}}</b>', '{{decision}}: {{comment}}'],
      production_revoked: ['<b>{{productionApplicationName}}</b>', 'Why: {{comment}} Next: {{goLiveUrl}}'],
      webhook_endpoint_disabled: ['<b>{{applicationName}}</b>', '{{url}} for {{days}} days'],
    };
    const expected: Record<string, [string, string]> = {
      application_approved: [
        '&lt;b&gt;Shop sync&lt;/b&gt;',
        'Plan Pro at https://developer.acme.example/apps/app_sample',
      ],
      plan_changed: ['&lt;b&gt;Shop sync&lt;/b&gt;', 'Free to Pro'],
      plan_change_declined: ['&lt;b&gt;Shop sync&lt;/b&gt;', 'Pro declined, on Free'],
      account_approved: ['&lt;b&gt;Partner Ltd&lt;/b&gt;', 'Apps: https://developer.acme.example/apps'],
      golive_decided: [
        '&lt;b&gt;Shop sync&lt;/b&gt;',
        'approved: Certification passed; welcome to production.',
      ],
      production_revoked: [
        '&lt;b&gt;Shop sync (production)&lt;/b&gt;',
        'Why: Your integration ignored 429 responses. Next: https://developer.acme.example/apps/app_sample/golive',
      ],
      webhook_endpoint_disabled: ['', 'https://hooks.partner.example/trellis for 5 days'],
    };
    for (const [key, [subject, body]] of Object.entries(drafts)) {
      const page = await admin.get(`/admin/portal-settings/mail-templates/${key}`);
      expect(page.statusCode, key).toBe(200);
      const preview = await admin.post(`/admin/portal-settings/mail-templates/${key}/preview`, {
        subject,
        body,
      });
      if (key === 'webhook_endpoint_disabled') {
        // this template knows no application: the draft is refused naming the variable
        expect(preview.statusCode, key).toBe(400);
        expect(preview.body).toContain('unknown variable {{applicationName}}');
        const ok = await admin.post(`/admin/portal-settings/mail-templates/${key}/preview`, {
          subject: '<i>{{url}}</i>',
          body,
        });
        expect(ok.statusCode, key).toBe(200);
        expect(ok.body).toContain('&lt;i&gt;https://hooks.partner.example/trellis&lt;/i&gt;');
        expect(ok.body).toContain(expected[key]![1]);
        continue;
      }
      expect(preview.statusCode, key).toBe(200);
      expect(preview.body, key).toContain(expected[key]![0]);
      expect(preview.body, key).toContain(expected[key]![1]);
      expect(preview.body, key).not.toMatch(/<b>(Shop sync|Partner Ltd)/);
    }
  });

  it('the control role as `trellis start` composes it sends them too (written by the time it has closed)', async () => {
    const config = loadConfig({}, { databaseUrl: store.url, logLevel: 'silent' });
    const id = await newApplication('Composed', plans.pro);
    const since = await mark();
    const composed = await composeControlRole({ config, store, clock });
    await composed.ready();
    const res = await composed.inject({
      method: 'POST',
      url: `/admin/api/applications/${id}/approve`,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.statusCode, res.body).toBe(200);
    await composed.close();
    for (const to of admins) {
      expect((await mailsSince(since, to)).map((m) => m.subject)).toEqual(['Acme APIs: Composed approved']);
    }
  });
});
