/**
 * The scripted scenario of issue 10, through a real authorization server and a real gateway, on SQLite and
 * PostgreSQL: client A takes one token and makes 50 calls → no finding; B takes a token for each of 50 calls →
 * token churn for B only; C creates then immediately polls what it created → poll-after-create for C only; D keeps
 * calling through 429s before Retry-After → retry storm for D only; a clean client E → nothing. Then the patterns
 * stop and every finding resolves itself. Windows follow the gateway's injected clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as access from '../../src/access/index.js';
import * as catalog from '../../src/catalog/index.js';
import { checkEventPayload, readChangesSince, systemActor } from '../../src/events/index.js';
import { createGateway, type Gateway } from '../../src/gateway/index.js';
import { listFindings, runInsights } from '../../src/insights/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { OAuthTokenVerifier } from '../../src/oauth/index.js';
import { call, startUpstream, type Upstream } from '../gateway/fixtures.js';
import { type OAuthWorld, startOAuthWorld, tokenRequest } from '../oauth/harness.js';
import { dialects } from '../support/stores.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {} } as never;

describe.each(dialects)('insights scenario (%s)', (dialect) => {
  let world: OAuthWorld;
  let upstream: Upstream;
  let verifier: OAuthTokenVerifier;
  let gateway: Gateway;
  let gatewayUrl: string;
  const clock = new ManualClock(Math.floor(Date.now() / 60_000) * 60_000 + 1000);
  const apps: Record<string, { id: string; clientId: string; clientSecret: string }> = {};

  beforeAll(async () => {
    upstream = await startUpstream();
    world = await startOAuthWorld(dialect, { upstream: upstream.url });
    const deps = world.deps;
    // the create and the read of a resource, matched before the service's catch-all rule
    await catalog.createMappingRule(deps, systemActor, world.service.id, {
      httpMethod: 'POST',
      pattern: '/paymentrequests$',
      metricId: world.service.hitsId,
      position: 0,
    });
    await catalog.createMappingRule(deps, systemActor, world.service.id, {
      httpMethod: 'GET',
      pattern: '/paymentrequests/{id}',
      metricId: world.service.hitsId,
      position: 0,
    });
    const tight = await catalog.createPlan(deps, systemActor, world.service.id, {
      name: 'Tight',
      systemName: 'tight',
    });
    await catalog.setPlanLimit(deps, systemActor, tight.id, {
      metricId: world.service.hitsId,
      period: 'minute',
      value: 5,
    });
    for (const name of ['A', 'B', 'C', 'D', 'E']) {
      const created = await access.createApplication(deps, systemActor, {
        accountId: world.accountId,
        serviceId: world.service.id,
        name: `Client ${name}`,
        ...(name === 'D' ? { planId: tight.id } : { planId: world.planId }),
      });
      apps[name] = { id: created.id, clientId: created.appId, clientSecret: created.secret.value };
    }
    verifier = await OAuthTokenVerifier.create({
      db: world.store.db,
      clock: { now: () => Date.now() },
      issuer: world.issuer,
    });
    gateway = createGateway({
      config: world.config,
      store: world.store,
      clock,
      tokenVerifier: verifier,
      logger: quiet,
    });
    gatewayUrl = `http://127.0.0.1:${(await gateway.listen(0, '127.0.0.1')).port}`;
  });

  afterAll(async () => {
    await gateway?.close();
    verifier?.close();
    await world?.close();
    await upstream?.close();
  });

  const token = async (name: string): Promise<string> => {
    const app = apps[name]!;
    const res = await tokenRequest(
      world,
      { grant_type: 'client_credentials' },
      { id: app.clientId, secret: app.clientSecret },
    );
    expect(res.status).toBe(200);
    return String(res.body.access_token);
  };
  const api = (path: string, bearer: string, method = 'GET') =>
    call(`${gatewayUrl}/${world.service.systemName}${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      ...(method === 'POST' ? { body: '{}' } : {}),
    });

  it('finds token churn for B, poll-after-create for C, a retry storm for D, and nothing for A and E', async () => {
    const a = await token('A');
    for (let i = 0; i < 50; i++) {
      expect((await api('/search', a)).status).toBe(200);
      clock.advance(200);
    }
    for (let i = 0; i < 50; i++) {
      expect((await api('/search', await token('B'))).status).toBe(200);
      clock.advance(200);
    }
    const c = await token('C');
    for (let i = 0; i < 10; i++) {
      expect((await api('/paymentrequests', c, 'POST')).status).toBe(200);
      for (let j = 0; j < 3; j++) {
        clock.advance(300);
        expect((await api(`/paymentrequests/pr${i}`, c)).status).toBe(200);
      }
      clock.advance(2000);
    }
    const d = await token('D');
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) {
      statuses.push((await api('/search', d)).status);
      clock.advance(100);
    }
    // each call counts twice on hits (its rule and the catch-all), so the limit of 5 lets two through
    const limited = statuses.filter((s) => s === 429).length;
    expect(limited).toBe(23);
    const e = await token('E');
    for (let i = 0; i < 25; i++) {
      expect((await api('/reports', e)).status).toBe(200);
      clock.advance(400);
    }
    await gateway.close(); // flushes usage
    await world.server.counter.flush();

    const insightsDeps = { db: world.store.db, clock };
    const run = await runInsights(insightsDeps);
    expect(run.detected).toBe(3);
    const { data } = await listFindings(world.store.db, { serviceId: world.service.id, limit: 50 });
    const nameOf = new Map(Object.entries(apps).map(([name, app]) => [app.id, name]));
    expect(data.map((f) => `${nameOf.get(f.applicationId)} ${f.kind}`).sort()).toEqual([
      'B token_churn',
      'C poll_after_create',
      'D retry_storm',
    ]);
    const churn = data.find((f) => f.kind === 'token_churn')!;
    expect(churn.evidence.numbers).toMatchObject({ tokensIssued: 50, apiCalls: 50, tokensPerCall: 1 });
    expect(churn.evidence.timeline.length).toBeGreaterThan(0);
    expect(churn.advice).toContain('reuse it until it expires');
    expect(churn.state).toBe('open');
    const poll = data.find((f) => f.kind === 'poll_after_create')!;
    expect(poll.subject).toBe('POST /paymentrequests → GET /paymentrequests/{id}');
    expect(poll.evidence.numbers).toMatchObject({ creates: 10, readsSoonAfter: 30, readsPerCreate: 3 });
    const storm = data.find((f) => f.kind === 'retry_storm')!;
    expect(storm.evidence.numbers).toMatchObject({
      callsBeforeRetryAfter: limited - 1,
      refusedWith429: limited,
    });

    // a second run refreshes, opens nothing new
    expect(await runInsights(insightsDeps)).toMatchObject({ detected: 0, refreshed: 3, resolved: 0 });
    const events = await readChangesSince(world.store.db, 0, 1000);
    const detectedEvents = events.filter((ev) => ev.type === 'insight.detected');
    expect(detectedEvents).toHaveLength(3);
    for (const ev of detectedEvents) expect(checkEventPayload(ev.type, ev.payload)).toEqual([]);

    // the patterns stop: once out of the window and unseen for resolveAfterMinutes, every finding resolves itself
    clock.advance(2 * 3_600_000);
    expect(await runInsights(insightsDeps)).toMatchObject({ detected: 0, resolved: 3 });
    const after = await listFindings(world.store.db, { serviceId: world.service.id, limit: 50 });
    expect(after.data.map((f) => f.state)).toEqual(['resolved', 'resolved', 'resolved']);
    const resolvedEvents = (await readChangesSince(world.store.db, 0, 1000)).filter(
      (ev) => ev.type === 'insight.resolved',
    );
    expect(resolvedEvents).toHaveLength(3);
  });
});
