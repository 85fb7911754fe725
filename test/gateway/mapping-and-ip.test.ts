import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileAllowlist } from '../../src/gateway/ip-allowlist.js';
import { compileRules, matchRules } from '../../src/gateway/mapping-rules.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import { UsageRecorder, queryUsage } from '../../src/usage/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { call, Fixtures, startGateway, startUpstream, type Upstream } from './fixtures.js';

describe('mapping rules (3scale semantics)', () => {
  const rules = (defs: [string, string, string, number?, boolean?][]) =>
    compileRules(
      defs.map(([httpMethod, pattern, metricId, delta = 1, last = false], position) => ({
        httpMethod,
        pattern,
        metricId,
        delta,
        position,
        last,
      })),
    );

  it('matches as a prefix unless the pattern ends with $', () => {
    const r = rules([
      ['GET', '/v3/mail', 'prefix'],
      ['GET', '/v3/mail/send$', 'exact'],
    ]);
    expect(matchRules(r, 'GET', '/v3/mail/send', '')).toEqual([
      { metricId: 'prefix', delta: 1 },
      { metricId: 'exact', delta: 1 },
    ]);
    expect(matchRules(r, 'GET', '/v3/mail/send/now', '')).toEqual([{ metricId: 'prefix', delta: 1 }]);
    expect(matchRules(r, 'GET', '/v3/mailbox', '')).toEqual([{ metricId: 'prefix', delta: 1 }]);
    expect(matchRules(r, 'POST', '/v3/mail', '')).toEqual([]);
  });

  it('matches {placeholders} against one segment', () => {
    const r = rules([['GET', '/statuses/{id}.json$', 'show']]);
    expect(matchRules(r, 'GET', '/statuses/123.json', '')).toHaveLength(1);
    expect(matchRules(r, 'GET', '/statuses/1/2.json', '')).toHaveLength(0);
    expect(matchRules(r, 'GET', '/statuses/.json', '')).toHaveLength(0);
  });

  it('requires the query parameters a pattern names', () => {
    const r = rules([['GET', '/search?q={term}&type=user', 'search']]);
    expect(matchRules(r, 'GET', '/search', 'type=user&q=x')).toHaveLength(1);
    expect(matchRules(r, 'GET', '/search', 'q=x&type=page')).toHaveLength(0);
    expect(matchRules(r, 'GET', '/search', 'type=user')).toHaveLength(0);
  });

  it('adds every matching rule in position order and stops at a matching rule marked last', () => {
    const r = rules([
      ['GET', '/a', 'm1', 2],
      ['GET', '/a/b', 'm2', 1, true],
      ['GET', '/', 'm1', 5],
    ]);
    expect(matchRules(r, 'GET', '/a/b', '')).toEqual([
      { metricId: 'm1', delta: 2 },
      { metricId: 'm2', delta: 1 },
    ]);
    expect(matchRules(r, 'GET', '/a/c', '')).toEqual([{ metricId: 'm1', delta: 7 }]);
  });

  it('escapes regular-expression characters in patterns', () => {
    const r = rules([['GET', '/a.b+c$', 'm']]);
    expect(matchRules(r, 'GET', '/a.b+c', '')).toHaveLength(1);
    expect(matchRules(r, 'GET', '/aXbbc', '')).toHaveLength(0);
  });
});

