/**
 * Delivery (issue 9): real receivers on 127.0.0.1 verify every message with the `standardwebhooks` package; the
 * retry schedule is driven by the worker's clock, never by sleeping.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { retrySchedule } from '../../src/webhooks/index.js';
import { dialects } from '../support/stores.js';
import { type HooksHarness, type Receiver, startHooks, startReceiver, verifyWith } from './harness.js';

describe.each(dialects)('webhook delivery (%s)', (dialect) => {
  let h: HooksHarness;
  const receivers: Receiver[] = [];
  beforeAll(async () => {
    h = await startHooks(dialect);
  });
  afterAll(() => h.close());
  afterEach(async () => {
    // each test's endpoints go, so the next test's worker delivers only its own
    const list = (await h.call('GET', '/webhooks/endpoints?limit=200')).json().data as { id: string }[];
    for (const e of list) await h.call('DELETE', `/webhooks/endpoints/${e.id}`);
    for (const r of receivers.splice(0)) await r.close();
  });

  async function endpointFor(eventTypes: string[]) {
    const receiver = await startReceiver(h.clock);
    receivers.push(receiver);
    const res = await h.call('POST', '/webhooks/endpoints', { url: receiver.url, eventTypes });
    expect(res.statusCode, res.body).toBe(201);
    const endpoint = res.json() as { id: string; secret: string };
    receiver.secrets.push(endpoint.secret);
    return { receiver, endpoint };
  }

  /** An event of a type no other test subscribes to, through the management API. */
  async function someEvent(name = 'Someone') {
    const res = await h.call('POST', '/admin-users', {
      email: `${name.toLowerCase()}${Math.random().toString(36).slice(2)}@ops.test`,
      name,
      password: 'long enough password',
    });
    expect(res.statusCode, res.body).toBe(201);
  }

  it('an account created through the management API reaches the CRM as account.created, custom fields and all', async () => {
    const { receiver } = await endpointFor(['account.created']);
    expect(
      (
        await h.call('POST', '/custom-fields', {
          target: 'account',
          name: 'lead_source',
          label: 'Lead source',
        })
      ).statusCode,
    ).toBe(201);
    const account = (
      await h.call('POST', '/accounts', { name: 'Boutir', customFields: { lead_source: 'expo' } })
    ).json();
    const worker = h.worker();
    const round = await worker.tick();
    expect(round.attempts).toBe(1);
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    expect(got.payload.type).toBe('account.created');
    expect(got.payload.data).toMatchObject({
      accountId: account.id,
      account: { id: account.id, name: 'Boutir', customFields: { lead_source: 'expo' } },
    });
    expect(got.headers['webhook-id']).toMatch(/^msg_/);
    expect(got.headers['content-type']).toBe('application/json');
    // nothing more to do: the other events are not subscribed, the message succeeded
    expect((await h.call('GET', '/webhooks/queue')).json()).toEqual({
      pending: 0,
      undispatched: 0,
      oldestDueAt: null,
      oldestDueAgeSeconds: null,
    });
    expect((await worker.tick()).attempts).toBe(0);
  });

  it('a receiver answering 500 three times, then 200, gets the message on the fourth attempt, on schedule', async () => {
    const { receiver, endpoint } = await endpointFor(['admin_user.created']);
    let calls = 0;
    receiver.respond = () => ({ status: ++calls <= 3 ? 500 : 200, body: calls <= 3 ? 'boom' : 'thanks' });
    await someEvent();
    const worker = h.worker();
    expect((await worker.tick()).attempts).toBe(1);
    // each retry is due exactly at its step (jitter 0 here), not a millisecond before
    for (const step of [1, 2, 3]) {
      h.clock.advance(retrySchedule[step]! - 1);
      expect((await worker.tick()).attempts, `before step ${step}`).toBe(0);
      h.clock.advance(1);
      expect((await worker.tick()).attempts, `at step ${step}`).toBe(1);
    }
    expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual(
      Array(4).fill(receiver.received[0]!.headers['webhook-id']),
    );
    h.clock.advance(retrySchedule[4]!);
    expect((await worker.tick()).attempts).toBe(0);
    const log = (await h.call('GET', `/webhooks/endpoints/${endpoint.id}/messages`)).json().data;
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ state: 'succeeded', attempts: 4, lastStatus: 200 });
    expect(log[0].attemptLog.map((a: { status: number }) => a.status)).toEqual([500, 500, 500, 200]);
    expect(log[0].attemptLog[0]).toMatchObject({ outcome: 'failed', responseExcerpt: 'boom' });
    expect(log[0].attemptLog[3]).toMatchObject({ outcome: 'succeeded', responseExcerpt: 'thanks' });
  });

  it('honours Retry-After on 429: not called again before 2 s, called at 2 s', async () => {
    const { receiver } = await endpointFor(['admin_user.created']);
    let calls = 0;
    receiver.respond = () =>
      ++calls === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 204 };
    await someEvent();
    expect((await h.call('GET', '/webhooks/queue')).json().undispatched).toBeGreaterThan(0);
    const worker = h.worker();
    expect((await worker.tick()).attempts).toBe(1);
    const first = receiver.received[0]!.at;
    h.clock.advance(1500);
    const queue = (await h.call('GET', '/webhooks/queue')).json();
    expect(queue).toMatchObject({ undispatched: 0, pending: 1, oldestDueAt: null });
    h.clock.advance(499);
    expect((await worker.tick()).attempts).toBe(0);
    h.clock.advance(1);
    expect((await worker.tick()).attempts).toBe(1);
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[1]!.at - first).toBe(2000);
  });

  it('gives up after the last step of the schedule, and "recover" sends the failed messages again', async () => {
    const { receiver, endpoint } = await endpointFor(['admin_user.created']);
    let failing = true;
    receiver.respond = () => ({ status: failing ? 503 : 200 });
    await someEvent();
    const worker = h.worker();
    const since = new Date(h.clock.now()).toISOString();
    for (const step of retrySchedule) {
      h.clock.advance(step);
      expect((await worker.tick()).attempts).toBe(1);
    }
    h.clock.advance(retrySchedule[retrySchedule.length - 1]! * 2);
    expect((await worker.tick()).attempts).toBe(0);
    expect(receiver.received).toHaveLength(retrySchedule.length);
    const failed = (await h.call('GET', `/webhooks/endpoints/${endpoint.id}/messages?state=failed`)).json()
      .data;
    expect(failed).toHaveLength(1);
    failing = false;
    const recovered = await h.call('POST', `/webhooks/endpoints/${endpoint.id}/recover`, { since });
    expect(recovered.json()).toEqual({ recovered: 1 });
    expect((await worker.tick()).attempts).toBe(1);
    const after = (await h.call('GET', `/webhooks/endpoints/${endpoint.id}/messages`)).json().data[0];
    expect(after.state).toBe('succeeded');
    // replay sends it once more, with the same webhook-id
    const replay = await h.call('POST', `/webhooks/endpoints/${endpoint.id}/messages/${after.id}/replay`);
    expect(replay.statusCode).toBe(202);
    expect((await worker.tick()).attempts).toBe(1);
    expect(receiver.received.at(-1)!.headers['webhook-id']).toBe(after.id);
  });

  it('410 Gone disables the endpoint and records webhook_endpoint.disabled', async () => {
    const { receiver, endpoint } = await endpointFor(['admin_user.created']);
    receiver.respond = () => ({ status: 410 });
    await someEvent();
    await someEvent('Other');
    const worker = h.worker({ deliveryBatch: 1 });
    await worker.tick();
    expect(receiver.received).toHaveLength(1);
    const shown = (await h.call('GET', `/webhooks/endpoints/${endpoint.id}`)).json();
    expect(shown).toMatchObject({ enabled: false, disabledReason: 'gone' });
    h.clock.advance(retrySchedule[1]! * 10);
    await worker.tick();
    await worker.tick();
    expect(receiver.received).toHaveLength(1);
    const events = await h.store.db
      .selectFrom('events')
      .select(['type', 'entity_id'])
      .where('type', '=', 'webhook_endpoint.disabled')
      .execute();
    expect(events.map((e) => e.entity_id)).toContain(endpoint.id);
    // enabled again by hand, the message kept for it is delivered
    receiver.respond = () => ({ status: 200 });
    await h.call('PATCH', `/webhooks/endpoints/${endpoint.id}`, { enabled: true });
    await worker.tick();
    expect(receiver.received).toHaveLength(2);
  });

  it('after a rotation, both the old and the new secret verify every delivery during the grace period', async () => {
    const { receiver, endpoint } = await endpointFor(['admin_user.created']);
    const rotated = (await h.call('POST', `/webhooks/endpoints/${endpoint.id}/rotate-secret`, {})).json();
    receiver.secrets.push(rotated.secret); // the receiver checks each secret independently
    await someEvent();
    const worker = h.worker();
    await worker.tick();
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.payload.type).toBe('admin_user.created');
    expect(String(receiver.received[0]!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    // after the grace period, only the new secret signs
    h.clock.advance(86_400_000 + 1000);
    receiver.secrets.splice(0, 1);
    await someEvent();
    await worker.tick();
    const last = receiver.received.at(-1)!;
    expect(String(last.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(() => verifyWith(endpoint.secret, last.body, last.headers, h.clock.now())).toThrow();
  });

  it('sends a test message to one endpoint only, signed and logged', async () => {
    const { receiver, endpoint } = await endpointFor(['account.deleted']);
    const other = await endpointFor(['*']);
    const res = await h.call('POST', `/webhooks/endpoints/${endpoint.id}/test`);
    expect(res.statusCode).toBe(202);
    await h.worker().tick();
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.payload).toMatchObject({
      type: 'webhook_endpoint.test',
      data: { endpointId: endpoint.id },
    });
    expect(receiver.received[0]!.headers['webhook-id']).toBe(res.json().messageId);
    expect(other.receiver.received.filter((r) => r.payload.type === 'webhook_endpoint.test')).toHaveLength(0);
    const log = (await h.call('GET', `/webhooks/endpoints/${endpoint.id}/messages`)).json().data;
    expect(log[0]).toMatchObject({ eventType: 'webhook_endpoint.test', state: 'succeeded' });
  });

  it('follows no redirect and keeps at most 1 KiB of an answer', async () => {
    const { receiver, endpoint } = await endpointFor(['admin_user.created']);
    let calls = 0;
    receiver.respond = () =>
      ++calls === 1
        ? { status: 302, headers: { location: 'http://169.254.169.254/' } }
        : { status: 500, body: 'x'.repeat(5000) };
    await someEvent();
    const worker = h.worker();
    await worker.tick();
    h.clock.advance(retrySchedule[1]!);
    await worker.tick();
    expect(receiver.received).toHaveLength(2);
    const log = (await h.call('GET', `/webhooks/endpoints/${endpoint.id}/messages`)).json().data[0];
    expect(log.attemptLog[0]).toMatchObject({ status: null, outcome: 'failed' });
    expect(log.attemptLog[0].error).toMatch(/^outbound_redirect_refused/);
    expect(log.attemptLog[1].responseExcerpt).toHaveLength(1024);
  });
});
