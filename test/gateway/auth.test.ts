import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenVerifier } from '../../src/gateway/index.js';
import {
  call,
  Fixtures,
  startGateway,
  startUpstream,
  type RunningGateway,
  type Upstream,
} from './fixtures.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';

describe.each(dialects)('gateway authentication and routing (%s)', (dialect) => {
  let store: TestStore;
  let f: Fixtures;
  let upstream: Upstream;
  let sandbox: Upstream;
  let gw: RunningGateway;

  const verifier: TokenVerifier = {
    // stands in for the JWT validation another change adds: 'good-<app_id>' is a valid token of that client
    async verify(token) {
      return token.startsWith('good-') ? { clientId: token.slice(5), claims: { sub: 'user-1' } } : null;
    },
  };

  beforeAll(async () => {
    store = await freshStore(dialect);
    f = new Fixtures(store);
    upstream = await startUpstream('production');
    sandbox = await startUpstream('sandbox');
  });

  afterAll(async () => {
    await gw?.close();
    await upstream.close();
    await sandbox.close();
    await store.cleanup();
  });

  async function gateway(): Promise<RunningGateway> {
    await gw?.close();
    gw = await startGateway({ store, tokenVerifier: verifier });
    return gw;
  }

  describe('authentication', () => {
    it('accepts a user key in a header, strips it and adds the secret token and forwarded headers', async () => {
      const { key } = await f.keyed({ upstream: upstream.url, prefix: '/ukh', secretToken: 's3cret' });
      const { url } = await gateway();
      const res = await call(`${url}/ukh/things?a=1`, {
        headers: { 'X-User-Key': key, 'X-Request-Id': 'req-123', 'X-Trellis-Secret': 'forged' },
      });
      expect(res.status).toBe(200);
      expect(res.json.url).toBe('/things?a=1');
      const headers = res.json.headers as Record<string, string>;
      expect(headers['x-user-key']).toBeUndefined();
      expect(headers['x-trellis-secret']).toBe('s3cret');
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('http');
      expect(headers['x-forwarded-host']).toBe(new URL(url).host);
      expect(headers['x-request-id']).toBe('req-123');
      expect(res.headers['x-request-id']).toBe('req-123');
    });

    it('accepts a user key in the query string and removes only that parameter', async () => {
      const { key } = await f.keyed({
        upstream: upstream.url,
        prefix: '/ukq',
        location: 'query',
        userKeyName: 'user_key',
      });
      const { url } = await gateway();
      const res = await call(`${url}/ukq/search?q=a%20b&user_key=${key}&x=1`);
      expect(res.status).toBe(200);
      expect(res.json.url).toBe('/search?q=a%20b&x=1');
    });

    it('accepts app_id and app_key in headers and in the query string', async () => {
      for (const location of ['header', 'query']) {
        const prefix = `/appid-${location}`;
        const service = await f.service({
          upstream: upstream.url,
          prefix,
          authMode: 'app_id_app_key',
          location,
          appIdName: 'app_id',
          appKeyName: 'app_key',
        });
        const planId = await f.plan(service.id);
        const app = await f.application(service.id, planId);
        const { secret } = await f.key(app.id, 'app_key');
        const { secret: revoked } = await f.key(app.id, 'app_key', 'revoked');
        const { url } = await gateway();
        const send = (id: string | null, key: string | null) =>
          location === 'header'
            ? call(`${url}${prefix}/x`, {
                headers: { ...(id ? { app_id: id } : {}), ...(key ? { app_key: key } : {}) },
              })
            : call(`${url}${prefix}/x?${id ? `app_id=${id}&` : ''}${key ? `app_key=${key}` : ''}`);
        const ok = await send(app.appId, secret);
        expect(ok.status, location).toBe(200);
        expect(ok.json.url).toBe('/x');
        expect((ok.json.headers as Record<string, string>).app_key).toBeUndefined();
        expect((await send(app.appId, null)).json.error?.code).toBe('credentials_missing');
        expect((await send(app.appId, 'trak_wrong')).json.error?.code).toBe('credentials_invalid');
        expect((await send('nope', secret)).json.error?.code).toBe('credentials_invalid');
        const rev = await send(app.appId, revoked);
        expect([rev.status, rev.json.error?.code]).toEqual([401, 'credentials_revoked']);
      }
    });

    it('answers oauth2 services with the verifier plugged in, and credentials_invalid without one', async () => {
      const service = await f.service({ upstream: upstream.url, prefix: '/oauth', authMode: 'oauth2' });
      const planId = await f.plan(service.id);
      const app = await f.application(service.id, planId);
      const { url } = await gateway();
      expect(
        (await call(`${url}/oauth/x`, { headers: { authorization: `Bearer good-${app.appId}` } })).status,
      ).toBe(200);
      expect(
        (await call(`${url}/oauth/x`, { headers: { authorization: 'Bearer bad' } })).json.error?.code,
      ).toBe('credentials_invalid');
      expect((await call(`${url}/oauth/x`)).json.error?.code).toBe('credentials_missing');
      await gw.close();
      gw = await startGateway({ store });
      const res = await call(`${gw.url}/oauth/x`, { headers: { authorization: `Bearer good-${app.appId}` } });
      expect([res.status, res.json.error?.code]).toEqual([401, 'credentials_invalid']);
    });

    it('refuses missing, unknown, revoked and other-service keys with their own codes and one body shape', async () => {
      const a = await f.keyed({ upstream: upstream.url, prefix: '/codes' });
      const b = await f.keyed({ upstream: upstream.url, prefix: '/other' });
      const { secret: revoked } = await f.key(a.app.id, 'user_key', 'revoked');
      const { url } = await gateway();
      const cases: [Record<string, string>, number, string][] = [
        [{}, 401, 'credentials_missing'],
        [{ 'X-User-Key': 'trk_unknown' }, 401, 'credentials_invalid'],
        [{ 'X-User-Key': revoked }, 401, 'credentials_revoked'],
        [{ 'X-User-Key': b.key }, 401, 'credentials_invalid'],
      ];
      for (const [headers, status, code] of cases) {
        const res = await call(`${url}/codes/x`, { headers });
        expect(res.status, code).toBe(status);
        expect(res.headers['content-type']).toMatch(/application\/json/);
        expect(res.json.error?.code).toBe(code);
        expect(res.json.error?.message).toEqual(expect.any(String));
        expect(res.json.error?.requestId).toBe(res.headers['x-request-id']);
      }
    });

    it('refuses pending and suspended applications and accounts', async () => {
      const service = await f.service({ upstream: upstream.url, prefix: '/states' });
      const planId = await f.plan(service.id);
      const cases: [Parameters<Fixtures['application']>[2], string, number][] = [
        [{ state: 'pending' }, 'application_pending', 403],
        [{ state: 'suspended' }, 'application_suspended', 403],
        [{ accountId: await f.account('suspended') }, 'account_suspended', 403],
        [{ accountId: await f.account('pending') }, 'account_pending', 403],
      ];
      const { url } = await gateway();
      for (const [fields, code, status] of cases) {
        const app = await f.application(service.id, planId, fields);
        const { secret } = await f.key(app.id);
        const res = await call(`${url}/states/x`, { headers: { 'X-User-Key': secret } });
        expect([res.status, res.json.error?.code]).toEqual([status, code]);
      }
    });
  });

  describe('routing', () => {
    it('routes by host and by path prefix, the most specific service first', async () => {
      const byHost = await f.keyed({ upstream: upstream.url, host: 'api.example.test' });
      const byHostAndPrefix = await f.keyed({
        upstream: sandbox.url,
        host: 'api.example.test',
        prefix: '/v2',
      });
      const { url } = await gateway();
      const a = await call(`${url}/v2/x`, {
        headers: { host: 'api.example.test', 'X-User-Key': byHostAndPrefix.key },
      });
      expect([a.status, a.json.upstream, a.json.url]).toEqual([200, 'sandbox', '/x']);
      const b = await call(`${url}/v3/x`, {
        headers: { host: 'API.example.test:8080', 'X-User-Key': byHost.key },
      });
      expect([b.status, b.json.upstream, b.json.url]).toEqual([200, 'production', '/v3/x']);
      const c = await call(`${url}/v3/x`, { headers: { host: 'other.test', 'X-User-Key': byHost.key } });
      expect([c.status, c.json.error?.code]).toEqual([404, 'service_not_found']);
    });

    it('does not match a prefix in the middle of a segment', async () => {
      const { key } = await f.keyed({ upstream: upstream.url, prefix: '/seg' });
      const { url } = await gateway();
      expect((await call(`${url}/segment/x`, { headers: { 'X-User-Key': key } })).json.error?.code).toBe(
        'service_not_found',
      );
      expect((await call(`${url}/seg`, { headers: { 'X-User-Key': key } })).json.url).toBe('/');
    });

    it('sends sandbox applications to the sandbox upstream and production ones to production', async () => {
      const service = await f.service({
        upstream: upstream.url,
        sandbox: `${sandbox.url}/base/`,
        prefix: '/env',
      });
      const planId = await f.plan(service.id);
      const live = await f.application(service.id, planId, { environment: 'production' });
      const test = await f.application(service.id, planId, { environment: 'sandbox' });
      const liveKey = (await f.key(live.id)).secret;
      const testKey = (await f.key(test.id)).secret;
      const { url } = await gateway();
      const p = await call(`${url}/env/x`, { headers: { 'X-User-Key': liveKey } });
      const s = await call(`${url}/env/x`, { headers: { 'X-User-Key': testKey } });
      expect([p.json.upstream, p.json.url]).toEqual(['production', '/x']);
      expect([s.json.upstream, s.json.url]).toEqual(['sandbox', '/base/x']);
    });

    it('serves health and Prometheus metrics on reserved paths', async () => {
      const { url } = await gateway();
      await call(`${url}/nothing-here`);
      const health = await call(`${url}/__trellis/health`);
      expect(health.status).toBe(200);
      expect(health.json.status).toBe('ok');
      const metrics = await call(`${url}/__trellis/metrics`);
      expect(metrics.text).toContain('trellis_gateway_denials_total{code="service_not_found"} 1');
      expect(metrics.text).toContain('trellis_gateway_request_duration_seconds_bucket');
      expect(metrics.text).toContain('trellis_usage_flush_lag_seconds');
      expect(metrics.text).toContain('trellis_usage_failed_compactions');
    });
  });
});
