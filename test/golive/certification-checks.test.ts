/**
 * Issue 11: the checks that the scripted-client scenarios do not reach, judged on call logs written out here —
 * key rotation, Idempotency-Key on retried POSTs, and a 5xx storm — each with its numbers and deciding calls.
 */
import { describe, expect, it } from 'vitest';
import { type CertificationPlan, judgeChecks } from '../../src/golive/index.js';
import { defaultInsightSettings } from '../../src/insights/index.js';

type Call = Parameters<typeof judgeChecks>[0]['calls'][number];
const t0 = Date.UTC(2026, 5, 1, 12);
let id = 0;
function call(atMs: number, fields: Partial<Call> = {}): Call {
  return {
    id: ++id,
    run_id: 'crun_x',
    at: new Date(t0 + atMs).toISOString(),
    method: 'GET',
    path: '/shop/search',
    route: 'mr_search',
    status: 200,
    fault: '',
    retry_after_s: 0,
    idempotency_key: '',
    credential: 'key-a',
    latency_ms: 5,
    ...fields,
  };
}
const plan = (kind: CertificationPlan['checks'][number]['kind']): CertificationPlan => ({
  checks: [{ kind, required: true }],
  faults: {
    rateLimitEvery: 0,
    retryAfterSeconds: 2,
    serverErrorEvery: 7,
    unavailableEvery: 0,
    slowEvery: 0,
    slowMs: 0,
    expiredTokenEvery: 0,
  },
  manualItems: [],
  windowMinutes: 30,
  minCalls: 0,
  autoApprove: false,
});
const judge = (kind: CertificationPlan['checks'][number]['kind'], calls: Call[]) =>
  judgeChecks({ calls, plan: plan(kind), settings: { ...defaultInsightSettings }, rules: new Map() })[0]!;

