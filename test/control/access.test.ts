import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/kernel/index.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';

describe.each(dialects)('accounts, users and applications (%s)', (dialect) => {
  let h: ControlHarness;
  let serviceId = '';
  let freePlan = '';
  let proPlan = '';
  beforeAll(async () => {
    h = await startControl(dialect);
    serviceId = (
      await h.call('POST', '/admin/api/services', {
        name: 'Pay',
        systemName: 'pay',
        upstreamProduction: 'https://pay.test',
        authMode: 'app_id_app_key',
      })
    ).json().id;
    freePlan = (
      await h.call('POST', `/admin/api/services/${serviceId}/plans`, { name: 'Free', systemName: 'free' })
    ).json().id;
    proPlan = (
      await h.call('POST', `/admin/api/services/${serviceId}/plans`, {
        name: 'Pro',
        systemName: 'pro',
        approvalRequired: true,
      })
    ).json().id;
  });
  afterAll(() => h.close());

  it('signup express creates account, user and application in one call, secret shown once and stored hashed', async () => {
    const res = await h.call('POST', '/admin/api/signup', {
      account: { name: 'Acme' },
      user: { email: 'Dev@Acme.test', name: 'Dev', password: 'correct horse battery' },
      application: { serviceId, name: 'Acme shop' },
    });
    expect(res.statusCode).toBe(201);
    const { account, user, application } = res.json();
    expect(account).toMatchObject({ state: 'approved' });
    expect(user).toMatchObject({ email: 'dev@acme.test', role: 'admin', hasPassword: true });
    expect(application).toMatchObject({ planId: freePlan, state: 'live', environment: 'sandbox' });
    expect(application.secret.value).toMatch(/^trak_[0-9A-Za-z]{32}$/);
    const row = await h.store.db
      .selectFrom('credentials')
      .selectAll()
      .where('id', '=', application.secret.credentialId)
      .executeTakeFirstOrThrow();
    expect(row.secret_hash).toBe(hashSecret(application.secret.value));
    expect(JSON.stringify(row)).not.toContain(application.secret.value);
    const again = (await h.call('GET', `/admin/api/applications/${application.id}`)).json();
    expect(JSON.stringify(again)).not.toContain(application.secret.value);
    expect(again.credentials[0].displayPrefix).toBe(application.secret.value.slice(0, 11));
    const pw = await h.store.db
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', user.id)
      .executeTakeFirstOrThrow();
    expect(pw.password_hash).toMatch(/^\$argon2id\$/);
  });

  it('signup express is all or nothing', async () => {
    const res = await h.call('POST', '/admin/api/signup', {
      account: { name: 'Half' },
      user: { email: 'half@x.test', name: 'Half' },
      application: { serviceId: 'svc_missing', name: 'Nope' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details[0].field).toBe('application.serviceId');
    const accounts = (await h.call('GET', '/admin/api/accounts?q=Half')).json();
    expect(accounts.data).toEqual([]);
  });

  it('rotates keys: up to five active, revoke the old', async () => {
    const acc = (await h.call('POST', '/admin/api/accounts', { name: 'Rotor' })).json();
    const app = (
      await h.call('POST', '/admin/api/applications', { accountId: acc.id, serviceId, name: 'R' })
    ).json();
    const keys = [app.secret.credentialId];
    for (let i = 0; i < 4; i++) {
      const k = await h.call('POST', `/admin/api/applications/${app.id}/keys`);
      expect(k.statusCode).toBe(201);
      keys.push(k.json().credentialId);
    }
    const sixth = await h.call('POST', `/admin/api/applications/${app.id}/keys`);
    expect(sixth.statusCode).toBe(409);
    expect(sixth.json().error.code).toBe('limit_reached');
    const revoked = await h.call('POST', `/admin/api/applications/${app.id}/keys/${keys[0]}/revoke`);
    expect(revoked.json()).toMatchObject({ state: 'revoked', revokedAt: expect.any(String) });
    expect((await h.call('POST', `/admin/api/applications/${app.id}/keys`)).statusCode).toBe(201);
    expect(
      (await h.call('POST', `/admin/api/applications/${app.id}/keys/${keys[0]}/revoke`)).json().error.code,
    ).toBe('invalid_state');
  });

  it('applies plan approval, explicit transitions and plan changes', async () => {
    const acc = (await h.call('POST', '/admin/api/accounts', { name: 'Big' })).json();
    const app = (
      await h.call('POST', '/admin/api/applications', {
        accountId: acc.id,
        serviceId,
        planId: proPlan,
        name: 'B',
      })
    ).json();
    expect(app.state).toBe('pending');
    expect((await h.call('POST', `/admin/api/applications/${app.id}/resume`)).json().error.code).toBe(
      'invalid_state',
    );
    expect((await h.call('POST', `/admin/api/applications/${app.id}/approve`)).json().state).toBe('live');
    expect((await h.call('POST', `/admin/api/applications/${app.id}/suspend`)).json().state).toBe(
      'suspended',
    );
    expect((await h.call('POST', `/admin/api/applications/${app.id}/resume`)).json().state).toBe('live');
    const moved = await h.call('POST', `/admin/api/applications/${app.id}/change-plan`, { planId: freePlan });
    expect(moved.json().planId).toBe(freePlan);
    const other = (
      await h.call('POST', '/admin/api/services', {
        name: 'O',
        systemName: 'other',
        upstreamProduction: 'http://o.test',
      })
    ).json();
    const otherPlan = (
      await h.call('POST', `/admin/api/services/${other.id}/plans`, { name: 'X', systemName: 'x' })
    ).json();
    const wrong = await h.call('POST', `/admin/api/applications/${app.id}/change-plan`, {
      planId: otherPlan.id,
    });
    expect(wrong.statusCode).toBe(400);
    const audit = (await h.call('GET', `/admin/api/audit-log?entityId=${app.id}`)).json().data;
    expect(audit.map((a: { action: string }) => a.action)).toEqual([
      'application.plan_changed',
      'application.resumed',
      'application.suspended',
      'application.approved',
      'application.created',
    ]);
    expect(audit[0].actorType).toBe('admin_token');
  });

  it('checks allowed IPs and CIDRs', async () => {
    const acc = (await h.call('POST', '/admin/api/accounts', { name: 'Net' })).json();
    const bad = await h.call('POST', '/admin/api/applications', {
      accountId: acc.id,
      serviceId,
      name: 'N',
      // a zone id or a mapped address with an IPv6 prefix would be stored and then never match at the gateway
      allowedIps: ['10.0.0.1', '10.0.0.0/33', '2001:db8::/32', 'nope', 'fe80::1%eth0', '::ffff:10.0.0.1/120'],
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.map((d: { field: string }) => d.field)).toEqual([
      'allowedIps[1]',
      'allowedIps[3]',
      'allowedIps[4]',
      'allowedIps[5]',
    ]);
    const ok = await h.call('POST', '/admin/api/applications', {
      accountId: acc.id,
      serviceId,
      name: 'N',
      allowedIps: ['10.0.0.1', '192.168.0.0/16', '2001:DB8::/32'],
    });
    expect(ok.json().allowedIps).toEqual(['10.0.0.1', '192.168.0.0/16', '2001:db8::/32']);
  });

  it('enforces required custom fields and refuses unknown ones', async () => {
    await h.call('POST', '/admin/api/custom-fields', {
      target: 'account',
      name: 'vat_number',
      label: 'VAT number',
      required: true,
    });
    const missing = await h.call('POST', '/admin/api/accounts', {
      name: 'NoVat',
      customFields: { colour: 'red' },
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.details).toEqual([
      { field: 'customFields.colour', message: 'no account field "colour" is defined' },
      { field: 'customFields.vat_number', message: 'VAT number is required' },
    ]);
    const ok = await h.call('POST', '/admin/api/accounts', {
      name: 'Vat',
      customFields: { vat_number: 'GB1' },
    });
    expect(ok.json().customFields).toEqual({ vat_number: 'GB1' });
    const fields = (await h.call('GET', '/admin/api/custom-fields?target=account')).json().data;
    for (const f of fields) await h.call('DELETE', `/admin/api/custom-fields/${f.id}`);
  });

  it('invites users, keeps an admin, and walks account states', async () => {
    const acc = (await h.call('POST', '/admin/api/accounts', { name: 'Team', state: 'pending' })).json();
    expect((await h.call('POST', `/admin/api/accounts/${acc.id}/approve`)).json().state).toBe('approved');
    const admin = (
      await h.call('POST', `/admin/api/accounts/${acc.id}/users`, { email: 'boss@team.test', name: 'Boss' })
    ).json();
    const inv = await h.call('POST', `/admin/api/accounts/${acc.id}/invitations`, { email: 'new@team.test' });
    expect(inv.json()).toMatchObject({ role: 'member', token: expect.stringMatching(/^tri_/) });
    expect(
      (await h.call('POST', `/admin/api/accounts/${acc.id}/invitations`, { email: 'boss@team.test' }))
        .statusCode,
    ).toBe(409);
    const last = await h.call('DELETE', `/admin/api/users/${admin.id}`);
    expect(last.json().error.code).toBe('invalid_state');
    expect((await h.call('POST', `/admin/api/accounts/${acc.id}/suspend`)).json().state).toBe('suspended');
    expect((await h.call('DELETE', `/admin/api/accounts/${acc.id}`)).statusCode).toBe(204);
    expect((await h.call('GET', `/admin/api/users/${admin.id}`)).statusCode).toBe(404);
  });

  it('writes an outbox event in the same transaction as every change', async () => {
    const events = await h.store.db.selectFrom('events').select(['type']).execute();
    const audits = await h.store.db.selectFrom('audit_log').select(['action']).execute();
    expect(events.length).toBe(audits.length);
    expect(events.map((e) => e.type)).toContain('credential.revoked');
  });
});
