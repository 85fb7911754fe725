/**
 * Webhooks in the console (issue 9) on both dialects: the provider adds an endpoint (the secret shown once, a
 * reload makes nothing twice), edits, disables and enables it, rotates its secret, sends a test event, reads the
 * delivery log with every attempt, replays a message, recovers the messages failed since a time, deletes it; the
 * queue's figures are on the page; partners' endpoints are listed across accounts with their delivery log, and the
 * provider disables and enables one. Forms without the CSRF token are refused; bad input is a 400 page naming the
 * field; nobody but a signed-in admin (not a partner's portal session) reaches any of it. A real receiver on
 * 127.0.0.1 verifies every delivery with the `standardwebhooks` package.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getApplication } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createOutboundClient } from '../../src/outbound/index.js';
import {
  createConsumerEndpoint,
  createWebhookWorker,
  declareEventType,
  listConsumerEndpoints,
  listEndpoints,
  publishEvent,
  sendTestMessage,
} from '../../src/webhooks/index.js';
import { type PortalHarness, signUp, startPortal } from '../portal/portal-harness.js';
import type { WebAgent } from '../portal/web-agent.js';
import { dialects } from '../support/stores.js';
import { type Receiver, startReceiver } from '../webhooks/harness.js';

const secretIn = (html: string) =>
  /data-testid="webhook-secret"/.test(html) ? /value="(whsec_[^"]+)"/.exec(html)?.[1] : undefined;
const messagesIn = (html: string) =>
  [...html.matchAll(/data-message="(msg_[0-9A-Za-z]+)"/g)].map((m) => m[1]!);

describe.each(dialects)('webhooks in the console (%s)', (dialect) => {
  let h: PortalHarness;
  let admin: WebAgent;
  let partner: WebAgent;
  let receiver: Receiver;
  const outbound = createOutboundClient({ allowHosts: ['127.0.0.1'], timeoutMs: 10_000 });
  const hooks = () => ({
    db: h.store.db,
    clock: h.clock,
    sealer: createSealer(''),
    allowHosts: ['127.0.0.1'],
  });
  const worker = () =>
    createWebhookWorker({
      db: h.store.db,
      clock: h.clock,
      sealer: createSealer(''),
      sender: outbound,
      options: { random: () => 0 },
    });
  const providerEndpoints = async () => (await listEndpoints(h.store.db, { limit: 100 })).data;

  /** A console session started now (the retry schedule below moves the clock past the idle limit). */
  async function signIn(): Promise<WebAgent> {
    const agent = h.agent();
    await agent.get('/admin/login');
    const signedIn = await agent.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
    expect(signedIn.statusCode).toBe(303);
    return agent;
  }

  beforeAll(async () => {
    h = await startPortal(dialect, { outboundAllowHosts: ['127.0.0.1'] });
    receiver = await startReceiver(h.clock);
    admin = await signIn();
    partner = await signUp(h, 'dev@hooks-partner.test', 'Partner');
  });
  afterAll(async () => {
    await receiver.close();
    await outbound.close();
    await h.close();
  });

  it('is reached only by a signed-in admin: a visitor and a partner are sent to the console sign-in', async () => {
    for (const agent of [h.agent(), partner]) {
      for (const path of ['/admin/webhooks', '/admin/webhooks/partners', '/admin/webhooks/whe_x']) {
        const res = await agent.get(path);
        expect(res.statusCode, path).toBe(303);
        expect(String(res.headers.location)).toMatch(/^\/admin\/login\?next=/);
      }
    }
    // a partner's POST with its own portal token: refused, nothing made
    await partner.get('/apps');
    const posted = await partner.post('/admin/webhooks', { url: receiver.url, eventTypes: '*' });
    // its token is bound to its portal session, not to a console one: the CSRF check refuses the form
    expect(posted.statusCode).toBe(403);
    // a visitor with the console's own (signed-out) token: sent to sign in, on every form
    const visitor = h.agent();
    await visitor.get('/admin/login');
    for (const form of [
      '/admin/webhooks',
      '/admin/webhooks/whe_x/test',
      '/admin/webhooks/whe_x/delete',
      '/admin/webhooks/partners/app_x/whe_x/enabled',
    ]) {
      const res = await visitor.post(form, { url: receiver.url, eventTypes: '*', enabled: 'false' });
      expect(res.statusCode, form).toBe(303);
      expect(String(res.headers.location), form).toMatch(/^\/admin\/login\?next=/);
    }
    expect(await providerEndpoints()).toEqual([]);
  });

  it("adds, edits, tests, replays, recovers, disables, rotates and deletes the provider's endpoint", async () => {
    const page = await admin.get('/admin/webhooks');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('href="/admin/webhooks" aria-current="page">Webhooks</a>');
    expect(page.body).toContain('data-testid="no-endpoints"');
    expect(page.body).toMatch(/data-figure="pending">0</);
    expect(page.body).toMatch(/data-figure="oldest">none</);
    expect(page.body).toContain('value="account.created"');

    // without the CSRF token: refused, nothing made
    const forged = await admin.post(
      '/admin/webhooks',
      { url: receiver.url, eventTypes: '*' },
      { csrf: null },
    );
    expect(forged.statusCode).toBe(403);
    expect(await providerEndpoints()).toEqual([]);

    // bad input: the form again with the field named, a 400, nothing made
    const bad: [Record<string, string | string[]>, string][] = [
      [{ url: 'http://169.254.169.254/latest', eventTypes: '*' }, 'value="http://169.254.169.254/latest"'],
      [{ url: receiver.url }, 'id="wh-url"'],
      [{ url: receiver.url, eventTypes: 'account.nope' }, 'account.nope is not an event type'],
      [{ url: receiver.url, eventTypes: '*', ratePerSecond: 'fast' }, 'id="wh-rate-error"'],
      [{ url: 'ftp://example.com/x', eventTypes: '*' }, 'id="wh-url-error"'],
    ];
    for (const [fields, shown] of bad) {
      await admin.get('/admin/webhooks');
      const res = await admin.submit('/admin/webhooks', fields);
      expect(res.posted, JSON.stringify(fields)).toBe(400);
      expect(res.body).toContain('role="alert"');
      expect(res.body).toContain(shown);
    }
    expect(await providerEndpoints()).toEqual([]);

    // the outbox so far (the catalog, the admin, the partner's signup) is fanned out before the endpoint exists
    await worker().tick();

    // added: POST → redirect → GET, the secret shown once
    await admin.get('/admin/webhooks');
    const added = await admin.submit('/admin/webhooks', {
      url: receiver.url,
      eventTypes: ['account.created', 'application.created'],
      description: '<img src=x onerror=alert(1)>',
      ratePerSecond: '5',
    });
    expect(added.posted).toBe(303);
    expect(added.location).toMatch(/^\/admin\/webhooks\/whe_[0-9A-Za-z]+$/);
    const path = added.location;
    const endpointId = path.slice('/admin/webhooks/'.length);
    const secret = secretIn(added.body);
    expect(secret).toMatch(/^whsec_/);
    receiver.secrets.push(secret!);
    expect(added.body).toContain('shown only this once');
    expect(added.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(added.body).not.toContain('<img src=x');
    const reload = await admin.get(path);
    expect(reload.body).not.toContain(secret!);
    expect(reload.body).toContain(`${secret!.slice(0, 12)}…`);
    expect(await providerEndpoints()).toHaveLength(1);
    const list = await admin.get('/admin/webhooks');
    expect(list.body).toContain(`data-endpoint="${endpointId}"`);
    expect(list.body).toContain('5/s');
    expect(list.body).toContain('account.created, application.created');

    // edited; a bad rate is a 400 on the endpoint's page, nothing changed
    await admin.get(path);
    const refusedEdit = await admin.submit(path, {
      url: receiver.url,
      eventTypes: 'account.created',
      ratePerSecond: '-1',
    });
    expect(refusedEdit.posted).toBe(400);
    expect(refusedEdit.body).toContain('id="wh-rate-error"');
    const saved = await admin.submit(path, {
      url: receiver.url,
      eventTypes: 'account.created',
      ratePerSecond: '',
    });
    expect([saved.posted, saved.location]).toEqual([303, path]);
    expect(saved.body).toContain('The endpoint was saved.');
    expect((await providerEndpoints())[0]).toMatchObject({
      eventTypes: ['account.created'],
      ratePerSecond: null,
    });

    // a test event: delivered, verified, in the log with its attempt
    const tested = await admin.submit(`${path}/test`, {});
    expect([tested.posted, tested.location]).toEqual([303, path]);
    await worker().tick();
    expect(receiver.received.map((r) => r.payload.type)).toEqual(['webhook_endpoint.test']);
    const log = await admin.get(path);
    expect(log.body).toContain('data-testid="delivery-log"');
    expect(log.body).toMatch(/ · 200 · \d+ ms/);
    const [testMessage] = messagesIn(log.body);
    expect(testMessage).toBeDefined();

    // replayed: the same webhook-id again
    const replayed = await admin.submit(`${path}/messages/${testMessage}/replay`, {});
    expect(replayed.posted).toBe(303);
    expect(replayed.body).toContain('The message is sent again');
    await worker().tick();
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[1]!.headers['webhook-id']).toBe(testMessage);

    // a receiver failing until the schedule gives up: the message is "failed", with every attempt logged
    receiver.respond = () => ({ status: 500, body: 'down <b>for</b> maintenance' });
    const failing = await admin.submit(`${path}/test`, {});
    expect(failing.posted).toBe(303);
    for (let i = 0; i < 10; i++) {
      await worker().tick();
      h.clock.advance(11 * 3_600_000);
    }
    admin = await signIn();
    const failedLog = await admin.get(`${path}?state=failed`);
    const failed = messagesIn(failedLog.body);
    expect(failed).toHaveLength(1);
    expect(failedLog.body).toContain('down &lt;b&gt;for&lt;/b&gt; maintenance');
    expect(failedLog.body.match(/ · 500 · \d+ ms/g)).toHaveLength(8);
    expect(failedLog.body).toMatch(/failing since \d{4}-/);

    // recover: a since that is not a time is a 400 naming it; a time sends the failed message again
    const badSince = await admin.submit(`${path}/recover`, { since: 'yesterday' });
    expect(badSince.posted).toBe(400);
    expect(badSince.body).toContain('id="since-error"');
    receiver.respond = () => ({ status: 200 });
    const recovered = await admin.submit(`${path}/recover`, { since: '2026-06-01T00:00' });
    expect(recovered.posted).toBe(303);
    expect(recovered.body).toContain('1 failed message(s) sent again.');
    const before = receiver.received.length;
    await worker().tick();
    expect(receiver.received.slice(before).map((r) => r.headers['webhook-id'])).toEqual([failed[0]]);
    expect(messagesIn((await admin.get(`${path}?state=failed`)).body)).toEqual([]);

    // disabled: an account created now is not delivered to it; enabled again
    const disabled = await admin.submit(`${path}/enabled`, { enabled: 'false' });
    expect(disabled.posted).toBe(303);
    expect(disabled.body).toMatch(/data-testid="endpoint-state">disabled</);
    expect((await providerEndpoints())[0]?.enabled).toBe(false);
    const enabled = await admin.submit(`${path}/enabled`, { enabled: 'true' });
    expect(enabled.body).toMatch(/data-testid="endpoint-state">enabled</);

    // rotated: a new secret shown once
    const rotated = await admin.submit(`${path}/rotate`, {});
    expect(rotated.posted).toBe(303);
    const second = secretIn(rotated.body);
    expect(second).toMatch(/^whsec_/);
    expect(second).not.toBe(secret);
    expect((await admin.get(path)).body).not.toContain(second!);

    // unknown ids are 404 pages, never 500
    for (const missing of ['/admin/webhooks/whe_nope', `/admin/webhooks/${'x'.repeat(100)}`]) {
      expect((await admin.get(missing)).statusCode).toBe(404);
    }
    await admin.get(path);
    expect((await admin.post(`${path}/messages/msg_nope/replay`, {})).statusCode).toBe(404);
    expect((await admin.post('/admin/webhooks/whe_nope/test', {})).statusCode).toBe(404);

    // deleted
    const deleted = await admin.submit(`${path}/delete`, {});
    expect([deleted.posted, deleted.location]).toEqual([303, '/admin/webhooks']);
    expect(deleted.body).toContain('The endpoint and its delivery log were deleted.');
    expect(deleted.body).toContain('data-testid="no-endpoints"');
    expect(await providerEndpoints()).toEqual([]);
  });

  it("lists partners' endpoints across accounts; the provider disables and enables one and reads its log", async () => {
    await declareEventType({ db: h.store.db, clock: h.clock }, systemActor, h.serviceId, {
      name: 'forecast.ready',
      description: 'A forecast is ready.',
      schema: { type: 'object', required: ['forecastId'], properties: { forecastId: { type: 'string' } } },
      example: { forecastId: 'fc_1' },
    });
    const owner = await signUp(h, 'dev@storm.test', 'Partner <b>Co</b>');
    await owner.get(`/apps/new?service=${h.serviceId}`);
    const app = await owner.submit('/apps/new', {
      serviceId: h.serviceId,
      planId: h.plans.free,
      name: 'Storm <i>watch</i>',
    });
    expect(app.posted).toBe(303);
    const appId = app.location.slice('/apps/'.length);
    const endpoint = await createConsumerEndpoint(hooks(), systemActor, appId, {
      url: receiver.url,
      eventTypes: ['forecast.ready'],
      description: 'storm alerts',
    });
    receiver.secrets.splice(0, receiver.secrets.length, endpoint.secret);
    const path = `/admin/webhooks/partners/${appId}/${endpoint.id}`;

    const list = await admin.get('/admin/webhooks/partners');
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain('data-testid="partner-endpoints"');
    expect(list.body).toContain(`href="${path}"`);
    expect(list.body).toContain('Partner &lt;b&gt;Co&lt;/b&gt;');
    expect(list.body).toContain('Storm &lt;i&gt;watch&lt;/i&gt;');
    expect(list.body).not.toContain('<i>watch');
    expect(list.body).toContain('forecast.ready');

    // without the CSRF token: refused, still enabled
    const forged = await admin.post(`${path}/enabled`, { enabled: 'false' }, { csrf: null });
    expect(forged.statusCode).toBe(403);

    // disabled by the provider: a published event goes nowhere
    const disabled = await admin.submit(`${path}/enabled`, { enabled: 'false' });
    expect([disabled.posted, disabled.location]).toEqual([303, path]);
    expect(disabled.body).toMatch(/data-testid="endpoint-state">disabled</);
    const none = await publishEvent(
      { db: h.store.db, clock: h.clock },
      { type: 'forecast.ready', applicationId: appId, payload: { forecastId: 'fc_2' } },
    );
    expect(none.event.messages).toBe(0);
    const partnerView = (await listConsumerEndpoints(h.store.db, { applicationId: appId }, { limit: 10 }))
      .data;
    expect(partnerView[0]?.enabled).toBe(false);

    // enabled again: delivered, verified, in the provider's view of the log; replayed from there
    const enabled = await admin.submit(`${path}/enabled`, { enabled: 'true' });
    expect(enabled.body).toMatch(/data-testid="endpoint-state">enabled</);
    const one = await publishEvent(
      { db: h.store.db, clock: h.clock },
      { type: 'forecast.ready', applicationId: appId, payload: { forecastId: 'fc_3' } },
    );
    expect(one.event.messages).toBe(1);
    const before = receiver.received.length;
    await worker().tick();
    expect(receiver.received.slice(before).map((r) => r.payload.type)).toEqual(['forecast.ready']);
    const log = await admin.get(path);
    expect(log.body).toContain('data-testid="delivery-log"');
    expect(log.body).toMatch(/ · 200 · \d+ ms/);
    const [message] = messagesIn(log.body);
    const replayed = await admin.submit(`${path}/messages/${message}/replay`, {});
    expect(replayed.posted).toBe(303);
    await worker().tick();
    expect(receiver.received.at(-1)?.headers['webhook-id']).toBe(message);

    // the log a page at a time (50): the older messages behind a link that keeps the state filter
    for (let i = 0; i < 51; i++) await sendTestMessage(hooks(), endpoint.id);
    const first = await admin.get(`${path}?state=pending`);
    expect(messagesIn(first.body)).toHaveLength(50);
    const older = /href="([^"]+)#log">Older messages/.exec(first.body)?.[1]?.replaceAll('&amp;', '&') ?? '';
    expect(older).toMatch(new RegExp(`^${path}\\?state=pending&cursor=msg_`));
    const rest = await admin.get(older);
    expect(messagesIn(rest.body)).toHaveLength(1);
    expect(rest.body).not.toContain('Older messages');
    expect(messagesIn((await admin.get(path)).body)).toHaveLength(50);

    // the endpoint under another application, or an unknown one: not found
    const other = await signUp(h, 'dev@hooks-other.test', 'Other');
    await other.get(`/apps/new?service=${h.serviceId}`);
    const otherApp = (
      await other.submit('/apps/new', { serviceId: h.serviceId, planId: h.plans.free, name: 'Other app' })
    ).location.slice('/apps/'.length);
    // filtered by account (the account column's link) and by API, as the API's list filters
    const byOwner = await admin.get(`/admin/webhooks/partners?accountId=${endpoint.accountId}`);
    expect(byOwner.body).toContain(`data-endpoint="${endpoint.id}"`);
    expect(byOwner.body).toContain('data-testid="account-filter"');
    expect(list.body).toContain(`href="/admin/webhooks/partners?accountId=${endpoint.accountId}"`);
    const otherAccount = (await getApplication(h.store.db, otherApp)).accountId;
    const byOther = await admin.get(`/admin/webhooks/partners?accountId=${otherAccount}`);
    expect(byOther.body).toContain('data-testid="no-endpoints"');
    expect(byOther.body).not.toContain(`data-endpoint="${endpoint.id}"`);
    const byService = await admin.get(`/admin/webhooks/partners?serviceId=${h.serviceId}`);
    expect(byService.body).toContain(`data-endpoint="${endpoint.id}"`);
    const byNone = await admin.get('/admin/webhooks/partners?serviceId=svc_none');
    expect(byNone.body).toContain('data-testid="no-endpoints"');
    // a filter that is not an id is no filter; an unknown account is not found
    const junk = await admin.get('/admin/webhooks/partners?serviceId=%3Cscript%3E');
    expect(junk.body).toContain(`data-endpoint="${endpoint.id}"`);
    expect((await admin.get('/admin/webhooks/partners?accountId=acc_nope')).statusCode).toBe(404);

    for (const url of [
      `/admin/webhooks/partners/${otherApp}/${endpoint.id}`,
      `/admin/webhooks/partners/${appId}/whe_nope`,
    ]) {
      expect((await admin.get(url)).statusCode, url).toBe(404);
      await admin.get(path);
      expect((await admin.post(`${url}/enabled`, { enabled: 'false' })).statusCode, url).toBe(404);
    }
    // the partner's own portal session reaches none of the provider's pages
    const reached = await owner.get(path);
    expect(reached.statusCode).toBe(303);
    expect(String(reached.headers.location)).toMatch(/^\/admin\/login/);
  });
});
