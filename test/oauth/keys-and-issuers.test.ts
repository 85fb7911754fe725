/**
 * Signing-key rotation under traffic (no call fails), keys sealed at rest, and services that accept the JWTs of
 * an external identity provider (issuer + JWKS URL, a claim naming the application).
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type KeyLike, SignJWT, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as access from '../../src/access/index.js';
import * as catalog from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { type Gateway, createGateway } from '../../src/gateway/index.js';
import {
  OAuthTokenVerifier,
  updateClientOAuthSettings,
  updateServiceOAuthSettings,
} from '../../src/oauth/index.js';
import { type Upstream, call, startUpstream, until } from '../gateway/fixtures.js';
import { type OAuthWorld, startOAuthWorld, tokenRequest } from './harness.js';

describe('signing keys and external issuers', () => {
  let world: OAuthWorld;
  let upstream: Upstream;
  let gateway: Gateway;
  let gatewayUrl: string;
  let verifier: OAuthTokenVerifier;
  let client: oidc.Configuration;

  beforeAll(async () => {
    upstream = await startUpstream();
    world = await startOAuthWorld('sqlite', { upstream: upstream.url });
    verifier = await OAuthTokenVerifier.create({
      db: world.store.db,
      clock: { now: () => Date.now() },
      issuer: world.issuer,
    });
    gateway = createGateway({
      config: { ...world.config, snapshotRefreshMs: 100 },
      store: world.store,
      tokenVerifier: verifier,
      logger: { info: () => {}, warn: () => {}, error: () => {} } as never,
    });
    gatewayUrl = `http://127.0.0.1:${(await gateway.listen(0, '127.0.0.1')).port}`;
    client = await oidc.discovery(
      new URL(world.issuer),
      world.app.clientId,
      world.app.clientSecret,
      undefined,
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
  });

  afterAll(async () => {
    await gateway?.close();
    verifier?.close();
    await world?.close();
    await upstream?.close();
  });

  const api = (service: string, token: string) =>
    call(`${gatewayUrl}/${service}/search`, { headers: { authorization: `Bearer ${token}` } });
  const kidOf = (jwt: string) =>
    JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid as string;

  it('stores private keys sealed and publishes only public ones', async () => {
    const rows = await world.store.db
      .withTables<{ oauth_signing_keys: { kid: string; private_jwk: string; state: string } }>()
      .selectFrom('oauth_signing_keys')
      .selectAll()
      .execute();
    expect(rows.length).toBe(2);
    for (const r of rows) {
      expect(r.private_jwk.startsWith('aes256gcm.v1.')).toBe(true);
      expect(r.private_jwk).not.toContain('"d"');
    }
    const jwks = (await (await fetch(`${world.issuer}/jwks`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual(rows.map((r) => r.kid).sort());
    for (const k of jwks.keys) expect(k.d).toBeUndefined();
  });

  it('rotates keys under traffic without a failed call', async () => {
    const old = (await oidc.clientCredentialsGrant(client)).access_token;
    const kids = new Set<string>([kidOf(old)]);
    const statuses: number[] = [];
    let rotating = true;
    const traffic = (async () => {
      while (rotating) {
        const { access_token } = await oidc.clientCredentialsGrant(client);
        kids.add(kidOf(access_token));
        statuses.push((await api(world.service.systemName, access_token)).status);
        statuses.push((await api(world.service.systemName, old)).status);
      }
    })();
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 150));
      await world.server.rotateKeys();
    }
    await new Promise((r) => setTimeout(r, 150));
    rotating = false;
    await traffic;
    expect(kids.size).toBe(4);
    expect(statuses.length).toBeGreaterThan(10);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // the JWKS publishes the current key, the next one, and the retired ones until they expire
    const jwks = (await (await fetch(`${world.issuer}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.length).toBe(5);
  });

  it('picks up a rotation made by another control process through the management API', async () => {
    const before = kidOf((await oidc.clientCredentialsGrant(client)).access_token);
    const rotated = await world.control.inject({
      method: 'POST',
      url: '/admin/api/oauth/signing-keys/rotate',
      headers: { authorization: `Bearer ${await adminToken(world)}`, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(rotated.statusCode).toBe(200);
    // this process signs with its old key until it notices (keyCheckMs); the old key stays valid meanwhile
    const meanwhile = (await oidc.clientCredentialsGrant(client)).access_token;
    expect((await api(world.service.systemName, meanwhile)).status).toBe(200);
    expect(await world.server.reloadKeysIfChanged()).toBe(true);
    const after = (await oidc.clientCredentialsGrant(client)).access_token;
    expect(kidOf(after)).toBe(rotated.json().current);
    expect(kidOf(after)).not.toBe(before);
    expect((await api(world.service.systemName, after)).status).toBe(200);
  });

  describe('an external identity provider', () => {
    let idp: Server;
    let idpUrl: string;
    let privateKey: KeyLike;
    let serviceName: string;
    let planId: string;
    let hitsId: string;

    beforeAll(async () => {
      const pair = await generateKeyPair('RS256', { extractable: true });
      privateKey = pair.privateKey;
      const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' };
      idp = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
      idpUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;

      serviceName = `ext${world.service.systemName}`;
      const service = await catalog.createService(world.deps, systemActor, {
        name: 'Externally secured',
        systemName: serviceName,
        upstreamProduction: upstream.url,
        authMode: 'oauth2',
      });
      const metrics = await catalog.listMetrics(world.store.db, service.id);
      await catalog.createMappingRule(world.deps, systemActor, service.id, {
        httpMethod: 'GET',
        pattern: '/',
        metricId: metrics[0]!.id,
      });
      planId = (
        await catalog.createPlan(world.deps, systemActor, service.id, { name: 'Basic', systemName: 'basic' })
      ).id;
      hitsId = metrics[0]!.id;
      const app = await access.createApplication(world.deps, systemActor, {
        accountId: world.accountId,
        serviceId: service.id,
        name: 'IdP client',
      });
      await updateServiceOAuthSettings(world.deps, systemActor, service.id, {
        tokenIssuer: 'external',
        externalIssuer: 'https://idp.example.org/',
        externalJwksUrl: `${idpUrl}/jwks`,
        externalAudience: 'weather',
        externalClientClaim: 'azp',
      });
      await updateClientOAuthSettings(world.deps, systemActor, app.id, { externalClientId: 'idp-client-1' });
      // the gateway learns of the new issuer through its change feed
      await gateway.refresh();
    });

    afterAll(() => {
      idp?.close();
    });

    const idpToken = (claims: Record<string, unknown>, expiresIn = 300) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'idp-key-1' })
        .setIssuer('https://idp.example.org/')
        .setAudience('weather')
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn)
        .sign(privateKey);

    it('accepts its tokens, mapping the azp claim to the application', async () => {
      const token = await idpToken({ azp: 'idp-client-1', sub: 'user-7' });
      await until(async () => (await api(serviceName, token)).status === 200, 2000, 50);
      expect((await api(serviceName, token)).status).toBe(200);
    });

    it("keys end-user limits by the token's subject when the plan names no other key", async () => {
      await catalog.setPlanLimit(world.deps, systemActor, planId, {
        metricId: hitsId,
        period: 'eternity',
        value: 2,
        scope: 'end_user',
      });
      await gateway.refresh();
      const alice = await idpToken({ azp: 'idp-client-1', sub: 'alice' });
      const bob = await idpToken({ azp: 'idp-client-1', sub: 'bob' });
      expect((await api(serviceName, alice)).status).toBe(200);
      expect((await api(serviceName, alice)).status).toBe(200);
      const third = await api(serviceName, alice);
      expect(third.status).toBe(429);
      expect(third.json.error?.code).toBe('limit_exceeded');
      // another end user of the same application has a budget of their own
      expect((await api(serviceName, bob)).status).toBe(200);
      const limit = (await catalog.getPlan(world.store.db, planId)).limits[0]!;
      await catalog.deletePlanLimit(world.deps, systemActor, planId, limit.id);
      await gateway.refresh();
    });

    it('refuses unknown clients, expired tokens and tokens for other audiences', async () => {
      expect((await api(serviceName, await idpToken({ azp: 'someone-else' }))).json.error?.code).toBe(
        'token_unknown_client',
      );
      expect((await api(serviceName, await idpToken({ azp: 'idp-client-1' }, -60))).json.error?.code).toBe(
        'token_expired',
      );
      const trellisToken = (await oidc.clientCredentialsGrant(client)).access_token;
      expect((await api(serviceName, trellisToken)).json.error?.code).toBe('token_invalid');
    });

    it('does not issue Trellis tokens to clients of an externally secured service', async () => {
      const apps = await access.listApplications(world.store.db, { q: 'IdP client' }, { limit: 5 });
      const app = apps.data[0]!;
      const res = await tokenRequest(
        world,
        { grant_type: 'client_credentials' },
        { id: app.appId, secret: 'whatever' },
      );
      expect(res.body.error).toBe('invalid_client');
    });
  });
});

async function adminToken(world: OAuthWorld): Promise<string> {
  const created = await access.createAdminToken(world.deps, systemActor, {
    name: 'rotate',
    scope: 'read_write',
  });
  return created.token;
}
