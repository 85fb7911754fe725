/**
 * The provider's e-mail templates (issue 13): written through the management API, checked when saved (an unknown
 * variable or an unclosed `{{` is a 400 naming it), previewed with sample data, reset to the default; the mail a
 * signup sends and a password reset's use the provider's template; the sender address of the portal settings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updatePortalSettings } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import {
  type MailMessage,
  composeMail,
  createMailer,
  listMail,
  saveMailTemplate,
} from '../../src/mail/index.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';
import { type PortalHarness, signUp, startPortal } from './portal-harness.js';

describe.each(dialects)('mail templates through the management API (%s)', (dialect) => {
  let h: ControlHarness;
  beforeAll(async () => {
    h = await startControl(dialect);
  }, 60_000);
  afterAll(() => h.close());

  it('lists every mail Trellis sends with its variables, all at their defaults', async () => {
    const res = await h.call('GET', '/admin/api/mail-templates');
    expect(res.statusCode).toBe(200);
    const list = res.json().data as { key: string; customized: boolean; variables: { name: string }[] }[];
    expect(list.map((t) => t.key)).toEqual([
      'signup',
      'invitation',
      'password_reset',
      'quota_alert',
      'quota_reached',
      'account_approved',
      'application_approved',
      'plan_changed',
      'plan_change_declined',
      'golive_decided',
      'production_revoked',
      'webhook_endpoint_disabled',
    ]);
    expect(list.every((t) => !t.customized)).toBe(true);
    const reset = list.find((t) => t.key === 'password_reset');
    expect(reset?.variables.map((v) => v.name)).toEqual(
      expect.arrayContaining(['email', 'resetUrl', 'portalName', 'contactEmail']),
    );
  });

  it('refuses an unknown variable and an unclosed {{, naming each with its line', async () => {
    const unknown = await h.call('PUT', '/admin/api/mail-templates/signup', {
      subject: 'Hi {{name}}',
      body: 'Hello\n{{password}}',
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.code).toBe('validation_failed');
    expect(unknown.json().error.details).toEqual([
      { field: 'body', message: expect.stringContaining('line 2: unknown variable {{password}}') },
    ]);
    const unclosed = await h.call('PUT', '/admin/api/mail-templates/signup', {
      subject: 'Welcome {{name',
      body: 'Hello {{ name }}, {{ 1x }}',
    });
    expect(unclosed.statusCode).toBe(400);
    const details = unclosed.json().error.details as { field: string; message: string }[];
    expect(details).toEqual([
      { field: 'subject', message: expect.stringContaining('is not closed with }}') },
      { field: 'body', message: expect.stringContaining('"{{ 1x }}" is not a variable') },
    ]);
    // nothing was saved
    expect((await h.call('GET', '/admin/api/mail-templates/signup')).json().customized).toBe(false);
  });

  it('refuses an unknown template and unknown fields with 4xx', async () => {
    expect((await h.call('GET', '/admin/api/mail-templates/nope')).statusCode).toBe(400);
    const extra = await h.call('PUT', '/admin/api/mail-templates/signup', {
      subject: 'a',
      body: 'b',
      html: 'x',
    });
    expect(extra.statusCode).toBe(400);
    expect(
      (await h.call('PUT', '/admin/api/mail-templates/signup', { subject: 'a', body: 'b' }, h.readToken))
        .statusCode,
    ).toBe(403);
  });

  it('saves, previews with sample data (saved or a draft) and resets to the default', async () => {
    const saved = await h.call('PUT', '/admin/api/mail-templates/invitation', {
      subject: '{{ inviterName }} wants you in {{accountName}}',
      body: 'Join us: {{acceptUrl}}\nQuestions? {{contactEmail}}',
    });
    expect(saved.statusCode).toBe(200);
    expect(saved.json()).toMatchObject({ key: 'invitation', customized: true });
    const preview = await h.call('POST', '/admin/api/mail-templates/invitation/preview', {});
    expect(preview.statusCode).toBe(200);
    expect(preview.json()).toMatchObject({
      subject: 'Dana Developer wants you in Partner Ltd',
      text: 'Join us: https://developer.acme.example/invitations/tri_sample\nQuestions? api@acme.example',
    });
    const draft = await h.call('POST', '/admin/api/mail-templates/invitation/preview', {
      body: 'Role: {{role}}',
    });
    expect(draft.json().text).toBe('Role: member');
    const badDraft = await h.call('POST', '/admin/api/mail-templates/invitation/preview', {
      body: '{{nope}}',
    });
    expect(badDraft.statusCode).toBe(400);
    expect(badDraft.json().error.message).toContain('{{nope}}');

    const reset = await h.call('DELETE', '/admin/api/mail-templates/invitation');
    expect(reset.statusCode).toBe(200);
    expect(reset.json()).toMatchObject({
      customized: false,
      subject: '{{inviterName}} invites you to {{accountName}}',
    });
    expect((await h.call('GET', '/admin/api/mail-templates/invitation')).json().customized).toBe(false);
  });

  it('keeps the sender and API contact addresses in the portal settings', async () => {
    const bad = await h.call('PATCH', '/admin/api/portal-settings', { senderAddress: 'not an address' });
    expect(bad.statusCode).toBe(400);
    const ok = await h.call('PATCH', '/admin/api/portal-settings', {
      senderAddress: 'developers@acme.example',
      contactEmail: 'api@acme.example',
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({
      senderAddress: 'developers@acme.example',
      contactEmail: 'api@acme.example',
    });
  });
});

describe.each(dialects)('mails written from the provider’s templates (%s)', (dialect) => {
  let h: PortalHarness;
  beforeAll(async () => {
    h = await startPortal(dialect);
  }, 60_000);
  afterAll(() => h.close());

  it('the mail a signup sends uses the edited template', async () => {
    const deps = { db: h.store.db, clock: h.clock };
    await saveMailTemplate(deps, systemActor, 'signup', {
      subject: 'Welcome aboard, {{name}}',
      body: '{{organization}} joined {{portalName}} ({{accountState}}). Write to {{contactEmail}}.\n{{loginUrl}}',
    });
    await updatePortalSettings(deps, systemActor, { name: 'Acme APIs', contactEmail: 'api@acme.test' });
    await signUp(h, 'new@signup.test', 'Shop Ltd');
    const mails = await listMail(h.store.db, { to: 'new@signup.test' });
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({
      subject: 'Welcome aboard, Dev Eloper',
      text: 'Shop Ltd joined Acme APIs (approved). Write to api@acme.test.\nhttp://localhost:3000/login',
    });
  });

  it('a password reset mail uses the edited template and still carries a working link', async () => {
    await saveMailTemplate({ db: h.store.db, clock: h.clock }, systemActor, 'password_reset', {
      subject: 'Your {{portalName}} password',
      body: 'Reset it: {{resetUrl}}',
    });
    const agent = h.agent();
    await agent.get('/password-reset');
    await agent.post('/password-reset', { email: 'new@signup.test' });
    const mail = (await listMail(h.store.db, { to: 'new@signup.test' }))[0];
    expect(mail?.subject).toBe('Your Acme APIs password');
    const link = /^Reset it: http:\/\/localhost:3000(\/password-reset\/[A-Za-z0-9_-]+)$/.exec(
      mail?.text ?? '',
    )?.[1];
    expect(link).toBeDefined();
    expect((await agent.get(link!)).body).toContain('Choose a new password');
  });

  it('sends from the sender address of the portal settings', async () => {
    const sent: (MailMessage & { from: string })[] = [];
    const mailer = createMailer({
      db: h.store.db,
      clock: h.clock,
      smtpUrl: '',
      from: 'portal@localhost',
      transport: { send: async (m) => void sent.push(m) },
    });
    await mailer.send(
      await composeMail(h.store.db, 'password_reset', 'a@b.test', { email: 'a@b.test', resetUrl: 'x' }, ''),
    );
    await updatePortalSettings({ db: h.store.db, clock: h.clock }, systemActor, {
      senderAddress: 'developers@acme.test',
    });
    await mailer.send(
      await composeMail(h.store.db, 'password_reset', 'a@b.test', { email: 'a@b.test', resetUrl: 'x' }, ''),
    );
    await mailer.settled();
    expect(sent.map((m) => m.from)).toEqual(['portal@localhost', 'developers@acme.test']);
  });

  it('keeps a subject on one line whatever a value holds', async () => {
    await saveMailTemplate({ db: h.store.db, clock: h.clock }, systemActor, 'invitation', {
      subject: '{{inviterName}} invites you',
      body: '{{acceptUrl}}',
    });
    const mail = await composeMail(
      h.store.db,
      'invitation',
      'x@y.test',
      {
        inviterName: 'Eve\r\nBcc: all@victim.test',
        accountName: 'A',
        email: 'x@y.test',
        role: 'member',
        acceptUrl: 'u',
      },
      '',
    );
    expect(mail.subject).toBe('Eve Bcc: all@victim.test invites you');
  });
});
