/**
 * Custom fields as the partner programme uses them (issue 12, items 4 and 5): required First and Last Name on
 * users, first in forms by position; a select (mobile / web / desktop) on applications, checked by the server;
 * an invitation accepted through the management API with the required user fields.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';

describe.each(dialects)('custom fields with choices and positions (%s)', (dialect) => {
  let h: ControlHarness;
  beforeAll(async () => {
    h = await startControl(dialect);
  });
  afterAll(() => h.close());

  it('orders fields by position and accepts only the choices of a select', async () => {
    const department = await h.call('POST', '/admin/api/custom-fields', {
      target: 'user',
      name: 'department',
      label: 'Department',
    });
    expect(department.json()).toMatchObject({ choices: [], position: 1000 });
    for (const [name, label, position] of [
      ['last_name', 'Last Name', 20],
      ['first_name', 'First Name', 10],
    ] as const) {
      const res = await h.call('POST', '/admin/api/custom-fields', {
        target: 'user',
        name,
        label,
        required: true,
        position,
      });
      expect(res.statusCode).toBe(201);
    }
    const users = (await h.call('GET', '/admin/api/custom-fields?target=user')).json().data;
    expect(users.map((f: { name: string }) => f.name)).toEqual(['first_name', 'last_name', 'department']);

    const platform = await h.call('POST', '/admin/api/custom-fields', {
      target: 'application',
      name: 'platform',
      label: 'Platform',
      required: true,
      choices: ['mobile', 'web', 'desktop'],
    });
    expect(platform.json()).toMatchObject({ choices: ['mobile', 'web', 'desktop'] });
    const twice = await h.call('POST', '/admin/api/custom-fields', {
      target: 'application',
      name: 'twice',
      label: 'Twice',
      choices: ['a', 'a'],
    });
    expect(twice.statusCode).toBe(400);

    const svc = (
      await h.call('POST', '/admin/api/services', {
        name: 'Fields',
        systemName: 'fields',
        upstreamProduction: 'http://fields.test',
      })
    ).json();
    await h.call('POST', `/admin/api/services/${svc.id}/plans`, { name: 'Trial', systemName: 'trial' });
    const account = (await h.call('POST', '/admin/api/accounts', { name: 'Partner' })).json();
    const app = (platformValue: string) =>
      h.call('POST', '/admin/api/applications', {
        accountId: account.id,
        serviceId: svc.id,
        name: 'Client',
        customFields: { platform: platformValue },
      });
    const tv = await app('tv');
    expect(tv.statusCode).toBe(400);
    expect(tv.json().error.details).toEqual([
      { field: 'customFields.platform', message: 'Platform must be one of: mobile, web, desktop' },
    ]);
    const web = await app('web');
    expect(web.statusCode).toBe(201);
    expect(web.json().customFields).toEqual({ platform: 'web' });

    const moved = await h.call('PATCH', `/admin/api/custom-fields/${department.json().id}`, { position: 5 });
    expect(moved.json().position).toBe(5);
    const again = (await h.call('GET', '/admin/api/custom-fields?target=user')).json().data;
    expect(again[0].name).toBe('department');
  });

  it('accepts an invitation through the management API with the required user fields', async () => {
    const account = (await h.call('POST', '/admin/api/accounts', { name: 'Invited Co' })).json();
    const invitation = (
      await h.call('POST', `/admin/api/accounts/${account.id}/invitations`, { email: 'second@partner.test' })
    ).json();
    const without = await h.call('POST', '/admin/api/invitations/accept', {
      token: invitation.token,
      name: 'Second User',
      password: 'correct horse battery',
    });
    expect(without.statusCode).toBe(400);
    expect(without.json().error.details.map((d: { field: string }) => d.field)).toEqual([
      'customFields.first_name',
      'customFields.last_name',
    ]);
    const accepted = await h.call('POST', '/admin/api/invitations/accept', {
      token: invitation.token,
      name: 'Second User',
      password: 'correct horse battery',
      customFields: { first_name: 'Second', last_name: 'User' },
    });
    expect(accepted.statusCode).toBe(201);
    expect(accepted.json()).toMatchObject({
      accountId: account.id,
      email: 'second@partner.test',
      customFields: { first_name: 'Second', last_name: 'User' },
    });
    const used = await h.call('POST', '/admin/api/invitations/accept', {
      token: invitation.token,
      name: 'Third',
      password: 'correct horse battery',
      customFields: { first_name: 'T', last_name: 'U' },
    });
    expect(used.statusCode).toBe(400);
  });
});