describe('certification checks on call logs', () => {
  it('key_rotation passes when the new key keeps working, fails on refusals after the switch or without a rotation', () => {
    const rotated = judge('key_rotation', [
      call(0),
      call(1000),
      call(2000, { credential: 'key-b' }),
      call(3000, { credential: 'key-b' }),
    ]);
    expect(rotated.passed).toBe(true);
    expect(rotated.evidence.numbers).toEqual({ credentialsUsed: 2, refusedAfterRotation: 0 });
    expect(rotated.evidence.timeline.map((e) => e.note)).toEqual([
      'the last call with the previous key',
      'the first call with the new key',
    ]);

    const broken = judge('key_rotation', [
      call(0),
      call(1000, { credential: 'key-b' }),
      call(2000, { credential: 'key-a', status: 401 }),
    ]);
    expect(broken.passed).toBe(false);
    expect(broken.evidence.numbers.refusedAfterRotation).toBe(1);
    expect(broken.advice).toMatch(/rotation/);

    const none = judge('key_rotation', [call(0), call(1000)]);
    expect([none.passed, none.advice]).toEqual([false, expect.stringMatching(/one key only/)]);
  });

  it('idempotency_key wants the first attempt’s key on every retried POST', () => {
    const post = { method: 'POST', path: '/shop/orders', route: 'mr_orders' };
    const good = judge('idempotency_key', [
      call(0, { ...post, status: 500, fault: 'server_error', idempotency_key: 'k1' }),
      call(2000, { ...post, idempotency_key: 'k1' }),
    ]);
    expect([good.passed, good.evidence.numbers]).toEqual([true, { retriedPosts: 1, withTheSameKey: 1 }]);

    const bad = judge('idempotency_key', [
      call(0, { ...post, status: 500, fault: 'server_error' }),
      call(2000, { ...post }),
      call(3000, { ...post, status: 429, retry_after_s: 2, idempotency_key: 'k2' }),
      call(6000, { ...post, idempotency_key: 'k3' }),
    ]);
    expect(bad.passed).toBe(false);
    expect(bad.evidence.numbers).toEqual({ retriedPosts: 2, withTheSameKey: 0 });
    expect(bad.evidence.timeline.map((e) => e.note)).toEqual([
      'no Idempotency-Key',
      'retried with no Idempotency-Key',
    ]);
  });

  it('backoff_5xx fails a retry within a second of a server error, naming the calls', () => {
    const storm = judge('backoff_5xx', [
      call(0, { status: 500, fault: 'server_error' }),
      call(100),
      call(300),
    ]);
    expect(storm.passed).toBe(false);
    expect(storm.evidence.numbers).toEqual({ serverErrors: 1, retriesWithin1s: 1 });
    expect(storm.evidence.timeline.map((e) => e.note)).toEqual([
      '500',
      'again 100 ms later',
      'again 300 ms later',
    ]);
    const calm = judge('backoff_5xx', [call(0, { status: 503, fault: 'unavailable' }), call(1500)]);
    expect(calm.passed).toBe(true);
  });

  it('webhook_not_poll is not asked of a service without webhook events', () => {
    const post = { method: 'POST', path: '/shop/orders', route: 'mr_orders' };
    const calls = [call(0, post), call(200, { path: '/shop/orders/1', route: 'mr_order' })];
    const judged = (webhookEventTypes: number) =>
      judgeChecks({
        calls,
        plan: plan('webhook_not_poll'),
        settings: { ...defaultInsightSettings },
        rules: new Map([
          ['mr_orders', { id: 'mr_orders', http_method: 'POST', pattern: '/orders$' }],
          ['mr_order', { id: 'mr_order', http_method: 'GET', pattern: '/orders/{id}' }],
        ]),
        webhookEventTypes,
      })[0]!;
    expect(judged(0)).toMatchObject({ passed: true, evidence: { numbers: { webhookEventTypes: 0 } } });
    expect(judged(0).advice).toMatch(/declares no webhook events/);
    expect(judged(2)).toMatchObject({
      passed: false,
      evidence: { numbers: { creates: 1, readsSoonAfter: 1 } },
    });
  });

  it('slow_answer: waiting or a retry after a timeout pass; copies in parallel fail', () => {
    const slow = { fault: 'slow', latency_ms: 400 };
    // waited for the slow answer, then went on
    const waited = judge('slow_answer', [call(0, slow), call(450), call(900, { path: '/shop/other' })]);
    expect([waited.passed, waited.evidence.numbers]).toEqual([
      true,
      { slowAnswers: 1, waited: 1, gaveUp: 0, sentWhileWaiting: 0, retriesInParallel: 0 },
    ]);
    // gave up after 150 ms (the gateway recorded 499), retried once, then went on calling one after the other
    const once = judge('slow_answer', [
      call(0, { ...slow, status: 499, latency_ms: 150 }),
      call(160),
      call(300),
      call(450),
    ]);
    expect(once.passed).toBe(true);
    expect(once.evidence.timeline.map((e) => e.note)).toEqual([
      'slow answer: the client gave up after 150 ms',
      'retry 10 ms after giving up',
    ]);
    // a second copy sent while the first still waited (a hedged request)
    const hedged = judge('slow_answer', [call(0, slow), call(100), call(450)]);
    expect(hedged.passed).toBe(false);
    expect(hedged.evidence.numbers.sentWhileWaiting).toBe(1);
    expect(hedged.evidence.timeline.map((e) => e.note)).toEqual([
      'slow answer: the client waited 400 ms',
      'sent again 100 ms in, while the first was waiting',
    ]);
    expect(hedged.advice).toMatch(/while the first was still waiting/);
    // gave up and fired three retries at once
    const burst = judge('slow_answer', [
      call(0, { ...slow, status: 499, latency_ms: 150 }),
      call(152, { latency_ms: 20 }),
      call(153, { latency_ms: 20 }),
      call(153, { latency_ms: 20 }),
      call(5000),
    ]);
    expect(burst.passed).toBe(false);
    expect(burst.evidence.numbers).toMatchObject({ gaveUp: 1, sentWhileWaiting: 0, retriesInParallel: 2 });
    expect(burst.evidence.timeline.map((e) => e.note)).toEqual([
      'slow answer: the client gave up after 150 ms',
      'retry 2 ms after giving up',
      'another retry at the same time, 3 ms after giving up',
      'another retry at the same time, 3 ms after giving up',
    ]);
    expect(burst.advice).toMatch(/in parallel after giving up/);
    // an earlier good slow answer does not hide a later bad one
    const later = judge('slow_answer', [call(0, slow), call(1000), call(2000, slow), call(2100)]);
    expect(later.passed).toBe(false);
    expect(later.evidence.timeline[0]!.at).toBe(new Date(t0 + 2000).toISOString());

    const none = judge('slow_answer', [call(0), call(1000)]);
    expect([none.passed, none.advice]).toEqual([false, expect.stringMatching(/no slow answer/)]);
  });
});
