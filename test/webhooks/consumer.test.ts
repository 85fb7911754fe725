/**
 * Consumer webhooks (issue 9, seed 000): the provider declares `paymentrequest.paid` for its service, a partner
 * registers an endpoint for its application, the provider publishes the event and the partner's real receiver
 * gets it, verified with the `standardwebhooks` package. Idempotency, payload validation naming the field,
 * isolation between accounts, and bad input on every route, on SQLite and PostgreSQL.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../src/access/index.js';
import { checkEventPayload, systemActor } from '../../src/events/index.js';
import { dialects } from '../support/stores.js';
import { type HooksHarness, type Receiver, startHooks, startReceiver } from './harness.js';

const paidSchema = {
  type: 'object',
  required: ['paymentRequestId', 'amount', 'currency'],
  properties: {
    paymentRequestId: { type: 'string' },
    amount: { type: 'integer', minimum: 1 },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    paidAt: { type: 'string', format: 'date-time' },
  },
  additionalProperties: false,
};
const paidExample = {
  paymentRequestId: 'pr_123',
  amount: 1250,
  currency: 'HKD',
  paidAt: '2026-11-28T10:00:00Z',
};

describe.each(dialects)('consumer webhooks (%s)', (dialect) => {
  let h: HooksHarness;
  let serviceId: string;
  let otherServiceId: string;
  let shop: { id: string; accountId: string };
  let shop2: { id: string; accountId: string };
  let rival: { id: string; accountId: string };
  const receivers: Receiver[] = [];
  let token = '';
  const authOf = (_h: HooksHarness) => ({ authorization: `Bearer ${token}` });

  async function ok(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) {
    const res = await h.call(method, url, body);
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
    return res.statusCode === 204 ? {} : res.json();
  }

  async function serviceWithPlan(systemName: string): Promise<string> {
    const service = await ok('POST', '/services', {
      name: systemName,
      systemName,
      upstreamProduction: 'https://pay.test',
    });
    const plan = await ok('POST', `/services/${service.id}/plans`, { name: 'Free', systemName: 'free' });
    await ok('POST', `/plans/${plan.id}/make-default`);
    return service.id;
  }

  async function appOf(accountId: string, sid: string, name: string) {
    return (await ok('POST', '/applications', { accountId, serviceId: sid, name })) as {
      id: string;
      accountId: string;
    };
  }

  async function endpointFor(appId: string, eventTypes: string[]) {
    const receiver = await startReceiver(h.clock);
    receivers.push(receiver);
    const res = await h.call('POST', `/applications/${appId}/webhook-endpoints`, {
      url: receiver.url,
      eventTypes,
    });
    expect(res.statusCode, res.body).toBe(201);
    const endpoint = res.json() as { id: string; secret: string };
    receiver.secrets.push(endpoint.secret);
    return { receiver, endpoint };
  }

  function publish(body: unknown, key?: string) {
    return h.app.inject({
      method: 'POST',
      url: '/admin/api/events',
      headers: {
        ...authOf(h),
        'content-type': 'application/json',
        ...(key ? { 'idempotency-key': key } : {}),
      },
      payload: JSON.stringify(body),
    });
  }

  beforeAll(async () => {
    h = await startHooks(dialect);
    token = (
      await createAdminToken({ db: h.store.db, clock: h.clock }, systemActor, {
        name: 'publisher',
        scope: 'read_write',
      })
    ).token;
    serviceId = await serviceWithPlan('payme');
    otherServiceId = await serviceWithPlan('other');
    const posify = await ok('POST', '/accounts', { name: 'Posify' });
    const rivalAccount = await ok('POST', '/accounts', { name: 'Rival' });
    shop = await appOf(posify.id, serviceId, 'Shop');
    shop2 = await appOf(posify.id, serviceId, 'Second shop');
    rival = await appOf(rivalAccount.id, serviceId, 'Rival shop');
    await ok('POST', `/services/${serviceId}/event-types`, {
      name: 'paymentrequest.paid',
      description: 'A payment request was paid.',
      schema: paidSchema,
      example: paidExample,
    });
  });
  afterEach(async () => {
    // each test's endpoints go, so the next test counts only its own
    const list = (await h.call('GET', '/webhooks/consumer-endpoints?limit=200')).json().data as {
      id: string;
      applicationId: string;
    }[];
    for (const e of list)
      await h.call('DELETE', `/applications/${e.applicationId}/webhook-endpoints/${e.id}`);
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await h.close();
  });

  it('declares event types: the schema is checked as a schema, the example against it', async () => {
    const list = await ok('GET', `/services/${serviceId}/event-types`);
    expect(list.data).toEqual([
      expect.objectContaining({
        serviceId,
        name: 'paymentrequest.paid',
        schema: paidSchema,
        example: paidExample,
      }),
    ]);
    const notASchema = await h.call('POST', `/services/${serviceId}/event-types`, {
      name: 'paymentrequest.refunded',
      description: 'x',
      schema: { type: 'objekt' },
      example: {},
    });
    expect(notASchema.statusCode).toBe(400);
    expect(notASchema.json().error.code).toBe('validation_failed');
    expect(notASchema.json().error.details[0].field).toMatch(/^schema/);
    const badExample = await h.call('POST', `/services/${serviceId}/event-types`, {
      name: 'paymentrequest.refunded',
      description: 'x',
      schema: paidSchema,
      example: { ...paidExample, amount: 'ten' },
    });
    expect(badExample.statusCode).toBe(400);
    expect(badExample.json().error.details).toEqual([
      { field: 'example/amount', message: 'must be integer' },
    ]);
    const dup = await h.call('POST', `/services/${serviceId}/event-types`, {
      name: 'paymentrequest.paid',
      description: 'again',
      schema: paidSchema,
      example: paidExample,
    });
    expect(dup.statusCode).toBe(409);
    const own = await h.call('POST', `/services/${serviceId}/event-types`, {
      name: 'account.created',
      description: 'x',
      schema: {},
      example: {},
    });
    expect(own.statusCode).toBe(400);
    expect(own.json().error.details[0].field).toBe('name');
    // declare, change, read, delete
    await ok('POST', `/services/${serviceId}/event-types`, {
      name: 'paymentrequest.refunded',
      description: 'Refunded.',
      schema: { type: 'object' },
      example: {},
    });
    const changed = await ok('PATCH', `/services/${serviceId}/event-types/paymentrequest.refunded`, {
      description: 'A payment was refunded.',
    });
    expect(changed.description).toBe('A payment was refunded.');
    const schemaBreaksExample = await h.call(
      'PATCH',
      `/services/${serviceId}/event-types/paymentrequest.refunded`,
      { schema: { type: 'object', required: ['amount'] } },
    );
    expect(schemaBreaksExample.statusCode).toBe(400);
    expect(schemaBreaksExample.json().error.details[0].field).toBe('example/amount');
    await ok('DELETE', `/services/${serviceId}/event-types/paymentrequest.refunded`);
    // each change is audited with a payload of its declared shape
    const events = await h.store.db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('type', 'like', 'service_event_type.%')
      .execute();
    expect(events.map((e) => e.type).sort()).toEqual([
      'service_event_type.created',
      'service_event_type.created',
      'service_event_type.deleted',
      'service_event_type.updated',
    ]);
    for (const e of events) expect(checkEventPayload(e.type, JSON.parse(e.payload))).toEqual([]);
    expect(
      (await h.call('GET', `/services/${serviceId}/event-types/paymentrequest.refunded`)).statusCode,
    ).toBe(404);
  });

  it("seed 000: the provider publishes paymentrequest.paid for an application; the partner's endpoint gets it, verified, once per idempotency key", async () => {
    const { receiver, endpoint } = await endpointFor(shop.id, ['paymentrequest.paid']);
    const payload = { paymentRequestId: 'pr_1', amount: 4200, currency: 'HKD' };
    const first = await h.call('POST', '/events', {
      type: 'paymentrequest.paid',
      applicationId: shop.id,
      payload,
    });
    expect(first.statusCode, first.body).toBe(201);
    const worker = h.worker();
    await worker.tick();
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    expect(got.payload).toMatchObject({
      type: 'paymentrequest.paid',
      eventId: first.json().id,
      data: payload,
    });

    // the same key twice: one delivery; the second answer is the first result
    const key = `pay-${dialect}-pr_2`;
    const body = {
      type: 'paymentrequest.paid',
      applicationId: shop.id,
      payload: { ...payload, paymentRequestId: 'pr_2' },
    };
    const a = await h.app.inject({
      method: 'POST',
      url: '/admin/api/events',
      headers: { ...authOf(h), 'content-type': 'application/json', 'idempotency-key': key },
      payload: JSON.stringify(body),
    });
    expect(a.statusCode, a.body).toBe(201);
    expect(a.json()).toMatchObject({
      messages: 1,
      applicationId: shop.id,
      accountId: shop.accountId,
      serviceId,
    });
    const b = await h.app.inject({
      method: 'POST',
      url: '/admin/api/events',
      // the same request with its keys in another order is the same request
      headers: { ...authOf(h), 'content-type': 'application/json', 'idempotency-key': key },
      payload: JSON.stringify({ payload: body.payload, applicationId: shop.id, type: body.type }),
    });
    expect(b.statusCode).toBe(200);
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect(b.json()).toEqual(a.json());
    await worker.tick();
    await worker.tick();
    expect(receiver.received.map((r) => r.payload.data.paymentRequestId)).toEqual(['pr_1', 'pr_2']);
    const reused = await h.app.inject({
      method: 'POST',
      url: '/admin/api/events',
      headers: { ...authOf(h), 'content-type': 'application/json', 'idempotency-key': key },
      payload: JSON.stringify({ ...body, payload: { ...body.payload, amount: 1 } }),
    });
    expect(reused.statusCode).toBe(409);
    expect(reused.json().error.code).toBe('idempotency_key_reused');

    // the delivery log, replay and a test message, through the application's routes
    const log = await ok('GET', `/applications/${shop.id}/webhook-endpoints/${endpoint.id}/messages`);
    expect(log.data).toHaveLength(2);
    expect(log.data[0]).toMatchObject({ state: 'succeeded', attempts: 1, eventType: 'paymentrequest.paid' });
    expect(log.data[0].attemptLog[0]).toMatchObject({ status: 200, outcome: 'succeeded' });
    const replayed = await h.call(
      'POST',
      `/applications/${shop.id}/webhook-endpoints/${endpoint.id}/messages/${log.data[0].id}/replay`,
    );
    expect(replayed.statusCode).toBe(202);
    const test = await h.call('POST', `/applications/${shop.id}/webhook-endpoints/${endpoint.id}/test`);
    expect(test.statusCode).toBe(202);
    await worker.tick();
    expect(
      receiver.received
        .slice(2)
        .map((r) => r.payload.type)
        .sort(),
    ).toEqual(['paymentrequest.paid', 'webhook_endpoint.test']);
    const again = receiver.received.slice(2).find((r) => r.payload.type === 'paymentrequest.paid');
    expect(again?.headers['webhook-id']).toBe(log.data[0].id);

    // rotation: both secrets verify during the grace period
    const rotated = await ok(
      'POST',
      `/applications/${shop.id}/webhook-endpoints/${endpoint.id}/rotate-secret`,
      {},
    );
    receiver.secrets.splice(0, receiver.secrets.length, rotated.secret);
    await h.call('POST', '/events', { type: 'paymentrequest.paid', applicationId: shop.id, payload });
    await worker.tick();
    expect(receiver.received.at(-1)!.payload.type).toBe('paymentrequest.paid');
    expect(String(receiver.received.at(-1)!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    await ok('DELETE', `/applications/${shop.id}/webhook-endpoints/${endpoint.id}`);
  });

  it('five publishes with one idempotency key at the same moment make one event and one delivery', async () => {
    const { receiver } = await endpointFor(shop.id, ['paymentrequest.paid']);
    const body = JSON.stringify({
      type: 'paymentrequest.paid',
      applicationId: shop.id,
      payload: { paymentRequestId: 'pr_race', amount: 7, currency: 'EUR' },
    });
    const key = `race-${dialect}`;
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        h.app.inject({
          method: 'POST',
          url: '/admin/api/events',
          headers: { ...authOf(h), 'content-type': 'application/json', 'idempotency-key': key },
          payload: body,
        }),
      ),
    );
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.json().id)).size).toBe(1);
    const worker = h.worker();
    await worker.tick();
    await worker.tick();
    expect(receiver.received.map((r) => r.payload.data.paymentRequestId)).toEqual(['pr_race']);
    const rows = await h.store.db
      .withTables<{ published_events: { idempotency_key: string | null } }>()
      .selectFrom('published_events')
      .select('idempotency_key')
      .where('idempotency_key', '=', key)
      .execute();
    expect(rows).toHaveLength(1);
  });

  it('a wrong payload is 422 naming the field; nothing is delivered', async () => {
    const { receiver } = await endpointFor(shop.id, ['*']);
    const wrong = await h.call('POST', '/events', {
      type: 'paymentrequest.paid',
      applicationId: shop.id,
      payload: { paymentRequestId: 'pr_9', amount: -5, currency: 'hkd', tip: 1 },
    });
    expect(wrong.statusCode).toBe(422);
    const error = wrong.json().error;
    expect(error.code).toBe('payload_invalid');
    const fields = (error.details as { field: string }[]).map((d) => d.field).sort();
    expect(fields).toEqual(['payload', 'payload/amount', 'payload/currency']);
    expect(error.message).toContain('payload/amount');
    const missing = await h.call('POST', '/events', {
      type: 'paymentrequest.paid',
      applicationId: shop.id,
      payload: { paymentRequestId: 'pr_9', amount: 5 },
    });
    expect(missing.statusCode).toBe(422);
    expect(missing.json().error.details).toEqual([
      { field: 'payload/currency', message: "must have required property 'currency'" },
    ]);
    // Trellis's own events never reach a partner's endpoint, `*` or not
    await ok('POST', '/accounts', { name: 'Noise' });
    await h.worker().tick();
    expect(receiver.received).toHaveLength(0);
  });

  it("an account's event goes to every application of the account, never to another account's; the provider can disable an endpoint", async () => {
    const one = await endpointFor(shop.id, ['paymentrequest.paid']);
    const two = await endpointFor(shop2.id, ['paymentrequest.paid']);
    const other = await endpointFor(rival.id, ['paymentrequest.paid']);
    const payload = { paymentRequestId: 'pr_acc', amount: 1, currency: 'USD' };
    const res = await ok('POST', '/events', {
      type: 'paymentrequest.paid',
      accountId: shop.accountId,
      payload,
    });
    expect(res).toMatchObject({ messages: 2, applicationId: null, serviceId });
    const worker = h.worker();
    await worker.tick();
    const ofOne = one.receiver.received.filter((r) => r.payload.data.paymentRequestId === 'pr_acc');
    expect(ofOne).toHaveLength(1);
    expect(two.receiver.received).toHaveLength(1);
    expect(other.receiver.received).toHaveLength(0);

    // another account's application does not show, and cannot be reached through, this account's endpoint
    expect(
      (await h.call('GET', `/applications/${rival.id}/webhook-endpoints/${one.endpoint.id}`)).statusCode,
    ).toBe(404);
    expect(
      (
        await h.call('PATCH', `/applications/${rival.id}/webhook-endpoints/${one.endpoint.id}`, {
          enabled: false,
        })
      ).statusCode,
    ).toBe(404);
    expect(
      (await h.call('GET', `/applications/${rival.id}/webhook-endpoints/${one.endpoint.id}/messages`))
        .statusCode,
    ).toBe(404);
    const rivalList = await ok('GET', `/applications/${rival.id}/webhook-endpoints`);
    expect(rivalList.data.map((e: { id: string }) => e.id)).toEqual([other.endpoint.id]);

    // the provider sees all partners' endpoints and disables one
    const all = await ok('GET', `/webhooks/consumer-endpoints?accountId=${shop.accountId}`);
    const ids = all.data.map((e: { id: string }) => e.id);
    expect(ids).toEqual(expect.arrayContaining([one.endpoint.id, two.endpoint.id]));
    expect(ids).not.toContain(other.endpoint.id);
    await ok('PATCH', `/applications/${shop2.id}/webhook-endpoints/${two.endpoint.id}`, { enabled: false });
    const again = await ok('POST', '/events', {
      type: 'paymentrequest.paid',
      accountId: shop.accountId,
      payload: { ...payload, paymentRequestId: 'pr_acc2' },
    });
    expect(again.messages).toBe(1);
    await worker.tick();
    expect(two.receiver.received).toHaveLength(1);
    // provider endpoints' list does not mix in partners' endpoints
    const provider = await ok('GET', '/webhooks/endpoints?limit=200');
    expect(provider.data.map((e: { id: string }) => e.id)).not.toContain(one.endpoint.id);
  });

  it('bad input on every route: a 4xx with the stable error shape, never a 500', async () => {
    const cases: [string, string, unknown, number][] = [
      ['GET', '/services/svc_nope/event-types', undefined, 404],
      [
        'POST',
        '/services/svc_nope/event-types',
        { name: 'a.b', description: '', schema: {}, example: {} },
        404,
      ],
      [
        'POST',
        `/services/${serviceId}/event-types`,
        { name: 'NoDots', description: '', schema: {}, example: {} },
        400,
      ],
      [
        'POST',
        `/services/${serviceId}/event-types`,
        { name: 'a.b', description: '', schema: [], example: {} },
        400,
      ],
      [
        'POST',
        `/services/${serviceId}/event-types`,
        { name: 'a.b', description: '', schema: {}, example: {}, x: 1 },
        400,
      ],
      [
        'POST',
        `/services/${serviceId}/event-types`,
        { name: 'a.b', description: '', schema: { $ref: 'https://x.test/s.json' }, example: {} },
        400,
      ],
      ['PATCH', `/services/${serviceId}/event-types/none.here`, { description: 'x' }, 404],
      ['PATCH', `/services/${serviceId}/event-types/paymentrequest.paid`, { schema: 'x' }, 400],
      ['DELETE', `/services/${serviceId}/event-types/none.here`, undefined, 404],
      ['POST', '/events', { type: 'paymentrequest.paid', payload: paidExample }, 400],
      [
        'POST',
        '/events',
        {
          type: 'paymentrequest.paid',
          applicationId: shop.id,
          accountId: shop.accountId,
          payload: paidExample,
        },
        400,
      ],
      [
        'POST',
        '/events',
        { type: 'paymentrequest.paid', applicationId: 'app_nope', payload: paidExample },
        400,
      ],
      ['POST', '/events', { type: 'paymentrequest.paid', accountId: 'acc_nope', payload: paidExample }, 400],
      ['POST', '/events', { type: 'paymentrequest.never', applicationId: shop.id, payload: {} }, 400],
      [
        'POST',
        '/events',
        {
          type: 'paymentrequest.paid',
          serviceId: otherServiceId,
          applicationId: shop.id,
          payload: paidExample,
        },
        400,
      ],
      ['POST', '/events', { type: 'Bad Type', applicationId: shop.id, payload: {} }, 400],
      ['POST', '/events', 'not an object', 400],
      ['GET', '/applications/app_nope/webhook-endpoints', undefined, 404],
      [
        'POST',
        '/applications/app_nope/webhook-endpoints',
        { url: 'https://x.example.com/', eventTypes: ['*'] },
        404,
      ],
      [
        'POST',
        `/applications/${shop.id}/webhook-endpoints`,
        { url: 'https://x.example.com/', eventTypes: ['account.created'] },
        400,
      ],
      [
        'POST',
        `/applications/${shop.id}/webhook-endpoints`,
        { url: 'http://169.254.169.254/', eventTypes: ['*'] },
        422,
      ],
      [
        'POST',
        `/applications/${shop.id}/webhook-endpoints`,
        { url: 'ftp://x.example.com/', eventTypes: ['*'] },
        400,
      ],
      [
        'POST',
        `/applications/${shop.id}/webhook-endpoints`,
        { url: 'https://x.example.com/', eventTypes: [] },
        400,
      ],
      ['GET', `/applications/${shop.id}/webhook-endpoints/whe_nope`, undefined, 404],
      ['PATCH', `/applications/${shop.id}/webhook-endpoints/whe_nope`, { enabled: true }, 404],
      ['DELETE', `/applications/${shop.id}/webhook-endpoints/whe_nope`, undefined, 404],
      ['POST', `/applications/${shop.id}/webhook-endpoints/whe_nope/rotate-secret`, {}, 404],
      ['POST', `/applications/${shop.id}/webhook-endpoints/whe_nope/test`, undefined, 404],
      ['GET', `/applications/${shop.id}/webhook-endpoints/whe_nope/messages`, undefined, 404],
      [
        'POST',
        `/applications/${shop.id}/webhook-endpoints/whe_nope/messages/msg_nope/replay`,
        undefined,
        404,
      ],
      ['GET', '/webhooks/consumer-endpoints?limit=0', undefined, 400],
    ];
    for (const [method, url, body, status] of cases) {
      const res = await h.call(method as 'GET', url, body);
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(status);
      expect(res.json().error.code, `${method} ${url}`).toEqual(expect.any(String));
    }
    // an endpoint of this application, with a message of another endpoint
    const { endpoint } = await endpointFor(shop.id, ['paymentrequest.paid']);
    const patchBad = await h.call('PATCH', `/applications/${shop.id}/webhook-endpoints/${endpoint.id}`, {
      eventTypes: ['paymentrequest.nope'],
    });
    expect(patchBad.statusCode).toBe(400);
    expect(patchBad.json().error.details[0].field).toBe('eventTypes[0]');
    const foreign = await h.call(
      'POST',
      `/applications/${shop.id}/webhook-endpoints/${endpoint.id}/messages/msg_01aaaaaaaaaaaaaaaaaaaaaaaa/replay`,
    );
    expect(foreign.statusCode).toBe(404);
    const tooLongKey = await publish(
      { type: 'paymentrequest.paid', applicationId: shop.id, payload: paidExample },
      'k'.repeat(300),
    );
    expect(tooLongKey.statusCode).toBe(400);
  });
});
