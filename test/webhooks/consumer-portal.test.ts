/**
 * Consumer webhooks in the portal (issue 9): a partner adds an endpoint for its application (the secret shown
 * once), sends a test event, reads the delivery log with its attempts, replays a message, disables the endpoint;
 * another account sees and touches none of it. The API's event types and the signature page are on the portal.
 * A real receiver on 127.0.0.1 verifies every delivery with the `standardwebhooks` package.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/events/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createOutboundClient } from '../../src/outbound/index.js';
import { createWebhookWorker, declareEventType, publishEvent } from '../../src/webhooks/index.js';
import { type PortalHarness, signUp, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';
import { dialects } from '../support/stores.js';
import { type Receiver, startReceiver } from './harness.js';

const secretIn = (html: string) =>
  /data-testid="webhook-secret"/.test(html) ? /value="(whsec_[^"]+)"/.exec(html)?.[1] : undefined;

describe.each(dialects)('webhooks in the portal (%s)', (dialect) => {
  let h: PortalHarness;
  let partner: WebAgent;
  let rival: WebAgent;
  let appId = '';
  let rivalAppId = '';
  let receiver: Receiver;
  const outbound = createOutboundClient({ allowHosts: ['127.0.0.1'], timeoutMs: 10_000 });

  async function newApp(agent: WebAgent, name: string): Promise<string> {
    await agent.get(`/apps/new?service=${h.serviceId}`);
    const created = await agent.submit('/apps/new', { serviceId: h.serviceId, planId: h.plans.free, name });
    expect(created.posted).toBe(303);
    return created.location.slice('/apps/'.length);
  }

  beforeAll(async () => {
    h = await startPortal(dialect, { outboundAllowHosts: ['127.0.0.1'] });
    await declareEventType({ db: h.store.db, clock: h.clock }, systemActor, h.serviceId, {
      name: 'forecast.ready',
      description: 'A <b>forecast</b> you asked for is ready.',
      schema: {
        type: 'object',
        required: ['forecastId'],
        properties: { forecastId: { type: 'string' }, note: { type: 'string' } },
      },
      example: { forecastId: 'fc_1', note: '<script>alert(1)</script>' },
    });
    partner = await signUp(h, 'dev@partner.test', 'Partner');
    rival = await signUp(h, 'dev@rival.test', 'Rival');
    appId = await newApp(partner, 'Partner app');
    rivalAppId = await newApp(rival, 'Rival app');
    receiver = await startReceiver(h.clock);
  });
  afterAll(async () => {
    await receiver.close();
    await outbound.close();
    await h.close();
  });

  const worker = () =>
    createWebhookWorker({
      db: h.store.db,
      clock: h.clock,
      sealer: createSealer(''),
      sender: outbound,
      options: { random: () => 0 },
    });

  it('adds an endpoint with its secret shown once; a test event, the delivery log and a replay; disabling stops deliveries', async () => {
    const page = await partner.get(`/apps/${appId}`);
    expect(page.body).toContain(`href="/apps/${appId}/webhooks"`);
    const empty = await partner.get(`/apps/${appId}/webhooks`);
    expect(empty.statusCode).toBe(200);
    expect(empty.body).toContain('data-testid="no-endpoints"');
    expect(empty.body).toContain('value="forecast.ready"');

    // a form without its CSRF token is refused
    const forged = await partner.post(
      `/apps/${appId}/webhooks`,
      { url: receiver.url, eventTypes: 'forecast.ready' },
      { csrf: null },
    );
    expect(forged.statusCode).toBe(403);

    // bad input: the form again, with the problem named, nothing made
    const refused = await partner.submit(`/apps/${appId}/webhooks`, {
      url: 'http://169.254.169.254/latest',
      eventTypes: 'forecast.ready',
    });
    expect(refused.posted).toBe(400);
    expect(refused.body).toContain('role="alert"');
    expect(refused.body).toContain('value="http://169.254.169.254/latest"');
    const unknownType = await partner.submit(`/apps/${appId}/webhooks`, {
      url: receiver.url,
      eventTypes: 'forecast.nope',
    });
    expect(unknownType.posted).toBe(400);
    expect(unknownType.body).toContain('the API declares no event type forecast.nope');

    await partner.get(`/apps/${appId}/webhooks`);
    const added = await partner.submit(`/apps/${appId}/webhooks`, {
      url: receiver.url,
      eventTypes: 'forecast.ready',
      description: '<img src=x onerror=alert(1)>',
    });
    expect(added.posted).toBe(303);
    const secret = secretIn(added.body);
    expect(secret).toMatch(/^whsec_/);
    receiver.secrets.push(secret!);
    expect(added.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(added.body).not.toContain('<img src=x');
    const endpointId = /data-endpoint="(whe_[0-9a-z]+)"/.exec(added.body)?.[1] ?? '';
    expect(endpointId).toMatch(/^whe_/);
    // shown once: a reload shows only its prefix
    const reload = await partner.get(added.location);
    expect(reload.body).not.toContain(secret!);
    expect(reload.body).toContain(`${secret!.slice(0, 12)}…`);

    // the provider publishes; a test event from the page; both arrive verified and show in the log
    await publishEvent(
      { db: h.store.db, clock: h.clock },
      { type: 'forecast.ready', applicationId: appId, payload: { forecastId: 'fc_9' } },
    );
    const tested = await partner.submit(`/apps/${appId}/webhooks/${endpointId}/test`, {});
    expect(tested.posted).toBe(303);
    await worker().tick();
    expect(receiver.received.map((r) => r.payload.type).sort()).toEqual([
      'forecast.ready',
      'webhook_endpoint.test',
    ]);
    const log = await partner.get(`/apps/${appId}/webhooks?endpoint=${endpointId}`);
    expect(log.body).toContain('data-testid="delivery-log"');
    const messageIds = [...log.body.matchAll(/data-message="(msg_[0-9a-z]+)"/g)].map((m) => m[1]!);
    expect(messageIds).toHaveLength(2);
    expect(log.body).toMatch(/ · 200 · \d+ ms/);

    const replayed = await partner.submit(
      `/apps/${appId}/webhooks/${endpointId}/messages/${messageIds[0]}/replay`,
      {},
    );
    expect(replayed.posted).toBe(303);
    await worker().tick();
    expect(receiver.received).toHaveLength(3);
    expect(receiver.received[2]!.headers['webhook-id']).toBe(messageIds[0]);

    // disabled, the endpoint gets nothing more
    const disabled = await partner.submit(`/apps/${appId}/webhooks/${endpointId}/enabled`, {
      enabled: 'false',
    });
    expect(disabled.posted).toBe(303);
    expect(disabled.body).toContain('The endpoint is disabled.');
    const none = await publishEvent(
      { db: h.store.db, clock: h.clock },
      { type: 'forecast.ready', applicationId: appId, payload: { forecastId: 'fc_10' } },
    );
    expect(none.event.messages).toBe(0);

    // rotation shows a new secret once
    const rotated = await partner.submit(`/apps/${appId}/webhooks/${endpointId}/rotate`, {});
    expect(rotated.posted).toBe(303);
    expect(secretIn(rotated.body)).toMatch(/^whsec_/);
    expect(secretIn(rotated.body)).not.toBe(secret);

    // another account: not found, on every page and form of this endpoint
    const foreign = [
      await rival.get(`/apps/${appId}/webhooks`),
      await rival.get(`/apps/${appId}/webhooks?endpoint=${endpointId}`),
    ];
    for (const res of foreign) expect(res.statusCode).toBe(404);
    const own = await rival.get(`/apps/${rivalAppId}/webhooks?endpoint=${endpointId}`);
    expect(own.statusCode).toBe(200);
    expect(own.body).not.toContain(receiver.url);
    expect(own.body).not.toContain('data-testid="delivery-log"');
    for (const action of ['enabled', 'test', 'rotate', 'delete', `messages/${messageIds[0]}/replay`]) {
      for (const app of [appId, rivalAppId]) {
        const res = await rival.post(`/apps/${app}/webhooks/${endpointId}/${action}`, { enabled: 'true' });
        expect(res.statusCode, `${app} ${action}`).toBe(404);
      }
    }
    const still = await partner.get(`/apps/${appId}/webhooks`);
    expect(still.body).toContain(`data-endpoint="${endpointId}"`);

    // deleted by its owner
    const deleted = await partner.submit(`/apps/${appId}/webhooks/${endpointId}/delete`, {});
    expect(deleted.posted).toBe(303);
    expect(deleted.body).toContain('data-testid="no-endpoints"');
  });

  it("documents the API's event types with their example payloads, escaped, and how to verify a signature", async () => {
    const api = await h.agent().get(`/apis/${h.serviceId}`);
    expect(api.body).toContain(`href="/apis/${h.serviceId}/events"`);
    const events = await h.agent().get(`/apis/${h.serviceId}/events`);
    expect(events.statusCode).toBe(200);
    expect(events.body).toContain('data-event-type="forecast.ready"');
    expect(events.body).toContain('A &lt;b&gt;forecast&lt;/b&gt; you asked for is ready.');
    expect(events.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(events.body).not.toContain('<script>alert(1)');
    expect((await h.agent().get('/apis/svc_nope/events')).statusCode).toBe(404);
    expect((await h.agent().get(`/apis/${'x'.repeat(100)}/events`)).statusCode).toBe(404);
    const verify = await h.agent().get('/docs/webhooks');
    expect(verify.statusCode).toBe(200);
    expect(verify.body).toContain('standardwebhooks');
    expect(verify.body).toContain('{webhook-id}.{webhook-timestamp}.{body}');
  });
});