describe('IP allowlists', () => {
  it('matches IPv4 addresses and CIDRs', () => {
    const list = compileAllowlist(['10.0.0.0/8', '192.168.1.7'])!;
    expect(list.allows('10.200.3.4')).toBe(true);
    expect(list.allows('11.0.0.1')).toBe(false);
    expect(list.allows('192.168.1.7')).toBe(true);
    expect(list.allows('192.168.1.8')).toBe(false);
    expect(list.allows('::ffff:10.1.1.1')).toBe(true);
  });

  it('matches IPv6 addresses and CIDRs, and keeps families apart', () => {
    const list = compileAllowlist(['2001:db8::/32', '::1', '0.0.0.0/0'])!;
    expect(list.allows('2001:db8:1234::5')).toBe(true);
    expect(list.allows('2001:db9::1')).toBe(false);
    expect(list.allows('::1')).toBe(true);
    expect(list.allows('1.2.3.4')).toBe(true);
    expect(compileAllowlist(['::/0'])!.allows('1.2.3.4')).toBe(false);
    expect(compileAllowlist(['2001:db8:0:0:0:0:0:1/128'])!.allows('2001:db8::1')).toBe(true);
  });

  it('allows nothing for entries that do not parse, and anything for an empty list', () => {
    expect(compileAllowlist(['not-an-ip'])!.allows('127.0.0.1')).toBe(false);
    expect(compileAllowlist([])).toBeNull();
  });
});

describe.each(dialects)('through the gateway (%s)', (dialect) => {
  let store: TestStore;
  let f: Fixtures;
  let upstream: Upstream;

  beforeAll(async () => {
    store = await freshStore(dialect);
    f = new Fixtures(store);
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream.close();
    await store.cleanup();
  });

  it('refuses calls from addresses outside the allowlist, over IPv4 and IPv6', async () => {
    const service = await f.service({ upstream: upstream.url, prefix: '/ip' });
    const planId = await f.plan(service.id);
    const v4only = await f.application(service.id, planId, { allowedIps: ['127.0.0.0/8'] });
    const v6only = await f.application(service.id, planId, { allowedIps: ['::1/128'] });
    const k4 = (await f.key(v4only.id)).secret;
    const k6 = (await f.key(v6only.id)).secret;
    for (const host of ['127.0.0.1', '::1']) {
      const gw = await startGateway({ store }, host);
      const a = await call(`${gw.url}/ip/x`, { headers: { 'X-User-Key': k4 } });
      const b = await call(`${gw.url}/ip/x`, { headers: { 'X-User-Key': k6 } });
      if (host === '127.0.0.1') {
        expect(a.status).toBe(200);
        expect([b.status, b.json.error?.code]).toEqual([403, 'ip_not_allowed']);
      } else {
        expect([a.status, a.json.error?.code]).toEqual([403, 'ip_not_allowed']);
        expect(b.status).toBe(200);
      }
      await gw.close();
    }
  });

  it('maps requests to metrics, counts methods on hits too, and refuses unmapped and disabled methods', async () => {
    const service = await f.service({ upstream: upstream.url, prefix: '/map', defaultRule: false });
    const search = await f.metric(service.id, 'search', service.hitsId);
    const send = await f.metric(service.id, 'send', service.hitsId);
    await f.rule(service.id, { method: 'GET', pattern: '/search$', metricId: search, delta: 2 });
    await f.rule(service.id, { method: 'POST', pattern: '/mail/send', metricId: send });
    const planId = await f.plan(service.id);
    await f.disable(planId, send);
    const app = await f.application(service.id, planId);
    const key = (await f.key(app.id)).secret;
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 10, 0));
    const usage = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    const gw = await startGateway({ store, clock, usage });
    const headers = { 'X-User-Key': key };
    expect((await call(`${gw.url}/map/search`, { headers })).status).toBe(200);
    const unmapped = await call(`${gw.url}/map/other`, { headers });
    expect([unmapped.status, unmapped.json.error?.code]).toEqual([404, 'no_mapping_rule']);
    const disabled = await call(`${gw.url}/map/mail/send`, { method: 'POST', headers });
    expect([disabled.status, disabled.json.error?.code]).toEqual([403, 'method_disabled']);
    await gw.close();
    await usage.flush();
    const series = await queryUsage(store.db, {
      applicationId: app.id,
      granularity: 'hour',
      from: new Date(Date.UTC(2026, 0, 1, 10)),
      to: new Date(Date.UTC(2026, 0, 1, 11)),
    });
    const totals = Object.fromEntries(series.map((s) => [s.metricId, s.total]));
    // refused calls are not usage
    expect(totals).toEqual({ [search]: 2, [service.hitsId]: 2 });
  });
});
