/**
 * Signing-key rotation under traffic (no call fails), keys sealed at rest, and services that accept the JWTs of
 * an external identity provider (issuer + JWKS URL, a claim naming the application). Runs on SQLite and PostgreSQL.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type KeyLike, SignJWT, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as access from '../../src/access/index.js';
import * as catalog from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { composeGatewayRole } from '../../src/cli/roles.js';
import { loadConfig } from '../../src/config/index.js';
import { type Gateway, createGateway } from '../../src/gateway/index.js';
import {
  OAuthTokenVerifier,
  updateClientOAuthSettings,
  updateServiceOAuthSettings,
} from '../../src/oauth/index.js';
import { type Upstream, call, startUpstream, until } from '../gateway/fixtures.js';
import { dialects } from '../support/stores.js';
import { type OAuthWorld, startOAuthWorld, tokenRequest } from './harness.js';

describe.each(dialects)('signing keys and external issuers on %s', (dialect) => {
  let world: OAuthWorld;
  let upstream: Upstream;
  let gateway: Gateway;
  let gatewayUrl: string;
  let verifier: OAuthTokenVerifier;
  let client: oidc.Configuration;

  beforeAll(async () => {
    upstream = await startUpstream();
    world = await startOAuthWorld(dialect, { upstream: upstream.url });
    verifier = await OAuthTokenVerifier.create({
      db: world.store.db,
      clock: { now: () => Date.now() },
      issuer: world.issuer,
      // the test identity provider listens on loopback, which only an allow-listed host may be
      outboundAllowHosts: ['127.0.0.1'],
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
      // on a busy machine a few rounds more, so every rotation meets calls before and after it
      while (rotating || statuses.length <= 10) {
        const { access_token } = await oidc.clientCredentialsGrant(client);
        kids.add(kidOf(access_token));
        statuses.push((await api(world.service.systemName, access_token)).status);
        statuses.push((await api(world.service.systemName, old)).status);
      }
    })();
    // rotations 150 ms apart (longer than the gateway takes to learn the next key), and each only once traffic has
    // met the key before it (never two rotations within one grant, however slow the machine); the traffic goes on
    // until the last key has signed a token
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 150));
      await until(() => kids.size === i + 1 && statuses.length >= 2 * (i + 1), 20_000);
      await world.server.rotateKeys();
    }
    await until(() => kids.size === 4, 20_000);
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

  it('accepts a token signed by a key made just after its last reload, waiting for the next one it may make', async () => {
    // a verifier of its own, driven by no change feed: only the unknown key id can make it reload
    const own = await OAuthTokenVerifier.create({
      db: world.store.db,
      clock: { now: () => Date.now() },
      issuer: world.issuer,
    });
    try {
      await own.reloadKeys();
      // two rotations: the key now signing was made after the verifier read the keys
      await world.server.rotateKeys();
      await world.server.rotateKeys();
      const token = (await oidc.clientCredentialsGrant(client)).access_token;
      const service = { id: world.service.id, systemName: world.service.systemName };
      const started = Date.now();
      const verdict = await own.verify(token, service);
      expect(verdict).not.toHaveProperty('rejected');
      expect(Date.now() - started).toBeLessThan(1500);
      // a forged key id waits as long, then is refused, with one reload for all of them
      const forged = `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'forged', typ: 'at+jwt' })).toString('base64url')}.e30.c2ln`;
      const forgedVerdicts = await Promise.all([1, 2, 3].map(() => own.verify(forged, service)));
      expect(forgedVerdicts.map((v) => (v as { rejected: string }).rejected)).toEqual([
        'token_invalid',
        'token_invalid',
        'token_invalid',
      ]);
    } finally {
      own.close();
    }
  });

  describe('an external identity provider', () => {
    let idp: Server;
    let idpUrl: string;
    let privateKey: KeyLike;
    let serviceName: string;
    let planId: string;
    let hitsId: string;
    let externalServiceId: string;
    const idpHits: string[] = [];

    beforeAll(async () => {
      const pair = await generateKeyPair('RS256', { extractable: true });
      privateKey = pair.privateKey;
      const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' };
      idp = createServer((req, res) => {
        idpHits.push(req.url ?? '');
        if (req.url === '/moved') res.writeHead(302, { location: '/jwks' }).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
      idpUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;

      serviceName = `ext${world.service.systemName}`;
      const service = await catalog.createService(world.deps, systemActor, {
        name: 'Externally secured',
        systemName: serviceName,
        upstreamProduction: upstream.url,
        upstreamSandbox: upstream.url,
        authMode: 'oauth2',
      });
      externalServiceId = service.id;
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
      await updateServiceOAuthSettings(
        world.deps,
        systemActor,
        service.id,
        {
          tokenIssuer: 'external',
          externalIssuer: 'https://idp.example.org/',
          externalJwksUrl: `${idpUrl}/jwks`,
          externalAudience: 'weather',
          externalClientClaim: 'azp',
        },
        { allowHosts: ['127.0.0.1'] },
      );
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

    it('a gateway composed as trellis start composes it fetches from hosts TRELLIS_OUTBOUND_ALLOW_HOSTS names', async () => {
      const token = await idpToken({ azp: 'idp-client-1', sub: 'composed' });
      const gatewayWith = async (env: Record<string, string>) => {
        const config = loadConfig(env, { databaseUrl: world.store.url, publicUrl: world.config.publicUrl });
        const role = await composeGatewayRole({
          config,
          store: world.store,
          logger: pino({ level: 'silent' }),
        });
        const { port } = await role.gateway.listen(0, '127.0.0.1');
        try {
          return await call(`http://127.0.0.1:${port}/${serviceName}/search`, {
            headers: { authorization: `Bearer ${token}` },
          });
        } finally {
          await role.close();
        }
      };
      expect((await gatewayWith({ TRELLIS_OUTBOUND_ALLOW_HOSTS: '127.0.0.1' })).status).toBe(200);
      const refused = await gatewayWith({});
      expect(refused.status).toBe(401);
      expect(refused.json.error?.code).toBe('token_invalid');
    });

    it('refuses to register a JWKS URL on a refused address or scheme (SSRF)', async () => {
      const token = await adminToken(world);
      const patch = (externalJwksUrl: string) =>
        world.control.inject({
          method: 'PATCH',
          url: `/admin/api/services/${externalServiceId}/oauth`,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          payload: { externalJwksUrl },
        });
      for (const url of [
        'http://169.254.169.254/latest/meta-data/',
        'http://127.0.0.1:9/jwks',
        'http://10.0.0.1/jwks',
        'http://[::1]/jwks',
        'http://[fd00:ec2::254]/',
      ]) {
        const res = await patch(url);
        expect(res.statusCode, url).toBe(422);
        expect(res.json().error.code, url).toBe('outbound_address_refused');
      }
      const file = await patch('file:///etc/passwd');
      expect(file.statusCode).toBe(400);
      expect(file.json().error.code).toBe('validation_failed');
      // the registered URL is unchanged
      const now = await world.control.inject({
        method: 'GET',
        url: `/admin/api/services/${externalServiceId}/oauth`,
        headers: { authorization: `Bearer ${token}` },
      });
      expect(now.json().externalJwksUrl).toBe(`${idpUrl}/jwks`);
    });

    it('a verifier without the allow-list never fetches a JWKS from a loopback address', async () => {
      const before = idpHits.length;
      const guarded = await OAuthTokenVerifier.create({
        db: world.store.db,
        clock: { now: () => Date.now() },
        issuer: world.issuer,
      });
      try {
        const verdict = await guarded.verify(await idpToken({ azp: 'idp-client-1' }), {
          id: externalServiceId,
          systemName: serviceName,
        });
        expect(verdict).toMatchObject({ rejected: 'token_invalid' });
        expect(idpHits.length).toBe(before);
      } finally {
        guarded.close();
      }
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

    it('does not follow a redirect from the JWKS URL', async () => {
      const allow = { allowHosts: ['127.0.0.1'] };
      await updateServiceOAuthSettings(
        world.deps,
        systemActor,
        externalServiceId,
        { externalJwksUrl: `${idpUrl}/moved` },
        allow,
      );
      const moved = await OAuthTokenVerifier.create({
        db: world.store.db,
        clock: { now: () => Date.now() },
        issuer: world.issuer,
        outboundAllowHosts: allow.allowHosts,
      });
      try {
        const verdict = await moved.verify(await idpToken({ azp: 'idp-client-1' }), {
          id: externalServiceId,
          systemName: serviceName,
        });
        expect(verdict).toMatchObject({ rejected: 'token_invalid' });
        expect(idpHits.at(-1)).toBe('/moved');
      } finally {
        moved.close();
        await updateServiceOAuthSettings(
          world.deps,
          systemActor,
          externalServiceId,
          { externalJwksUrl: `${idpUrl}/jwks` },
          allow,
        );
      }
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
