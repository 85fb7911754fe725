/**
 * The authorization-code flow with PKCE, driven in headless Chromium: the end user signs in on the provider's own
 * (test) login page, which sends them back to Trellis with a signed assertion; Trellis shows its consent page in
 * the portal's branding; openid-client exchanges the code, refreshes, and the gateway accepts the tokens until
 * the grant is revoked. Runs on SQLite and PostgreSQL.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updatePortalSettings } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import { type Gateway, createGateway } from '../../src/gateway/index.js';
import {
  OAuthTokenVerifier,
  generateLoginSecret,
  signLoginAssertion,
  updateClientOAuthSettings,
  updateServiceOAuthSettings,
} from '../../src/oauth/index.js';
import { launchChromium } from '../browser/browser-harness.js';
import { type Upstream, call, startUpstream, until } from '../gateway/fixtures.js';
import { dialects } from '../support/stores.js';
import { type OAuthWorld, startOAuthWorld } from './harness.js';

function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
  });
}

describe.each(dialects)('authorization code + PKCE in Chromium on %s', (dialect) => {
  let world: OAuthWorld;
  let upstream: Upstream;
  let gateway: Gateway;
  let gatewayUrl: string;
  let verifier: OAuthTokenVerifier;
  let browser: Browser;
  let login: { server: Server; url: string };
  let app: { server: Server; url: string };
  let client: oidc.Configuration;
  let loginSecret: string;
  const callbacks: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    world = await startOAuthWorld(dialect, { upstream: upstream.url });
    verifier = await OAuthTokenVerifier.create({
      db: world.store.db,
      clock: { now: () => Date.now() },
      issuer: world.issuer,
    });
    gateway = createGateway({
      config: world.config,
      store: world.store,
      tokenVerifier: verifier,
      logger: { info: () => {}, warn: () => {}, error: () => {} } as never,
    });
    gatewayUrl = `http://127.0.0.1:${(await gateway.listen(0, '127.0.0.1')).port}`;

    // The provider's own sign-in page: every user whose password is "secret" gets in.
    login = await listen(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && url.pathname === '/login') {
        const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(`<!doctype html><form method="post" action="/login">
<input type="hidden" name="interaction" value="${esc(url.searchParams.get('interaction') ?? '')}">
<input type="hidden" name="return_to" value="${esc(url.searchParams.get('return_to') ?? '')}">
<input name="username" id="username"><input name="password" id="password" type="password">
<button id="signin" type="submit">Sign in</button></form>`);
        return;
      }
      if (req.method === 'POST' && url.pathname === '/login') {
        const form = await readForm(req);
        if (form.get('password') !== 'secret') {
          res.writeHead(401).end('wrong password');
          return;
        }
        const assertion = await signLoginAssertion({
          secret: loginSecret,
          issuer: world.issuer,
          interaction: form.get('interaction') ?? '',
          subject: form.get('username') ?? '',
        });
        const back = new URL(form.get('return_to') ?? '');
        back.searchParams.set('assertion', assertion);
        res.writeHead(303, { location: back.href }).end();
        return;
      }
      res.writeHead(404).end();
    });
    // The third-party application's redirect URI.
    app = await listen((req, res) => {
      if (req.url?.startsWith('/callback')) callbacks.push(`${app.url}${req.url}`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('back at the app');
    });

    await updateServiceOAuthSettings(world.deps, systemActor, world.service.id, {
      loginUrl: `${login.url}/login`,
      refreshTokenTtl: 3600,
      accessTokenTtl: 120,
    });
    loginSecret = (await generateLoginSecret(world.deps, systemActor, world.server.sealer, world.service.id))
      .loginSecret;
    await updateClientOAuthSettings(world.deps, systemActor, world.app.id, {
      redirectUris: [`${app.url}/callback`],
    });
    await updatePortalSettings(world.deps, systemActor, {
      name: 'Weather Co <Developers>',
      primaryColor: '#224466',
    });

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
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    verifier?.close();
    await world?.close();
    await upstream?.close();
    login?.server.close();
    app?.server.close();
  });

  async function startFlow(page: Page) {
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(client, {
      redirect_uri: `${app.url}/callback`,
      scope: 'search',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    });
    await page.goto(url.href);
    await page.waitForSelector('#username');
    await page.fill('#username', 'alice@example.org');
    await page.fill('#password', 'secret');
    await page.click('#signin');
    await page.waitForSelector('#allow');
    return { codeVerifier, state };
  }

  const api = (path: string, token: string) =>
    call(`${gatewayUrl}/${world.service.systemName}${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });

  it('signs in at the provider, consents in the portal branding, and gets tokens the gateway accepts', async () => {
    const page = await browser.newPage();
    const { codeVerifier, state } = await startFlow(page);
    // the consent page: portal branding, escaped, the application and the scope asked for
    expect(await page.textContent('header')).toContain('Weather Co <Developers>');
    expect(await page.textContent('main')).toContain('Acme dashboard');
    expect(await page.textContent('#scopes')).toContain('Search forecasts');
    await page.screenshot({ path: 'test-results/screenshots/oauth-consent.png', fullPage: true });
    await page.click('#allow');
    await until(() => callbacks.length > 0, 5000);
    await page.close();

    const tokens = await oidc.authorizationCodeGrant(client, new URL(callbacks.shift()!), {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
    });
    expect(tokens.scope).toBe('search');
    expect(tokens.refresh_token).toBeTruthy();
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({
      sub: 'alice@example.org',
      client_id: world.app.clientId,
      aud: world.service.systemName,
    });
    // the service's accessTokenTtl, not oidc-provider's default
    expect(tokens.expires_in).toBe(120);
    expect(claims.exp - claims.iat).toBe(120);

    expect((await api('/search', tokens.access_token)).status).toBe(200);
    expect((await api('/reports', tokens.access_token)).json.error?.code).toBe('insufficient_scope');

    // refresh (rotating): a new access token works, the old refresh token is spent
    const refreshed = await oidc.refreshTokenGrant(client, tokens.refresh_token!);
    expect(refreshed.expires_in).toBe(120);
    expect((await api('/search', refreshed.access_token)).status).toBe(200);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    await expect(oidc.refreshTokenGrant(client, tokens.refresh_token!)).rejects.toThrow();

    // revoking the refresh token revokes the grant: its access tokens are refused everywhere within a second
    const fresh = await oidc.refreshTokenGrant(client, refreshed.refresh_token!).catch(() => undefined);
    const grantToken = fresh?.access_token ?? refreshed.access_token;
    await oidc.tokenRevocation(client, fresh?.refresh_token ?? refreshed.refresh_token!);
    await until(async () => (await api('/search', grantToken)).status === 401, 1000, 25);
    expect((await api('/search', grantToken)).json.error?.code).toBe('token_revoked');
  });

  it('returns access_denied to the application when the user says no', async () => {
    const page = await browser.newPage();
    await startFlow(page);
    await page.click('#deny');
    await until(() => callbacks.length > 0, 5000);
    await page.close();
    const back = new URL(callbacks.shift()!);
    expect(back.searchParams.get('error')).toBe('access_denied');
  });

  it('refuses a forged login assertion', async () => {
    const page = await browser.newPage();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(client, {
      redirect_uri: `${app.url}/callback`,
      scope: 'search',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: oidc.randomState(),
    });
    await page.goto(url.href);
    await page.waitForSelector('#username');
    const interaction = await page.inputValue('input[name=interaction]');
    const forged = await signLoginAssertion({
      secret: 'not-the-service-secret',
      issuer: world.issuer,
      interaction,
      subject: 'mallory',
    });
    const res = await page.goto(`${world.issuer}/interaction/${interaction}/login?assertion=${forged}`);
    expect(res?.status()).toBe(400);
    expect(await page.textContent('body')).toContain('could not be verified');
    await page.close();
  });
});
