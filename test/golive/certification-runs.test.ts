/**
 * Issue 11, certification runs through a real authorization server and a real gateway on sockets (SQLite and
 * PostgreSQL): during a run the sandbox gateway injects the plan's faults into the certifying application's calls
 * only; a well-behaved scripted client passes every automated check; a naive client — retries a 429 at once, takes
 * a token per call, polls after each create — fails exactly those three checks, each with its evidence. The
 * gateway's clock is a manual one, so "waiting" is the client moving it on.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Agent, request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as access from '../../src/access/index.js';
import * as catalog from '../../src/catalog/index.js';
import { type ChangeDeps, checkEventPayload, systemActor } from '../../src/events/index.js';
import { createGateway, type Gateway } from '../../src/gateway/index.js';
import { HostLimiter, serveHostCounters } from '../../src/gateway/limiter/host-limiter.js';
import { MemoryLimiter } from '../../src/gateway/limiter/memory-limiter.js';
import {
  type CertificationRun,
  cancelCertificationRun,
  evaluateRun,
  putCertificationPlan,
  startCertificationRun,
} from '../../src/golive/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { OAuthTokenVerifier } from '../../src/oauth/index.js';
import { declareEventType } from '../../src/webhooks/index.js';
import { type UsageRecord, UsageRecorder, type UsageSink } from '../../src/usage/index.js';
import { call, startUpstream, until, type Upstream } from '../gateway/fixtures.js';
import { type OAuthWorld, startOAuthWorld, tokenRequest } from '../oauth/harness.js';
import { dialects } from '../support/stores.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {} } as never;

class CountingSink implements UsageSink {
  seen = 0;
  constructor(readonly recorder: UsageRecorder) {}
  record(r: UsageRecord): void {
    this.seen++;
    this.recorder.record(r);
  }
}

/**
 * The host counters of `trellis start --workers` in one process: a gateway's HostLimiter talks to a primary holding
 * `counters` over an in-process channel (messages cloned and delivered on a later turn, as IPC would).
 */
function hostCounters(counters: MemoryLimiter): HostLimiter {
  const toPrimary = new EventEmitter();
  const toWorker = new EventEmitter();
  serveHostCounters(
    {
      send: (message, callback) => {
        setImmediate(() => toWorker.emit('message', structuredClone(message)));
        callback(null);
        return true;
      },
      on: (event, listener) => toPrimary.on(event, listener),
      isConnected: () => true,
    },
    counters,
  );
  return new HostLimiter({
    channel: {
      send: (message) => {
        setImmediate(() => toPrimary.emit('message', structuredClone(message)));
        return true;
      },
      on: (event, listener) => toWorker.on(event, listener),
      off: (event, listener) => toWorker.off(event, listener),
      connected: true,
    },
  });
}

interface Client {
  id: string;
  clientId: string;
  clientSecret: string;
}

