/**
 * Delivery a small partner can bear (issue 9, seed 003), with real receivers and the worker's clock driven by
 * the test (never by sleeping): an endpoint that is down for a while is paused, then gets every message at its
 * rate once it is back, while a healthy endpoint beside it is not delayed; an endpoint that has only failed for
 * days is disabled, with an event and a mail to its owner. The rate is kept in the worker's memory, and in real
 * Redis shared by two workers.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listMail } from '../../src/mail/index.js';
import { createMailer } from '../../src/mail/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createOutboundClient } from '../../src/outbound/index.js';
import type { DialectName } from '../../src/store/index.js';
import { type WebhookWorker, createWebhookWorker } from '../../src/webhooks/index.js';
import {
  type EndpointThrottle,
  memoryThrottle,
  redisThrottle,
} from '../../src/webhooks/endpoint-throttle.js';
import { dialects } from '../support/stores.js';
import { type HooksHarness, type Receiver, keySecret, startHooks, startReceiver } from './harness.js';

const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
afterAll(() => redis.disconnect());

type ThrottleKind = 'memory' | 'redis';
const cases: [DialectName, ThrottleKind][] = [
  ...dialects.map((d): [DialectName, ThrottleKind] => [d, 'memory']),
  ['postgres', 'redis'],
];

describe.each(cases)('endpoint health (%s, throttle in %s)', (dialect, kind) => {
  let h: HooksHarness;
  const outbound = createOutboundClient({ allowHosts: ['127.0.0.1'], timeoutMs: 5000 });
  const receivers: Receiver[] = [];
  const workers: WebhookWorker[] = [];
  beforeAll(async () => {
    h = await startHooks(dialect);
  });
  afterAll(async () => {
    await outbound.close();
    await h.close();
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
    const list = (await h.call('GET', '/webhooks/endpoints?limit=200')).json().data as { id: string }[];
    for (const e of list) await h.call('DELETE', `/webhooks/endpoints/${e.id}`);
    for (const r of receivers.splice(0)) await r.close();
  });

  /** Workers sharing one throttle's state: one in memory, or two on one Redis. */
  function makeWorkers(options: { disableAfterMs?: number } = {}): WebhookWorker[] {
    const prefix = `test:health:${randomBytes(6).toString('hex')}:`;
    const throttles: EndpointThrottle[] =
      kind === 'memory'
        ? [memoryThrottle()]
        : [redisThrottle(redis, {}, prefix), redisThrottle(redis, {}, prefix)];
    const mailer = createMailer({
      db: h.store.db,
      clock: h.clock,
      smtpUrl: '',
      from: 'webhooks@trellis.test',
    });
    const made = throttles.map((throttle) =>
      createWebhookWorker({
        db: h.store.db,
        clock: h.clock,
        sealer: createSealer(keySecret),
        sender: outbound,
        throttle,
        mailer,
        options: { random: () => 0, deliveryBatch: 16, ...options },
      }),
    );
    workers.push(...made);
    return made;
  }

  async function endpointFor(body: Record<string, unknown>) {
    const receiver = await startReceiver(h.clock);
    receivers.push(receiver);
    const res = await h.call('POST', '/webhooks/endpoints', { url: receiver.url, ...body });
    expect(res.statusCode, res.body).toBe(201);
    const endpoint = res.json() as { id: string; secret: string; ratePerSecond: number | null };
    receiver.secrets.push(endpoint.secret);
    return { receiver, endpoint };
  }

  async function userCreated(n: number) {
    for (let i = 0; i < n; i++) {
      const res = await h.call('POST', '/admin-users', {
        email: `u${randomBytes(5).toString('hex')}@ops.test`,
        name: 'Someone',
        password: 'long enough password',
      });
      expect(res.statusCode, res.body).toBe(201);
    }
  }

  async function pendingOf(endpointId: string) {
    return h.store.db
      .selectFrom('webhook_messages' as never)
      .select(['next_attempt_at as due', 'state'] as never[])
      .where('endpoint_id' as never, '=', endpointId as never)
      .where('state' as never, '=', 'pending' as never)
      .execute() as Promise<{ due: string; state: string }[]>;
  }

  /** One round of every worker at once; then the clock moves to the next due message (or by `stepMs`). */
  async function round(ws: WebhookWorker[], stepMs: number): Promise<number> {
    const results = await Promise.all(ws.map((w) => w.tick()));
    const attempts = results.reduce((n, r) => n + r.attempts, 0);
    if (attempts > 0) h.clock.advance(stepMs);
    else {
      const next = await h.store.db
        .selectFrom('webhook_messages' as never)
        .select((eb) => eb.fn.min('next_attempt_at' as never).as('due'))
        .where('state' as never, '=', 'pending' as never)
        .executeTakeFirst();
      const due = (next as { due: string | null } | undefined)?.due;
      const jump = due ? Date.parse(due) - h.clock.now() : stepMs;
      h.clock.advance(Math.max(stepMs, Math.min(jump, 600_000)));
    }
    return attempts;
  }

  it('a receiver down for a while is paused, then gets every message at its rate; the healthy one is not delayed', async () => {
    const rate = 4;
    const slow = await endpointFor({ eventTypes: ['admin_user.created'], ratePerSecond: rate });
    expect(slow.endpoint.ratePerSecond).toBe(rate);
    const healthy = await endpointFor({ eventTypes: ['admin_user.created'] });
    const t0 = h.clock.now();
    let down = true;
    slow.receiver.respond = () => (down ? { status: 503, body: 'down for maintenance' } : { status: 200 });
    const ws = makeWorkers();

    await userCreated(20);
    // the first rounds: the healthy endpoint gets all 20 at once; the slow one at most its rate, failing
    for (let i = 0; i < 4; i++) await round(ws, 0);
    expect(healthy.receiver.received).toHaveLength(20);
    expect(healthy.receiver.received.every((r) => r.at === t0)).toBe(true);
    expect(slow.receiver.received.length).toBeLessThanOrEqual(rate);

    // failing: slowed, then paused; its messages wait in the database with a later due time
    while (h.clock.now() < t0 + 60_000) await round(ws, 50);
    const paused = await pendingOf(slow.endpoint.id);
    expect(paused).toHaveLength(20);
    // the queue keeps flowing: new events reach the healthy endpoint without the clock moving (a round whose claim
    // the slow endpoint's backlog filled gives that backlog back, and the next round takes the others)
    const before = slow.receiver.received.length;
    await userCreated(5);
    const at = h.clock.now();
    for (let i = 0; i < 3 && healthy.receiver.received.length < 25; i++)
      await Promise.all(ws.map((w) => w.tick()));
    expect(healthy.receiver.received.filter((r) => r.at === at)).toHaveLength(5);
    expect(slow.receiver.received.length - before).toBeLessThanOrEqual(1);

    // back after two minutes: every message arrives, none lost, none faster than its rate
    while (h.clock.now() < t0 + 120_000) await round(ws, 50);
    // paused, not hammered: retried on the schedule alone, its 25 messages would have been sent 50 times by now
    expect(slow.receiver.received.length).toBeLessThanOrEqual(12);
    down = false;
    const ok = () => slow.receiver.received.filter((r) => r.payload.type === 'admin_user.created' && !down);
    for (let i = 0; i < 3000 && (await pendingOf(slow.endpoint.id)).length > 0; i++) await round(ws, 50);
    expect(await pendingOf(slow.endpoint.id)).toEqual([]);
    const ids = new Set(ok().map((r) => String(r.headers['webhook-id'])));
    expect(ids.size).toBe(25);
    const times = slow.receiver.received.map((r) => r.at).sort((a, b) => a - b);
    for (let i = 0; i + rate < times.length; i++) {
      expect(times[i + rate]! - times[i]!, `requests ${i} and ${i + rate}`).toBeGreaterThanOrEqual(1000);
    }
    // the healthy endpoint got each of its 25 once
    expect(new Set(healthy.receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(25);
    expect(healthy.receiver.received).toHaveLength(25);
  }, 120_000);

  it('an endpoint that only failed for five days is disabled, with an event and a mail to the provider admins', async () => {
    const failing = await endpointFor({ eventTypes: ['admin_user.created'] });
    failing.receiver.respond = () => ({ status: 500 });
    // one that fails for four days, succeeds once, then fails again: never five days of only failures
    const flaky = await endpointFor({ eventTypes: ['admin_user.created'] });
    let flakyUp = false;
    flaky.receiver.respond = () => ({ status: flakyUp ? 200 : 500 });
    const [w] = makeWorkers({ disableAfterMs: 5 * 86_400_000 });
    const t0 = h.clock.now();
    await userCreated(1);
    await w!.tick();
    const view = async (id: string) => (await h.call('GET', `/webhooks/endpoints/${id}`)).json();
    expect((await view(failing.endpoint.id)).failingSince).toBe(new Date(t0).toISOString());

    // a test message a day keeps the endpoints tried (past the retry schedule and any pause)
    async function day(n: number) {
      h.clock.set(t0 + n * 86_400_000);
      for (const e of [failing, flaky]) {
        const res = await h.call('POST', `/webhooks/endpoints/${e.endpoint.id}/test`);
        expect(res.statusCode, res.body).toBe(202);
      }
      await w!.tick();
    }
    for (const n of [1, 2, 3, 4]) await day(n);
    expect((await view(failing.endpoint.id)).enabled).toBe(true);
    flakyUp = true;
    await day(4.5);
    expect((await view(flaky.endpoint.id)).failingSince).toBeNull();
    flakyUp = false;
    await day(5);
    const disabled = await view(failing.endpoint.id);
    expect(disabled).toMatchObject({ enabled: false, disabledReason: 'failing' });
    expect((await view(flaky.endpoint.id)).enabled).toBe(true);

    const events = await h.store.db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('entity_id', '=', failing.endpoint.id)
      .where('type', '=', 'webhook_endpoint.disabled')
      .execute();
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.payload as string)).toMatchObject({
      endpointId: failing.endpoint.id,
      reason: 'failing',
    });
    const admins = await h.store.db.selectFrom('admin_users').select('email').execute();
    expect(admins.length).toBeGreaterThan(0);
    for (const a of admins) {
      const mails = await listMail(h.store.db, { to: a.email });
      const mail = mails.find((m) => m.subject.includes(failing.receiver.url));
      expect(mail, a.email).toBeDefined();
      expect(mail!.text).toContain('5 days');
    }
    // no more attempts to a disabled endpoint; enabling it again starts the count afresh
    const tried = failing.receiver.received.length;
    await day(6);
    expect(failing.receiver.received.length).toBe(tried);
    const enabled = await h.call('PATCH', `/webhooks/endpoints/${failing.endpoint.id}`, { enabled: true });
    expect(enabled.json()).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
  }, 120_000);
});
