/**
 * Issue 8, item 14: the OAuth bearer token is not passed to the upstream unless the service says so; the
 * upstream learns who calls from `X-Trellis-*` headers the gateway sets, and a client cannot forge them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as catalog from '../../src/catalog/index.js';
import { exportCatalog } from '../../src/catalog/declarative.js';
import { systemActor } from '../../src/events/index.js';
import type { TokenVerifier } from '../../src/gateway/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import {
  call,
  Fixtures,
  startGateway,
  startUpstream,
  type RunningGateway,
  type Upstream,
} from './fixtures.js';

describe.each(dialects)('identity headers to the upstream (%s)', (dialect) => {
  let store: TestStore;
  let f: Fixtures;
  let upstream: Upstream;
  let gw: RunningGateway | null = null;

  // stands in for the JWT verifier: 'good-<app_id>' is a valid token of that client, for end user 'user-7'
  const verifier: TokenVerifier = {
    async verify(token) {
      if (!token.startsWith('good-')) return null;
      const clientId = token.slice(5);
      return { clientId, claims: { sub: 'user-7', client_id: clientId, scope: 'forecast:read reports' } };
    },
  };

  const forged = {
    'X-Trellis-Application-Id': 'app_forged',
    'X-Trellis-Account-Id': 'acc_forged',
    'X-Trellis-End-User': 'admin',
    'X-Trellis-Scopes': 'everything',
    'X-Trellis-Anything': 'forged',
  };

  beforeAll(async () => {
    store = await freshStore(dialect);
    f = new Fixtures(store);
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream.close();
    await store.cleanup();
  });

  async function oauthService(prefix: string, forwardBearerToken: boolean) {
    const service = await f.service({ upstream: upstream.url, prefix, authMode: 'oauth2' });
    await store.db
      .updateTable('services')
      .set({ forward_bearer_token: forwardBearerToken ? 1 : 0 })
      .where('id', '=', service.id)
      .execute();
    const planId = await f.plan(service.id);
    const app = await f.application(service.id, planId);
    return { app, token: `good-${app.appId}` };
  }

  async function lastSeen(url: string, headers: Record<string, string>) {
    const before = upstream.seen.length;
    const reply = await call(url, { headers });
    expect(reply.status).toBe(200);
    expect(upstream.seen.length).toBe(before + 1);
    return upstream.seen[before]!.headers;
  }

  it('strips the bearer token by default and names the caller in headers of its own', async () => {
    const { app, token } = await oauthService('/oa', false);
    gw = await startGateway({ store, tokenVerifier: verifier });
    const seen = await lastSeen(`${gw.url}/oa/forecast`, { authorization: `Bearer ${token}`, ...forged });
    expect(seen.authorization).toBeUndefined();
    expect(seen['x-trellis-application-id']).toBe(app.id);
    expect(seen['x-trellis-account-id']).toBe(app.accountId);
    expect(seen['x-trellis-end-user']).toBe('user-7');
    expect(seen['x-trellis-scopes']).toBe('forecast:read reports');
    expect(seen['x-trellis-anything']).toBeUndefined();
    await gw.close();
    gw = null;
  });

  it('forwards the bearer token when the service says so', async () => {
    const { app, token } = await oauthService('/ob', true);
    gw = await startGateway({ store, tokenVerifier: verifier });
    const seen = await lastSeen(`${gw.url}/ob/forecast`, { authorization: `Bearer ${token}`, ...forged });
    expect(seen.authorization).toBe(`Bearer ${token}`);
    expect(seen['x-trellis-application-id']).toBe(app.id);
    expect(seen['x-trellis-end-user']).toBe('user-7');
    await gw.close();
    gw = null;
  });

  it('names the caller of key-based services too, and drops forged X-Trellis headers', async () => {
    const service = await f.service({ upstream: upstream.url, prefix: '/ok' });
    const planId = await f.plan(service.id, { endUserSource: 'header', endUserName: 'X-Customer' });
    await f.limit(planId, service.hitsId, 'minute', 100, 'end_user');
    const app = await f.application(service.id, planId);
    const { secret } = await f.key(app.id);
    gw = await startGateway({ store });
    const seen = await lastSeen(`${gw.url}/ok/x`, { 'X-User-Key': secret, 'X-Customer': 'c-42', ...forged });
    expect(seen['x-trellis-application-id']).toBe(app.id);
    expect(seen['x-trellis-account-id']).toBe(app.accountId);
    expect(seen['x-trellis-end-user']).toBe('c-42');
    expect(seen['x-trellis-scopes']).toBeUndefined();
    expect(seen['x-trellis-anything']).toBeUndefined();
    expect(seen['x-user-key']).toBeUndefined();
    await gw.close();
    gw = null;
  });

  it('keeps forwardBearerToken as a service setting of the management API and the declarative config', async () => {
    const deps = { db: store.db, clock: systemClock };
    const created = await catalog.createService(deps, systemActor, {
      name: 'Ledger',
      systemName: `ledger${dialect}`,
      upstreamProduction: 'http://127.0.0.1:9/',
      upstreamSandbox: 'http://127.0.0.1:9/',
      authMode: 'oauth2',
    });
    expect(created.forwardBearerToken).toBe(false);
    const updated = await catalog.updateService(deps, systemActor, created.id, { forwardBearerToken: true });
    expect(updated.forwardBearerToken).toBe(true);
    const doc = await exportCatalog(store.db);
    expect(doc.services.find((s) => s.systemName === created.systemName)?.forwardBearerToken).toBe(true);
  });
});
