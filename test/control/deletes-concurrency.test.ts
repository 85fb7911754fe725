/**
 * Deletions made twice at once, as by two control processes on one database: the thing is deleted once, its
 * `*.deleted` event is recorded once (the outbox feeds webhooks and gateways), and the other request gets the 404
 * it would get had it come second. SQLite and PostgreSQL; on PostgreSQL both deletions are stopped at their
 * commit (linedUpAtCommit), so each has read the row before the other deleted it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlHarness, startControl } from '../support/control.js';
import { linedUpAtCommit, times } from '../support/races.js';
import { dialects } from '../support/stores.js';

/** What a case made: the path that deletes it, and the event (type and entity) its deletion records. */
interface Made {
  path: string;
  event: string;
  entityId: string;
}

describe.each(dialects)('deletions made twice at once (%s)', (dialect) => {
  let h: ControlHarness;
  let serviceId = '';
  let planId = '';
  let hitsId = '';
  let accountId = '';
  let applicationId = '';

  /** A write that must succeed; its JSON answer. */
  const made = async (method: 'POST' | 'PUT', path: string, body: unknown) => {
    const res = await h.call(method, `/admin/api${path}`, body);
    expect(res.statusCode, res.body).toBeLessThan(300);
    return res.json() as { id: string };
  };
  const orderType = (name: string) => ({ name, description: name, schema: { type: 'object' }, example: {} });
  const hooked = (eventType: string) => ({ url: 'https://hooks.gone.test/in', eventTypes: [eventType] });

  beforeAll(async () => {
    h = await startControl(dialect);
    const service = { name: 'Gone', systemName: 'gone', upstreamProduction: 'https://gone.test' };
    serviceId = (await made('POST', '/services', service)).id;
    planId = (await made('POST', `/services/${serviceId}/plans`, { name: 'Open', systemName: 'open' })).id;
    await made('POST', `/services/${serviceId}/event-types`, orderType('order.created'));
    const metrics = (await h.call('GET', `/admin/api/services/${serviceId}/metrics`)).json() as {
      data: { id: string; systemName: string }[];
    };
    hitsId = metrics.data.find((m) => m.systemName === 'hits')!.id;
    accountId = (await made('POST', '/accounts', { name: 'Gone Co' })).id;
    applicationId = (await made('POST', '/applications', { accountId, serviceId, planId, name: 'Kept' })).id;
  }, 60_000);
  afterAll(() => h.close());

  const cases: Record<string, () => Promise<Made>> = {
    'an account': async () => {
      const { id } = await made('POST', '/accounts', { name: 'Twice Co' });
      return { path: `/accounts/${id}`, event: 'account.deleted', entityId: id };
    },
    'a user': async () => {
      const user = { email: 'twice@gone.test', name: 'U', role: 'member' };
      const { id } = await made('POST', `/accounts/${accountId}/users`, user);
      return { path: `/users/${id}`, event: 'user.deleted', entityId: id };
    },
    'an invitation': async () => {
      const { id } = await made('POST', `/accounts/${accountId}/invitations`, { email: 'inv@gone.test' });
      return { path: `/accounts/${accountId}/invitations/${id}`, event: 'invitation.deleted', entityId: id };
    },
    'an application': async () => {
      const { id } = await made('POST', '/applications', { accountId, serviceId, planId, name: 'Twice' });
      return { path: `/applications/${id}`, event: 'application.deleted', entityId: id };
    },
    'a custom field': async () => {
      const { id } = await made('POST', '/custom-fields', { target: 'account', name: 'vat', label: 'VAT' });
      return { path: `/custom-fields/${id}`, event: 'custom_field.deleted', entityId: id };
    },
    'an admin user': async () => {
      const admin = { name: 'Adm', password: 'long enough password' };
      await made('POST', '/admin-users', { ...admin, email: 'kept@gone.test' });
      const { id } = await made('POST', '/admin-users', { ...admin, email: 'twice@gone.test' });
      return { path: `/admin-users/${id}`, event: 'admin_user.deleted', entityId: id };
    },
    'a service': async () => {
      const service = { name: 'Twice', systemName: 'twice', upstreamProduction: 'https://twice.test' };
      const { id } = await made('POST', '/services', service);
      return { path: `/services/${id}`, event: 'service.deleted', entityId: id };
    },
    'a plan': async () => {
      const { id } = await made('POST', `/services/${serviceId}/plans`, {
        name: 'Twice',
        systemName: 'twice',
      });
      return { path: `/plans/${id}`, event: 'plan.deleted', entityId: id };
    },
    'a metric': async () => {
      const { id } = await made('POST', `/services/${serviceId}/metrics`, {
        systemName: 'm',
        friendlyName: 'M',
      });
      return { path: `/services/${serviceId}/metrics/${id}`, event: 'metric.deleted', entityId: id };
    },
    'a method': async () => {
      const { id } = await made('POST', `/services/${serviceId}/methods`, {
        systemName: 'f',
        friendlyName: 'F',
      });
      return { path: `/services/${serviceId}/methods/${id}`, event: 'method.deleted', entityId: id };
    },
    'a mapping rule': async () => {
      const rule = { httpMethod: 'GET', pattern: '/twice', metricId: hitsId };
      const { id } = await made('POST', `/services/${serviceId}/mapping-rules`, rule);
      return {
        path: `/services/${serviceId}/mapping-rules/${id}`,
        event: 'mapping_rule.deleted',
        entityId: id,
      };
    },
    'a plan limit': async () => {
      const { id } = await made('PUT', `/plans/${planId}/limits`, {
        metricId: hitsId,
        period: 'day',
        value: 1,
      });
      return { path: `/plans/${planId}/limits/${id}`, event: 'plan.limit_deleted', entityId: planId };
    },
    'an end-user limit': async () => {
      const limit = { metricId: hitsId, period: 'day', value: 1 };
      const { id } = await made('PUT', `/services/${serviceId}/end-user-limits`, limit);
      const path = `/services/${serviceId}/end-user-limits/${id}`;
      return { path, event: 'service.end_user_limit_deleted', entityId: serviceId };
    },
    'a webhook endpoint': async () => {
      const { id } = await made('POST', '/webhooks/endpoints', hooked('account.created'));
      return { path: `/webhooks/endpoints/${id}`, event: 'webhook_endpoint.deleted', entityId: id };
    },
    'a partner’s webhook endpoint': async () => {
      const path = `/applications/${applicationId}/webhook-endpoints`;
      const { id } = await made('POST', path, hooked('order.created'));
      return { path: `${path}/${id}`, event: 'webhook_endpoint.deleted', entityId: id };
    },
    'an event type': async () => {
      await made('POST', `/services/${serviceId}/event-types`, orderType('order.shipped'));
      const path = `/services/${serviceId}/event-types/order.shipped`;
      return { path, event: 'service_event_type.deleted', entityId: serviceId };
    },
    'a certification plan': async () => {
      const path = `/services/${serviceId}/certification-plan`;
      await made('PUT', path, {});
      return { path, event: 'certification_plan.deleted', entityId: serviceId };
    },
    'a content page': async () => {
      const { id } = await made('POST', '/content-pages', { slug: 'twice', title: 'Twice', body: 'Hello' });
      return { path: `/content-pages/${id}`, event: 'content_page.deleted', entityId: id };
    },
  };

  it.each(Object.entries(cases))(
    'deletes %s once: one 204 and one event, a 404 for the other',
    async (_, make) => {
      const { path, event, entityId } = await make();
      const { ok, refused } = await linedUpAtCommit(
        h.store,
        times(2, () => h.call('DELETE', `/admin/api${path}`)),
      );
      expect(refused).toEqual([]);
      const events = await h.store.db
        .selectFrom('events')
        .select('id')
        .where('type', '=', event)
        .where('entity_id', '=', entityId)
        .execute();
      expect({ answers: ok.map((r) => r.statusCode).sort(), events: events.length }).toEqual({
        answers: [204, 404],
        events: 1,
      });
    },
  );
});
