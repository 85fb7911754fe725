/**
 * An OAuth world on real sockets: a store of its own (SQLite or PostgreSQL), an `oauth2` service with a method
 * and a plan, an approved account with an application (client id and secret), and a control server with the
 * authorization server mounted, listening on a free port (its public URL is the issuer, so it is known first).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import * as access from '../../src/access/index.js';
import * as catalog from '../../src/catalog/index.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { type ChangeDeps, systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import {
  type OAuthServer,
  oauthAdminRoutes,
  oauthControlModule,
  signLoginAssertion,
} from '../../src/oauth/index.js';
import type { DialectName } from '../../src/store/index.js';
import { type TestStore, freshStore } from '../support/stores.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface OAuthWorld {
  store: TestStore;
  config: Config;
  deps: ChangeDeps;
  control: ControlApp;
  server: OAuthServer;
  issuer: string;
  baseUrl: string;
  service: { id: string; systemName: string; hitsId: string; searchId: string; reportsId: string };
  planId: string;
  accountId: string;
  app: { id: string; clientId: string; clientSecret: string };
  close(): Promise<void>;
}

let counter = 0;

export async function startOAuthWorld(
  dialect: DialectName,
  options: { upstream?: string; oauthKeySecret?: string } = {},
): Promise<OAuthWorld> {
  const store = await freshStore(dialect);
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = loadConfig(
    {},
    {
      databaseUrl: store.url,
      controlPort: port,
      publicUrl: baseUrl,
      oauthKeySecret: options.oauthKeySecret ?? 'test-key-encryption-secret',
    },
  );
  // the control server's clock is the real one: oidc-provider reads the system clock for token times
  const clock = systemClock;
  const deps: ChangeDeps = { db: store.db, clock };
  const n = ++counter;
  const systemName = `weather${n}${Math.random().toString(36).slice(2, 6)}`;
  const service = await catalog.createService(deps, systemActor, {
    name: 'Weather API',
    systemName,
    upstreamProduction: options.upstream ?? 'http://127.0.0.1:9/',
    upstreamSandbox: options.upstream ?? 'http://127.0.0.1:9/',
    authMode: 'oauth2',
  });
  const metrics = await catalog.listMetrics(store.db, service.id);
  const hitsId = metrics.find((m) => m.systemName === 'hits')!.id;
  const search = await catalog.createMetric(deps, systemActor, service.id, 'method', {
    systemName: 'search',
    friendlyName: 'Search forecasts',
    description: 'Look up the forecast of a place.',
  });
  const reports = await catalog.createMetric(deps, systemActor, service.id, 'method', {
    systemName: 'reports',
    friendlyName: 'Download reports',
  });
  await catalog.createMappingRule(deps, systemActor, service.id, {
    httpMethod: 'GET',
    pattern: '/search',
    metricId: search.id,
  });
  await catalog.createMappingRule(deps, systemActor, service.id, {
    httpMethod: 'GET',
    pattern: '/reports',
    metricId: reports.id,
  });
  await catalog.createMappingRule(deps, systemActor, service.id, {
    httpMethod: 'GET',
    pattern: '/',
    metricId: hitsId,
  });
  const plan = await catalog.createPlan(deps, systemActor, service.id, {
    name: 'Basic',
    systemName: 'basic',
  });
  const account = await access.createAccount(deps, systemActor, { name: 'Acme', state: 'approved' });
  const created = await access.createApplication(deps, systemActor, {
    accountId: account.id,
    serviceId: service.id,
    name: 'Acme dashboard',
  });

  let server: OAuthServer | undefined;
  const control = await buildControlApp(
    { config, store, clock },
    {
      modules: [oauthControlModule({ onReady: (s) => (server = s), counterFlushMs: 0, keyCheckMs: 60_000 })],
      adminApi: [oauthAdminRoutes],
    },
  );
  await control.listen({ port, host: '127.0.0.1' });
  return {
    store,
    config,
    deps,
    control,
    server: server!,
    issuer: `${baseUrl}/oauth`,
    baseUrl,
    service: { id: service.id, systemName, hitsId, searchId: search.id, reportsId: reports.id },
    planId: plan.id,
    accountId: account.id,
    app: { id: created.id, clientId: created.appId, clientSecret: created.secret.value },
    close: async () => {
      await control.close();
      await store.cleanup();
    },
  };
}

/** A token request with HTTP Basic client authentication (RFC 6749 §2.3.1), outside any client library. */
export async function tokenRequest(
  world: OAuthWorld,
  body: Record<string, string>,
  credentials: { id: string; secret: string } = { id: world.app.clientId, secret: world.app.clientSecret },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const basic = Buffer.from(
    `${encodeURIComponent(credentials.id)}:${encodeURIComponent(credentials.secret)}`,
  ).toString('base64');
  const res = await fetch(`${world.issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Cookies of one browser-less user agent talking to one server (name → value; paths and expiry ignored). */
class CookieJar {
  private readonly cookies = new Map<string, string>();

  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

/**
 * Walks the end user's side of the authorization-code flow over HTTP, without a browser: the authorization
 * request with PKCE (S256), the service's login page (the assertion it would send back is signed here with
 * the service's login secret), then consent. The service needs a `loginUrl` (never fetched) and the client
 * `redirectUri` (never fetched either: the code is read from the redirect). Resolves with a fresh code and its
 * verifier.
 */
export async function authorizationCodeOverHttp(
  world: OAuthWorld,
  options: { loginSecret: string; loginUrl: string; redirectUri: string; subject: string; scope: string },
): Promise<{ code: string; codeVerifier: string }> {
  const codeVerifier = randomBytes(32).toString('base64url');
  const auth = new URL(`${world.issuer}/auth`);
  auth.search = new URLSearchParams({
    response_type: 'code',
    client_id: world.app.clientId,
    redirect_uri: options.redirectUri,
    scope: options.scope,
    code_challenge: createHash('sha256').update(codeVerifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
  }).toString();
  const jar = new CookieJar();
  let next: { url: string; form?: Record<string, string> } = { url: auth.href };
  // authorize → interaction → login page → back with the assertion → resume → consent → resume → redirect URI
  for (let hop = 0; hop < 12; hop++) {
    const res = await fetch(next.url, {
      method: next.form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: jar.header(),
        ...(next.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(next.form ? { body: new URLSearchParams(next.form).toString() } : {}),
    });
    jar.take(res);
    const location = res.headers.get('location');
    if (location) {
      await res.body?.cancel();
      const target = new URL(location, next.url);
      if (target.href.startsWith(options.redirectUri)) {
        const code = target.searchParams.get('code');
        if (!code) throw new Error(`no code in the redirect: ${target.href}`);
        return { code, codeVerifier };
      }
      if (target.href.startsWith(options.loginUrl)) {
        const assertion = await signLoginAssertion({
          secret: options.loginSecret,
          issuer: world.issuer,
          interaction: target.searchParams.get('interaction') ?? '',
          subject: options.subject,
        });
        const back = new URL(target.searchParams.get('return_to') ?? '');
        back.searchParams.set('assertion', assertion);
        next = { url: back.href };
      } else {
        next = { url: target.href };
      }
      continue;
    }
    const html = await res.text();
    const consent =
      /<form method="post" action="([^"]+\/confirm)"><input type="hidden" name="csrf" value="([^"]+)">/.exec(
        html,
      );
    if (res.status !== 200 || !consent) throw new Error(`unexpected answer ${res.status} at ${next.url}`);
    next = { url: new URL(consent[1]!, next.url).href, form: { csrf: consent[2]! } };
  }
  throw new Error('the authorization flow did not reach the redirect URI');
}
