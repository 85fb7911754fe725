/**
 * The client credentials flow end to end on real sockets: openid-client (an independent OAuth client) gets a token
 * from Trellis, the gateway lets the call through, and bad tokens are refused each with its own code. Runs on
 * SQLite and PostgreSQL.
 */
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as access from '../../src/access/index.js';
import * as catalog from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { createGateway, type Gateway } from '../../src/gateway/index.js';
import { OAuthTokenVerifier, queryTokenCounts, updateServiceOAuthSettings } from '../../src/oauth/index.js';
import { dialects } from '../support/stores.js';
import { type Upstream, call, startUpstream, until } from '../gateway/fixtures.js';
import { type OAuthWorld, startOAuthWorld, tokenRequest } from './harness.js';

/** A clock the verifier reads, moved forward to see tokens expire without waiting. */
class ShiftedClock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
}

describe.each(dialects)('client credentials on %s', (dialect) => {
  let world: OAuthWorld;
  let upstream: Upstream;
  let gateway: Gateway;
  let gatewayUrl: string;
  let verifier: OAuthTokenVerifier;
  let verifierClock: ShiftedClock;
  let client: oidc.Configuration;

  beforeAll(async () => {
    upstream = await startUpstream();
    world = await startOAuthWorld(dialect, { upstream: upstream.url });
    verifierClock = new ShiftedClock();
    verifier = await OAuthTokenVerifier.create({
      db: world.store.db,
      clock: verifierClock,
      issuer: world.issuer,
    });
    gateway = createGateway({
      config: world.config,
      store: world.store,
      tokenVerifier: verifier,
      logger: { info: () => {}, warn: () => {}, error: () => {} } as never,
    });
    gatewayUrl = `http://127.0.0.1:${(await gateway.listen(0, '127.0.0.1')).port}`;
    // RFC 8414 discovery (the `oauth2` algorithm reads /.well-known/oauth-authorization-server/oauth)
    client = await oidc.discovery(
      new URL(world.issuer),
      world.app.clientId,
      world.app.clientSecret,
      undefined,
      {
        execute: [oidc.allowInsecureRequests],
        algorithm: 'oauth2',
      },
    );
  });

  afterAll(async () => {
    await gateway?.close();
    verifier?.close();
    await world?.close();
    await upstream?.close();
  });

  const api = (path: string, token: string) =>
    call(`${gatewayUrl}/${world.service.systemName}${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });

  it('issues a JWT for the service with the scopes of the plan, and the gateway lets the call through', async () => {
    const tokens = await oidc.clientCredentialsGrant(client);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.expires_in).toBe(600);
    expect(tokens.scope?.split(' ').sort()).toEqual(['hits', 'reports', 'search']);
    const [header, payload] = tokens.access_token
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(header).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    expect(payload).toMatchObject({
      aud: world.service.systemName,
      client_id: world.app.clientId,
      iss: world.issuer,
    });

    const res = await api('/search?q=paris', tokens.access_token);
    expect(res.status).toBe(200);
    expect(res.json.ok).toBe(true);
  });

  it('narrows the token to the scopes asked for, and refuses calls outside them with insufficient_scope', async () => {
    const tokens = await oidc.clientCredentialsGrant(client, { scope: 'search' });
    expect(tokens.scope).toBe('search');
    expect((await api('/search', tokens.access_token)).status).toBe(200);
    const refused = await api('/reports', tokens.access_token);
    expect(refused.status).toBe(403);
    expect(refused.json.error?.code).toBe('insufficient_scope');
    // RFC 6750 §3: bearer clients learn why from the challenge
    expect(refused.headers['www-authenticate']).toBe(
      `Bearer realm="${world.service.systemName}", error="insufficient_scope", error_description="The access token lacks the scope reports."`,
    );
    const none = await call(`${gatewayUrl}/${world.service.systemName}/search`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe(`Bearer realm="${world.service.systemName}"`);
  });

  it('refuses a wrong secret and an unknown client at the token endpoint', async () => {
    const wrong = await tokenRequest(
      world,
      { grant_type: 'client_credentials' },
      { id: world.app.clientId, secret: 'trcs_wrong' },
    );
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    const unknown = await tokenRequest(
      world,
      { grant_type: 'client_credentials' },
      { id: 'nope', secret: 'x' },
    );
    expect(unknown.body.error).toBe('invalid_client');
  });

  it('accepts a rotated client secret, and refuses the old one once revoked', async () => {
    const added = await access.addApplicationKey(world.deps, systemActor, world.app.id);
    const withNew = await tokenRequest(
      world,
      { grant_type: 'client_credentials' },
      { id: world.app.clientId, secret: added.value },
    );
    expect(withNew.status).toBe(200);
    const before = await access.getApplication(world.store.db, world.app.id);
    const old = before.credentials.find((c) => c.id !== added.credentialId && c.state === 'active')!;
    await access.revokeApplicationKey(world.deps, systemActor, world.app.id, old.id);
    const withOld = await tokenRequest(world, { grant_type: 'client_credentials' });
    expect(withOld.body.error).toBe('invalid_client');
    world.app.clientSecret = added.value;
    client = await oidc.discovery(new URL(world.issuer), world.app.clientId, added.value, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
  });

  it('refuses an expired token with token_expired', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(client);
    verifierClock.offset = 601_000 + 10_000;
    try {
      const res = await api('/search', access_token);
      expect(res.status).toBe(401);
      expect(res.json.error?.code).toBe('token_expired');
      expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
    } finally {
      verifierClock.offset = 0;
    }
  });

  it('refuses a tampered token with token_invalid', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(client, { scope: 'search' });
    const [h, p, s] = access_token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.scope = 'hits search reports';
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    const res = await api('/reports', forged);
    expect(res.status).toBe(401);
    expect(res.json.error?.code).toBe('token_invalid');
    expect((await api('/search', 'not-a-jwt')).json.error?.code).toBe('token_invalid');
  });

  it('refuses a token for another service with token_wrong_audience', async () => {
    const other = await catalog.createService(world.deps, systemActor, {
      name: 'Other',
      systemName: `other${world.service.systemName}`,
      upstreamProduction: upstream.url,
      upstreamSandbox: upstream.url,
      authMode: 'oauth2',
    });
    await catalog.createPlan(world.deps, systemActor, other.id, { name: 'Basic', systemName: 'basic' });
    const app = await access.createApplication(world.deps, systemActor, {
      accountId: world.accountId,
      serviceId: other.id,
      name: 'Other app',
    });
    const token = await tokenRequest(
      world,
      { grant_type: 'client_credentials' },
      { id: app.appId, secret: app.secret.value },
    );
    expect(token.status).toBe(200);
    const res = await api('/search', String(token.body.access_token));
    expect(res.status).toBe(401);
    expect(res.json.error?.code).toBe('token_wrong_audience');
  });

  it('refuses a revoked token everywhere within a second (RFC 7009), and introspection says inactive', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(client);
    expect((await api('/search', access_token)).status).toBe(200);
    const active = await oidc.tokenIntrospection(client, access_token);
    expect(active).toMatchObject({
      active: true,
      client_id: world.app.clientId,
      aud: [world.service.systemName],
    });

    await oidc.tokenRevocation(client, access_token);
    const took = await until(async () => (await api('/search', access_token)).status === 401, 1000, 25);
    expect(took).toBeLessThan(1000);
    const res = await api('/search', access_token);
    expect(res.json.error?.code).toBe('token_revoked');
    expect((await oidc.tokenIntrospection(client, access_token)).active).toBe(false);
  });

  it('counts the tokens issued per application', async () => {
    await world.server.counter.flush();
    const rows = await queryTokenCounts(world.store.db, {
      applicationId: world.app.id,
      from: new Date(Date.now() - 2 * 3_600_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const total = rows.filter((r) => r.grantType === 'client_credentials').reduce((n, r) => n + r.count, 0);
    expect(total).toBe(6);
  });

  it('counts tokens of the hour a `from` falls inside, as /usage does (floored to the bucket)', async () => {
    await world.server.counter.flush();
    const { token } = await access.createAdminToken(world.deps, systemActor, {
      name: 'counts',
      scope: 'read',
    });
    const [first] = await queryTokenCounts(world.store.db, {
      applicationId: world.app.id,
      from: new Date(Date.now() - 2 * 3_600_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const inside = new Date(Date.parse(first!.bucket) + 61_000).toISOString();
    const res = await world.control.inject({
      method: 'GET',
      url: `/admin/api/applications/${world.app.id}/oauth/tokens-issued?from=${inside}&to=${new Date(Date.parse(first!.bucket) + 3_600_000).toISOString()}`,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.statusCode).toBe(200);
    const data = res.json().data as { bucket: string; count: number }[];
    expect(data.map((d) => d.bucket)).toContain(first!.bucket);
    expect(data.reduce((n, d) => n + d.count, 0)).toBeGreaterThan(0);
  });

  it("gives tokens the service's accessTokenTtl", async () => {
    await updateServiceOAuthSettings(world.deps, systemActor, world.service.id, { accessTokenTtl: 120 });
    try {
      const tokens = await oidc.clientCredentialsGrant(client);
      expect(tokens.expires_in).toBe(120);
      const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString());
      expect(claims.exp - claims.iat).toBe(120);
    } finally {
      await updateServiceOAuthSettings(world.deps, systemActor, world.service.id, { accessTokenTtl: 600 });
    }
  });

  it('stops a suspended application at the token endpoint and at the gateway', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(client);
    await access.transitionApplication(world.deps, systemActor, world.app.id, 'suspend');
    const token = await tokenRequest(world, { grant_type: 'client_credentials' });
    expect(token.body.error).toBe('invalid_client');
    await until(async () => (await api('/search', access_token)).status === 403, 1000, 25);
    expect((await api('/search', access_token)).json.error?.code).toBe('application_suspended');
  });
});