describe.each(dialects)('certification runs through a real gateway (%s)', (dialect) => {
  let world: OAuthWorld;
  let upstream: Upstream;
  let verifier: OAuthTokenVerifier;
  let gateway: Gateway;
  let sink: CountingSink;
  let gatewayUrl: string;
  let deps: ChangeDeps;
  let made = 0;
  const clock = new ManualClock(Math.floor(Date.now() / 60_000) * 60_000 + 1000);

  beforeAll(async () => {
    upstream = await startUpstream();
    world = await startOAuthWorld(dialect, { upstream: upstream.url });
    deps = { db: world.store.db, clock };
    // the create and the read of an order, matched before the service's catch-all rule
    await catalog.createMappingRule(world.deps, systemActor, world.service.id, {
      httpMethod: 'POST',
      pattern: '/orders$',
      metricId: world.service.hitsId,
      position: 0,
    });
    await catalog.createMappingRule(world.deps, systemActor, world.service.id, {
      httpMethod: 'GET',
      pattern: '/orders/{id}',
      metricId: world.service.hitsId,
      position: 0,
    });
    // the service tells of new orders by webhook, so polling after a create is judged
    await declareEventType(world.deps, systemActor, world.service.id, {
      name: 'order.created',
      description: 'An order was created.',
      schema: { type: 'object' },
      example: {},
    });
    await putCertificationPlan(world.deps, systemActor, world.service.id, {
      checks: [
        { kind: 'retry_after', required: true },
        { kind: 'backoff_5xx', required: true },
        { kind: 'token_reuse', required: true },
        { kind: 'webhook_not_poll', required: true },
        { kind: 'idempotency_key', required: true },
      ],
      faults: { rateLimitEvery: 5, retryAfterSeconds: 2, serverErrorEvery: 7 },
      windowMinutes: 30,
      minCalls: 40,
    });
    verifier = await OAuthTokenVerifier.create({
      db: world.store.db,
      clock: { now: () => Date.now() },
      issuer: world.issuer,
    });
    sink = new CountingSink(new UsageRecorder({ db: world.store.db, clock, flushIntervalMs: 0 }));
    gateway = createGateway({
      config: { ...world.config, snapshotRefreshMs: 600_000 },
      store: world.store,
      clock,
      tokenVerifier: verifier,
      usage: sink,
      logger: quiet,
    });
    gatewayUrl = `http://127.0.0.1:${(await gateway.listen(0, '127.0.0.1')).port}`;
  });

  afterAll(async () => {
    verifier?.close();
    await world?.close();
    await upstream?.close();
  });

  const application = async (name: string, extra: Record<string, unknown> = {}): Promise<Client> => {
    const created = await access.createApplication(world.deps, systemActor, {
      accountId: world.accountId,
      serviceId: world.service.id,
      planId: world.planId,
      name,
      ...extra,
    });
    return { id: created.id, clientId: created.appId, clientSecret: created.secret.value };
  };
  const token = async (c: Client): Promise<string> => {
    const res = await tokenRequest(
      world,
      { grant_type: 'client_credentials' },
      { id: c.clientId, secret: c.clientSecret },
    );
    expect(res.status).toBe(200);
    return String(res.body.access_token);
  };
  const api = async (path: string, bearer: string, method = 'GET', headers: Record<string, string> = {}) => {
    made++;
    return call(`${gatewayUrl}/${world.service.systemName}${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...headers },
      ...(method === 'POST' ? { body: '{}' } : {}),
    });
  };
  /** Every call made so far recorded and written (with the runs' call logs). */
  const flush = async () => {
    await until(() => sink.seen >= made, 10_000);
    await sink.recorder.flush();
  };
  const start = async (c: Client): Promise<CertificationRun> => {
    const run = await startCertificationRun(deps, systemActor, c.id);
    await gateway.refresh(); // the gateway reads certification.started from the change feed
    return run;
  };
  const result = (run: CertificationRun, kind: string) => run.results.find((r) => r.kind === kind)!;

  /**
   * A well-behaved client: one token kept; on a 429 it waits Retry-After, on a 5xx it backs off (1.5 s, 3 s …);
   * each create has one Idempotency-Key for all its attempts; it learns of new orders by webhook (no polling).
   */
  async function wellBehaved(c: Client, iterations: number): Promise<number[]> {
    const bearer = await token(c);
    const statuses: number[] = [];
    const send = async (path: string, method: string, key?: string) => {
      for (let attempt = 0; attempt < 6; attempt++) {
        const res = await api(path, bearer, method, key ? { 'idempotency-key': key } : {});
        statuses.push(res.status);
        if (res.status === 429) {
          clock.advance(Number(res.headers['retry-after']) * 1000 + 100);
          continue;
        }
        if (res.status >= 500) {
          clock.advance(1500 * 2 ** attempt);
          continue;
        }
        clock.advance(200);
        return res;
      }
      throw new Error('gave up');
    };
    for (let i = 0; i < iterations; i++) {
      await send('/orders', 'POST', randomUUID());
      await send('/search', 'GET');
      await send('/reports', 'GET');
    }
    return statuses;
  }

  /** A naive client: a token per call, a 429 retried at once, each create polled; it backs off after a 5xx. */
  async function naive(c: Client, iterations: number): Promise<void> {
    const send = async (path: string, method: string, key?: string) => {
      for (let attempt = 0; attempt < 6; attempt++) {
        const res = await api(path, await token(c), method, key ? { 'idempotency-key': key } : {});
        if (res.status === 429) {
          clock.advance(50);
          continue;
        }
        if (res.status >= 500) {
          clock.advance(1500 * 2 ** attempt);
          continue;
        }
        clock.advance(200);
        return res;
      }
      throw new Error('gave up');
    };
    for (let i = 0; i < iterations; i++) {
      await send('/orders', 'POST', randomUUID());
      await send(`/orders/o${i}`, 'GET');
      await send('/search', 'GET');
    }
  }

  it('a well-behaved client passes every automated check, and faults reach only its sandbox calls', async () => {
    const good = await application('Good shop');
    const bystander = await application('Another sandbox app');
    const production = await application('Good shop (production)', {
      environment: 'production',
      skipCertification: true,
      skipCertificationReason: 'a production application beside the run, for the test',
    });
    const run = await start(good);
    expect(run.state).toBe('running');

    const statuses = await wellBehaved(good, 16);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 500).length).toBeGreaterThan(0);

    // the other sandbox application and the production application of the same service see no fault
    for (const other of [bystander, production]) {
      const bearer = await token(other);
      const seen: number[] = [];
      for (let i = 0; i < 20; i++) {
        seen.push((await api('/search', bearer)).status);
        clock.advance(100);
      }
      expect(seen).toEqual(Array(20).fill(200));
    }
    await flush();
    const logged = await world.store.db
      .selectFrom('certification_calls' as never)
      .select(['run_id'] as never[])
      .execute();
    expect(new Set(logged.map((r) => (r as { run_id: string }).run_id))).toEqual(new Set([run.id]));
    expect(logged.length).toBe(statuses.length);

    const judged = await evaluateRun(deps, run.id);
    expect(judged.results.map((r) => [r.kind, r.passed])).toEqual([
      ['retry_after', true],
      ['backoff_5xx', true],
      ['token_reuse', true],
      ['webhook_not_poll', true],
      ['idempotency_key', true],
    ]);
    expect(judged.state).toBe('passed');
    expect(result(judged, 'retry_after').evidence.numbers.refusedWith429).toBeGreaterThan(0);
    expect(result(judged, 'idempotency_key').evidence.numbers.retriedPosts).toBeGreaterThan(0);
    expect(result(judged, 'token_reuse').evidence.numbers.tokensUsed).toBe(1);

    const events = await world.store.db
      .selectFrom('events')
      .select(['type', 'entity_id'])
      .where('type', 'like', 'certification.%')
      .where('entity_id', '=', good.id)
      .orderBy('seq')
      .execute();
    expect(events.map((e) => e.type)).toEqual(['certification.started', 'certification.passed']);

    // once the run ended the gateway injects nothing more
    await gateway.refresh();
    const bearer = await token(good);
    const after: number[] = [];
    for (let i = 0; i < 15; i++) {
      after.push((await api('/search', bearer)).status);
      clock.advance(100);
    }
    expect(after).toEqual(Array(15).fill(200));
  });

  it('a naive client fails exactly retry_after, token_reuse and webhook_not_poll, each with its evidence', async () => {
    const naiveApp = await application('Naive shop');
    const run = await start(naiveApp);
    await naive(naiveApp, 16);
    await flush();
    const judged = await evaluateRun(deps, run.id);
    expect(judged.state).toBe('failed');
    expect(judged.results.map((r) => [r.kind, r.passed])).toEqual([
      ['retry_after', false],
      ['backoff_5xx', true],
      ['token_reuse', false],
      ['webhook_not_poll', false],
      ['idempotency_key', true],
    ]);

    const retry = result(judged, 'retry_after');
    expect(retry.evidence.numbers.callsBeforeRetryAfter).toBeGreaterThan(0);
    expect(retry.evidence.timeline[0]).toMatchObject({ status: 429, fault: 'rate_limit' });
    expect(retry.evidence.timeline[1]!.note).toMatch(/^too soon: \d+ ms after the 429/);
    expect(retry.advice).toMatch(/Retry-After/);

    const tokens = result(judged, 'token_reuse');
    expect(tokens.evidence.numbers.tokensPerCall).toBeGreaterThan(0.9);
    expect(tokens.evidence.timeline.length).toBeGreaterThan(1);
    expect(tokens.advice).toMatch(/reuse/);

    const poll = result(judged, 'webhook_not_poll');
    expect(poll.evidence.numbers.readsPerCreate).toBeGreaterThanOrEqual(0.8);
    expect(poll.evidence.timeline.map((t) => t.method).slice(0, 2)).toEqual(['POST', 'GET']);
    expect(poll.advice).toMatch(/webhook/);

    for (const kind of ['backoff_5xx', 'idempotency_key']) expect(result(judged, kind).advice).toBe('');

    const events = await world.store.db
      .selectFrom('events')
      .select('type')
      .where('entity_id', '=', naiveApp.id)
      .where('type', 'like', 'certification.%')
      .orderBy('seq')
      .execute();
    expect(events.map((e) => e.type)).toEqual(['certification.started', 'certification.failed']);
  });

  it('503, expired-token 401 and slow faults, seen by a second gateway on the same database too', async () => {
    await putCertificationPlan(world.deps, systemActor, world.service.id, {
      checks: [{ kind: 'expired_token' }, { kind: 'backoff_5xx' }],
      faults: { unavailableEvery: 3, expiredTokenEvery: 4, slowEvery: 5, slowMs: 300 },
      minCalls: 24,
    });
    const other = createGateway({
      config: { ...world.config, snapshotRefreshMs: 600_000 },
      store: world.store,
      clock,
      tokenVerifier: verifier,
      usage: sink,
      logger: quiet,
    });
    const otherUrl = `http://127.0.0.1:${(await other.listen(0, '127.0.0.1')).port}`;
    try {
      const app = await application('Renewing shop');
      const run = await start(app);
      await other.refresh(); // the second gateway learns the run from the outbox, as another process would
      let bearer = await token(app);
      const answers: { status: number; code?: string; challenge?: unknown }[] = [];
      for (let i = 0; i < 24; i++) {
        made++;
        const res = await call(`${i % 2 ? otherUrl : gatewayUrl}/${world.service.systemName}/search`, {
          headers: { authorization: `Bearer ${bearer}` },
        });
        answers.push({
          status: res.status,
          code: res.json.error?.code,
          challenge: res.headers['www-authenticate'],
        });
        if (res.status === 401) bearer = await token(app);
        clock.advance(res.status >= 500 ? 2000 : 200);
      }
      const unavailable = answers.filter((a) => a.status === 503);
      const expired = answers.filter((a) => a.status === 401);
      expect(unavailable.length).toBeGreaterThan(0);
      expect(unavailable.every((a) => a.code === 'upstream_busy')).toBe(true);
      expect(expired.length).toBeGreaterThan(0);
      expect(
        expired.every((a) => a.code === 'token_expired' && String(a.challenge).includes('invalid_token')),
      ).toBe(true);
      await flush();
      const calls = await world.store.db
        .selectFrom('certification_calls' as never)
        .select(['fault', 'latency_ms'] as never[])
        .where('run_id' as never, '=', run.id as never)
        .execute();
      const slow = (calls as { fault: string; latency_ms: number }[]).filter((c) => c.fault === 'slow');
      expect(slow.length).toBeGreaterThan(0);
      expect(slow.every((c) => c.latency_ms >= 250)).toBe(true);
      expect(new Set((calls as { fault: string }[]).map((c) => c.fault))).toEqual(
        new Set(['', 'unavailable', 'expired_token', 'slow']),
      );
      const judged = await evaluateRun(deps, run.id);
      expect(judged.results.map((r) => [r.kind, r.passed])).toEqual([
        ['expired_token', true],
        ['backoff_5xx', true],
      ]);
      expect(result(judged, 'expired_token').evidence.timeline[1]!.note).toBe('a new token');

      // the same client keeping its expired token fails the check, with the call that did it
      const stubborn = await application('Stubborn shop');
      const second = await start(stubborn);
      await other.refresh();
      const kept = await token(stubborn);
      for (let i = 0; i < 24; i++) {
        await api('/search', kept);
        clock.advance(2000);
      }
      await flush();
      const failed = await evaluateRun(deps, second.id);
      expect(failed.state).toBe('failed');
      expect(result(failed, 'expired_token').passed).toBe(false);
      expect(result(failed, 'expired_token').evidence.timeline.map((t) => t.note)).toEqual([
        '401 token_expired',
        'the expired token again',
      ]);
    } finally {
      await other.close();
    }
  });

  it('a run is not judged before minCalls calls; a second start while one runs is refused', async () => {
    const app = await application('Slow starter');
    const run = await start(app);
    await expect(startCertificationRun(deps, systemActor, app.id)).rejects.toMatchObject({
      code: 'invalid_state',
    });
    const bearer = await token(app);
    for (let i = 0; i < 3; i++) {
      await api('/search', bearer);
      clock.advance(100);
    }
    await flush();
    const early = await evaluateRun(deps, run.id);
    expect(early.state).toBe('running');
    expect(early.results.every((r) => r.passed === null)).toBe(true);
    expect(early.results[0]!.advice).toMatch(/^Not judged yet: 3 of 24 calls/);
    // at ends_at it is judged on what it saw: too few faults to react to, so the checks fail
    clock.advance(31 * 60_000);
    const late = await evaluateRun(deps, run.id);
    expect(late.state).toBe('failed');
    expect(result(late, 'expired_token').advice).toMatch(/no expired-token 401/);
  });

  it('a cancelled run injects nothing more; every certification event carries its declared payload', async () => {
    const app = await application('Cancelling shop');
    const run = await start(app);
    const bearer = await token(app);
    const before: number[] = [];
    for (let i = 0; i < 3; i++) {
      before.push((await api('/search', bearer)).status);
      clock.advance(2000);
    }
    expect(before).toEqual([200, 200, 503]);
    await cancelCertificationRun(deps, systemActor, run.id);
    await gateway.refresh();
    const after: number[] = [];
    for (let i = 0; i < 8; i++) {
      after.push((await api('/search', bearer)).status);
      clock.advance(2000);
    }
    expect(after).toEqual(Array(8).fill(200));

    const rows = await world.store.db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('type', 'like', 'certification%')
      .execute();
    expect(new Set(rows.map((r) => r.type))).toEqual(
      new Set([
        'certification_plan.updated',
        'certification.started',
        'certification.passed',
        'certification.failed',
        'certification.cancelled',
      ]),
    );
    for (const r of rows) expect(checkEventPayload(r.type, JSON.parse(r.payload))).toEqual([]);
  });

  it('slow_answer: waiting, or one retry after a timeout, passes; a burst of retries after giving up fails', async () => {
    await putCertificationPlan(world.deps, systemActor, world.service.id, {
      checks: [{ kind: 'slow_answer' }],
      faults: { slowEvery: 4, slowMs: 400 },
      minCalls: 16,
    });
    // a client of its own: a request given up on can leave it a connection that never carried a request, which
    // the gateway would hold open at close for its headers timeout
    const agent = new Agent();
    /** One call that gives up after `timeoutMs` (closing its connection): 'timeout', or the status. */
    const attempt = async (bearer: string, timeoutMs: number | null): Promise<number | 'timeout'> => {
      made++;
      const began = performance.now();
      try {
        const res = await undiciRequest(`${gatewayUrl}/${world.service.systemName}/search`, {
          headers: { authorization: `Bearer ${bearer}` },
          dispatcher: agent,
          ...(timeoutMs !== null && { signal: AbortSignal.timeout(timeoutMs) }),
        });
        await res.body.text();
        return res.statusCode;
      } catch (err) {
        if ((err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError') return 'timeout';
        throw err;
      } finally {
        // the gateway's clock follows the time the call took, so "in flight" means the same to both
        clock.advance(Math.ceil(performance.now() - began) + 5);
      }
    };
    const scenario = async (name: string, onTimeout: 'none' | 'once' | 'burst') => {
      const app = await application(name);
      const run = await start(app);
      const bearer = await token(app);
      for (let i = 0; i < 16; i++) {
        const status = await attempt(bearer, onTimeout === 'none' ? null : 150);
        if (status === 'timeout' && onTimeout === 'once') await attempt(bearer, 150);
        if (status === 'timeout' && onTimeout === 'burst')
          await Promise.all([attempt(bearer, null), attempt(bearer, null), attempt(bearer, null)]);
        clock.advance(100);
      }
      await flush();
      return evaluateRun(deps, run.id);
    };

    try {
      const patient = await scenario('Patient shop', 'none');
      expect(patient.state).toBe('passed');
      expect(result(patient, 'slow_answer').evidence.numbers).toMatchObject({ waited: 4, gaveUp: 0 });

      const retriesOnce = await scenario('Retrying shop', 'once');
      expect(retriesOnce.state).toBe('passed');
      const once = result(retriesOnce, 'slow_answer');
      expect(once.evidence.numbers.gaveUp).toBeGreaterThan(0);
      expect(once.evidence.timeline.map((t) => t.status)).toEqual([499, 200]);
      expect(once.evidence.timeline[0]!.note).toMatch(/^slow answer: the client gave up after \d+ ms$/);

      const burst = await scenario('Bursting shop', 'burst');
      expect(burst.state).toBe('failed');
      const hammered = result(burst, 'slow_answer');
      expect(hammered.passed).toBe(false);
      expect(hammered.evidence.numbers.retriesInParallel).toBeGreaterThan(0);
      expect(hammered.evidence.timeline.map((t) => t.status)).toEqual([499, 200, 200, 200]);
      expect(hammered.evidence.timeline.slice(2).map((t) => t.note)).toEqual([
        expect.stringMatching(/^another retry at the same time/),
        expect.stringMatching(/^another retry at the same time/),
      ]);
      expect(hammered.advice).toMatch(/in parallel after giving up/);
    } finally {
      await agent.destroy();
    }
  });

  it.each(['Redis', 'host counters'] as const)(
    '"every Nth call" counts the run across two gateways sharing %s',
    async (shared) => {
      await putCertificationPlan(world.deps, systemActor, world.service.id, {
        checks: [{ kind: 'backoff_5xx' }],
        faults: { unavailableEvery: 3 },
        minCalls: 12,
      });
      const counters = new MemoryLimiter();
      const prefix = `trellis-test:${randomUUID()}:`;
      const twin = () =>
        createGateway({
          config: {
            ...world.config,
            snapshotRefreshMs: 600_000,
            ...(shared === 'Redis' && { redisUrl: 'redis://127.0.0.1:6379' }),
          },
          store: world.store,
          clock,
          tokenVerifier: verifier,
          usage: sink,
          logger: quiet,
          ...(shared === 'host counters' && { limiter: hostCounters(counters) }),
          options: { redisKeyPrefix: prefix },
        });
      const gateways = [twin(), twin()];
      try {
        const urls = await Promise.all(
          gateways.map(async (g) => `http://127.0.0.1:${(await g.listen(0, '127.0.0.1')).port}`),
        );
        const app = await application(`Twin shop ${shared}`);
        const run = await startCertificationRun(deps, systemActor, app.id);
        for (const g of gateways) await g.refresh();
        const bearer = await token(app);
        const statuses: number[] = [];
        for (let i = 0; i < 12; i++) {
          made++;
          const res = await call(`${urls[i % 2]}/${world.service.systemName}/search`, {
            headers: { authorization: `Bearer ${bearer}` },
          });
          statuses.push(res.status);
          clock.advance(2000);
        }
        // the 3rd, 6th, 9th and 12th call of the run, whichever gateway served it (counted per gateway, each would
        // answer its own 3rd and 6th call: the run's 5th, 6th, 11th and 12th)
        expect(statuses.flatMap((st, i) => (st === 503 ? [i + 1] : []))).toEqual([3, 6, 9, 12]);
        expect(statuses.every((st) => st === 200 || st === 503)).toBe(true);
        if (shared === 'host counters')
          expect(counters.peek({ key: `certification:${run.id}`, windowStart: 0 })).toBe(12);
        await flush();
        const judged = await evaluateRun(deps, run.id);
        expect(result(judged, 'backoff_5xx').evidence.numbers.serverErrors).toBe(4);
      } finally {
        for (const g of gateways) await g.close();
      }
    },
  );
});
