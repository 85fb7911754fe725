/**
 * Insights meets consumer webhooks (issues 9 and 10): poll-after-create is more severe when the application
 * polls a resource whose events it already receives by webhook. Two applications poll alike (1.5 reads per
 * create, a medium finding on its own); the one with an endpoint subscribed to `paymentrequest.paid` gets a high
 * finding whose advice names the event. Usage is written as the gateway's recorder writes it, on both dialects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultInsightSettings, detect, windowAt } from '../../src/insights/index.js';
import { resourceOfPattern } from '../../src/webhooks/consumer-subscriptions.js';
import { dialects } from '../support/stores.js';
import { type HooksHarness, startHooks } from './harness.js';

/** The usage tables the gateway's recorder writes (migration 0008), as this test writes them. */
type UsageTables = {
  usage_route_calls: {
    bucket: string;
    service_id: string;
    application_id: string;
    route: string;
    status_class: string;
    latency_bucket: number;
    calls: number;
  };
  usage_call_patterns: {
    bucket: string;
    service_id: string;
    application_id: string;
    kind: string;
    route: string;
    prior_route: string;
    lag: number;
    calls: number;
  };
};

describe('the resource a create route makes', () => {
  it('is its last literal segment, singular, without separators', () => {
    expect(resourceOfPattern('/paymentrequests$')).toBe('paymentrequest');
    expect(resourceOfPattern('/v1/payment-requests')).toBe('paymentrequest');
    expect(resourceOfPattern('/shops/{id}/orders?expand=1')).toBe('order');
    expect(resourceOfPattern('/')).toBe('');
  });
});

describe.each(dialects)('poll after create with a webhook subscription (%s)', (dialect) => {
  let h: HooksHarness;
  let serviceId = '';
  let createRule = '';
  let readRule = '';
  const apps: Record<'subscribed' | 'polling' | 'elsewhere', string> = {
    subscribed: '',
    polling: '',
    elsewhere: '',
  };

  async function ok(method: 'POST' | 'PATCH', url: string, body?: unknown) {
    const res = await h.call(method, url, body);
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
    return res.json();
  }

  beforeAll(async () => {
    h = await startHooks(dialect);
    const service = await ok('POST', '/services', {
      name: 'PayMe',
      systemName: 'payme',
      upstreamProduction: 'https://pay.test',
    });
    serviceId = service.id;
    const method = await ok('POST', `/services/${serviceId}/methods`, {
      systemName: 'pr',
      friendlyName: 'PR',
    });
    createRule = (
      await ok('POST', `/services/${serviceId}/mapping-rules`, {
        httpMethod: 'POST',
        pattern: '/paymentrequests$',
        metricId: method.id,
      })
    ).id;
    readRule = (
      await ok('POST', `/services/${serviceId}/mapping-rules`, {
        httpMethod: 'GET',
        pattern: '/paymentrequests/{id}',
        metricId: method.id,
      })
    ).id;
    const plan = await ok('POST', `/services/${serviceId}/plans`, { name: 'Free', systemName: 'free' });
    await ok('POST', `/plans/${plan.id}/make-default`);
    const account = await ok('POST', '/accounts', { name: 'Merchant' });
    for (const name of Object.keys(apps) as (keyof typeof apps)[]) {
      apps[name] = (await ok('POST', '/applications', { accountId: account.id, serviceId, name })).id;
    }
    await ok('POST', `/services/${serviceId}/event-types`, {
      name: 'paymentrequest.paid',
      description: 'Paid.',
      schema: { type: 'object' },
      example: {},
    });
    await ok('POST', `/services/${serviceId}/event-types`, {
      name: 'refund.issued',
      description: 'Refunded.',
      schema: { type: 'object' },
      example: {},
    });
    await ok('POST', `/applications/${apps.subscribed}/webhook-endpoints`, {
      url: 'https://merchant.example.com/hooks',
      eventTypes: ['paymentrequest.paid'],
    });
    // subscribed, but to another resource's events: polling payment requests stays medium
    await ok('POST', `/applications/${apps.elsewhere}/webhook-endpoints`, {
      url: 'https://merchant.example.com/refunds',
      eventTypes: ['refund.issued'],
    });
    // the same usage for each: 10 creates, each read 1.5 times within a second
    const bucket = new Date(Math.floor(h.clock.now() / 60_000) * 60_000 - 5 * 60_000).toISOString();
    for (const applicationId of Object.values(apps)) {
      await h.store.db
        .withTables<UsageTables>()
        .insertInto('usage_route_calls')
        .values([
          {
            bucket,
            service_id: serviceId,
            application_id: applicationId,
            route: createRule,
            status_class: '2xx',
            latency_bucket: 50,
            calls: 10,
          },
          {
            bucket,
            service_id: serviceId,
            application_id: applicationId,
            route: readRule,
            status_class: '2xx',
            latency_bucket: 50,
            calls: 15,
          },
        ])
        .execute();
      await h.store.db
        .withTables<UsageTables>()
        .insertInto('usage_call_patterns')
        .values({
          bucket,
          service_id: serviceId,
          application_id: applicationId,
          kind: 'after_create',
          route: readRule,
          prior_route: createRule,
          lag: 1,
          calls: 15,
        })
        .execute();
    }
  });
  afterAll(() => h.close());

  it('is high for the application subscribed to the resource’s events, medium for the others', async () => {
    const now = h.clock.now();
    const found = await detect(
      h.store.db,
      windowAt(serviceId, now, defaultInsightSettings),
      defaultInsightSettings,
      now,
    );
    const poll = (id: string) => found.find((d) => d.applicationId === id && d.kind === 'poll_after_create');
    expect(poll(apps.polling)).toMatchObject({ severity: 'medium', numbers: { readsPerCreate: 1.5 } });
    expect(poll(apps.polling)?.numbers.subscribedEvents).toBeUndefined();
    expect(poll(apps.elsewhere)?.severity).toBe('medium');
    expect(poll(apps.subscribed)).toMatchObject({
      severity: 'high',
      numbers: { readsPerCreate: 1.5, subscribedEvents: 'paymentrequest.paid' },
    });
    expect(poll(apps.subscribed)?.advice).toContain('It already receives paymentrequest.paid by webhook');

    // a disabled endpoint does not count
    const endpoints = (await h.call('GET', `/applications/${apps.subscribed}/webhook-endpoints`)).json().data;
    await ok('PATCH', `/applications/${apps.subscribed}/webhook-endpoints/${endpoints[0].id}`, {
      enabled: false,
    });
    const again = await detect(
      h.store.db,
      windowAt(serviceId, now, defaultInsightSettings),
      defaultInsightSettings,
      now,
    );
    expect(
      again.find((d) => d.applicationId === apps.subscribed && d.kind === 'poll_after_create')?.severity,
    ).toBe('medium');
  });
});
