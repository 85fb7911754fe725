/**
 * The authorization server: oidc-provider (certified, OAuth 2.0 + OpenID Connect) configured for Trellis.
 *
 * - Clients are applications of `oauth2` services (clients.ts); secrets are checked against their hashes.
 * - Every access token is a JWT (RFC 9068) for one resource, the client's service (RFC 8707 resource
 *   indicators): `aud` is the service's system name, the scopes are what the plan allows, the lifetime is the
 *   service's.
 * - Grants, codes, refresh tokens and sessions persist in the Trellis store (store-adapter.ts).
 * - Signing keys come from the database (signing-keys.ts). oidc-provider's keystore is fixed when it is built, so
 *   a key rotation builds a new provider; requests in flight finish on the old one.
 */
import { type JWTPayload, createLocalJWKSet, jwtVerify } from 'jose';
import Provider, { type AdapterPayload, type Configuration, errors } from 'oidc-provider';
import type { ChangeDeps } from '../events/index.js';
import { runChange, systemActor } from '../events/index.js';
import { type Clock, systemClock } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import {
  clientMetadataOf,
  clientProperties,
  clientString,
  installHashedSecretCheck,
  resourceOf,
} from './clients.js';
import type { Sealer } from './key-encryption.js';
import { defaultAccessTokenTtl, defaultRefreshTokenTtl } from './oauth-settings.js';
import { findServiceSettings, insertRevocation, isRevoked } from './oauth.store.js';
import { planScopes } from './scopes.js';
import {
  SIGNING_ALG,
  keySetVersion,
  loadCookieKeys,
  loadPrivateJwks,
  loadPublicJwks,
} from './signing-keys.js';
import { storeAdapterFactory } from './store-adapter.js';
import type { TokenCounter } from './token-counter.js';

/** Where the server is mounted on the control server. */
export const OAUTH_PATH = '/oauth';

/** How long a revocation is kept when the token's own expiry is unknown: longer than any token lives. */
const REVOCATION_HORIZON_MS = 24 * 3_600_000;

export interface AuthorizationServerDeps {
  db: Executor;
  /** For the audit log and outbox of revocations (the control server's clock). */
  changes: ChangeDeps;
  sealer: Sealer;
  /** The issuer identifier: the control server's public URL + /oauth (RFC 8414 §2). */
  issuer: string;
  counter: TokenCounter;
  logger: { error(data: object, message?: string): void; warn(data: object, message?: string): void };
  /** oidc-provider reads the system clock itself; this is only overridden by tests that know why. */
  clock?: Clock;
}

/** A built provider, with the signing key it signs access tokens with. */
export interface BuiltProvider {
  provider: Provider;
  keyVersion: string;
}

/** Claims of an access token this server signed (RFC 9068 §2.2, plus `gid`, the grant of delegated tokens). */
interface AccessTokenClaims extends JWTPayload {
  client_id?: string;
  scope?: string;
  gid?: string;
}

/** Verifies a JWT access token of this server for introspection and revocation; undefined when not valid. */
async function inspectAccessToken(
  deps: AuthorizationServerDeps,
  model: 'AccessToken' | 'ClientCredentials',
  jwt: string,
): Promise<AdapterPayload | undefined> {
  const clock = deps.clock ?? systemClock;
  let payload: AccessTokenClaims;
  try {
    const keys = createLocalJWKSet({ keys: await loadPublicJwks(deps.db, clock) });
    ({ payload } = await jwtVerify<AccessTokenClaims>(jwt, keys, {
      issuer: deps.issuer,
      algorithms: [SIGNING_ALG],
      typ: 'at+jwt',
      currentDate: new Date(clock.now()),
    }));
  } catch {
    return undefined;
  }
  const delegated = typeof payload.gid === 'string';
  if (delegated !== (model === 'AccessToken')) return undefined;
  if (typeof payload.jti !== 'string' || typeof payload.client_id !== 'string') return undefined;
  if (await isRevoked(deps.db, 'token', payload.jti)) return undefined;
  if (delegated && (await isRevoked(deps.db, 'grant', payload.gid!))) return undefined;
  return {
    jti: payload.jti,
    kind: model,
    iat: payload.iat,
    exp: payload.exp,
    clientId: payload.client_id,
    ...(payload.scope ? { scope: payload.scope } : {}),
    aud: typeof payload.aud === 'string' ? [payload.aud] : payload.aud,
    ...(delegated ? { accountId: payload.sub, grantId: payload.gid } : {}),
    extra: {},
  };
}

async function recordRevocation(
  deps: AuthorizationServerDeps,
  kind: 'token' | 'grant',
  id: string,
): Promise<void> {
  const now = deps.changes.clock.now();
  const expiresAt = new Date(now + REVOCATION_HORIZON_MS).toISOString();
  await runChange(deps.changes, systemActor, async (tx, record) => {
    await insertRevocation(tx, { kind, id, expiresAt }, new Date(now).toISOString());
    await record({
      type: kind === 'token' ? 'oauth_token.revoked' : 'oauth_grant.revoked',
      entityType: 'oauth_token',
      entityId: id,
      payload: { kind, id, expiresAt },
    });
  });
}

/** The lifetime of an access token: its resource server's, i.e. the service's `accessTokenTtl`. */
function accessTokenTtlOf(
  _ctx: unknown,
  token: { resourceServer?: { accessTokenTTL?: number } | undefined },
): number {
  return token.resourceServer?.accessTokenTTL ?? defaultAccessTokenTtl;
}

/** Builds a provider on the keys currently in the database. */
export async function buildProvider(deps: AuthorizationServerDeps): Promise<BuiltProvider> {
  const clock = deps.clock ?? systemClock;
  const { jwks, currentKid } = await loadPrivateJwks(deps.db, deps.sealer);
  const keyVersion = await keySetVersion(deps.db);
  const cookieKeys = await loadCookieKeys(deps.db, deps.sealer, clock);
  const db = deps.db;

  const configuration: Configuration = {
    adapter: storeAdapterFactory({
      db,
      clock,
      // clients are read from the applications on every lookup, so a suspended application stops at once;
      // oidc-provider caches the built client by its metadata
      findClient: (id) => clientMetadataOf(db, id, { refreshTokenTtl: defaultRefreshTokenTtl }),
      jwt: {
        inspect: (model, jwt) => inspectAccessToken(deps, model, jwt),
        revokeToken: (jti) => recordRevocation(deps, 'token', jti),
        revokeGrant: (grantId) => recordRevocation(deps, 'grant', grantId),
      },
    }),
    jwks: { keys: jwks as NonNullable<Configuration['jwks']>['keys'] },
    // End users are the provider's users: Trellis knows them only by the subject their login assertion named.
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    cookies: {
      keys: cookieKeys,
      names: {
        session: 'trellis_oauth_session',
        interaction: 'trellis_oauth_interaction',
        resume: 'trellis_oauth_resume',
        state: 'trellis_oauth_state',
      },
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    // Browsers may call the token endpoints from this site only: the portal's docs page fetches a
    // client-credentials token for "try it" (same origin); no other site may use a client's secret by CORS.
    clientBasedCORS: (_ctx, origin) => origin === new URL(deps.issuer).origin,
    scopes: ['openid', 'offline_access'],
    claims: { openid: ['sub'] },
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    // PKCE with S256 for every authorization request (RFC 7636; OAuth 2.0 Security BCP, RFC 9700 §2.1.1)
    pkce: { required: () => true, methods: ['S256'] },
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: SIGNING_ALG,
    },
    enabledJWA: {
      idTokenSigningAlgValues: [SIGNING_ALG],
      requestObjectSigningAlgValues: [SIGNING_ALG],
      introspectionSigningAlgValues: [SIGNING_ALG],
      authorizationSigningAlgValues: [SIGNING_ALG],
      userinfoSigningAlgValues: [SIGNING_ALG],
      clientAuthSigningAlgValues: [SIGNING_ALG],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // a client may introspect its own tokens only (RFC 7662 §4: the server decides who may ask)
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      revocation: { enabled: true },
      // with userinfo off, every access token is for the resource (the service), never for userinfo
      userinfo: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // a client belongs to one service: that service is the resource when the request names none
        defaultResource: async (_ctx, client, oneOf) => {
          if (oneOf) return oneOf;
          const name = clientString(client, clientProperties.serviceSystemName);
          // an empty list lets getResourceServerInfo refuse the request with invalid_target
          return name ? resourceOf(name) : [];
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
          const name = clientString(client, clientProperties.serviceSystemName);
          const serviceId = clientString(client, clientProperties.serviceId);
          const planId = clientString(client, clientProperties.planId);
          if (!name || !serviceId || !planId || resourceIndicator !== resourceOf(name)) {
            throw new errors.InvalidTarget();
          }
          const [settings, scopes] = await Promise.all([
            findServiceSettings(db, serviceId),
            planScopes(db, serviceId, planId),
          ]);
          return {
            scope: scopes.map((s) => s.name).join(' '),
            audience: name,
            accessTokenTTL: settings?.access_token_ttl ?? defaultAccessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: SIGNING_ALG, kid: currentKid } },
          };
        },
      },
    },
    formats: {
      customizers: {
        jwt: async (_ctx, token, jwt) => {
          if (token.kind === 'AccessToken') {
            // the grant travels in the token, so revoking the grant (RFC 7009 §2.1) reaches its JWTs
            jwt.payload.gid = token.grantId;
          } else if (!token.scope && token.resourceServer?.scope) {
            // no scope asked: the client gets what its plan allows (the default of RFC 6749 §3.3)
            token.scope = token.resourceServer.scope;
            jwt.payload.scope = token.scope;
          }
          return jwt;
        },
      },
    },
    interactions: { url: (_ctx, interaction) => `${OAUTH_PATH}/interaction/${interaction.uid}` },
    // confidential clients allowed the refresh_token grant get one with every code, without offline_access
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    extraClientMetadata: { properties: Object.values(clientProperties) },
    ttl: {
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 365 * 24 * 3600,
      IdToken: 600,
      // the service's accessTokenTtl travels as the resource server's (getResourceServerInfo above); a
      // constant here would override it, so every token lived the default (issue 8, item 10)
      AccessToken: accessTokenTtlOf,
      ClientCredentials: accessTokenTtlOf,
      RefreshToken: (_ctx, _token, client) => {
        const ttl = client[clientProperties.refreshTokenTtl];
        return typeof ttl === 'number' ? ttl : defaultRefreshTokenTtl;
      },
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = errorPage(out.error ?? 'error', out.error_description ?? '');
    },
  };

  const provider = new Provider(deps.issuer, configuration);
  provider.proxy = new URL(deps.issuer).protocol === 'https:';
  installHashedSecretCheck(provider, db);
  const countIssued = (grantType: string) => (token: { client?: unknown; gty?: string }) => {
    const client = token.client as { [key: string]: unknown } | undefined;
    const applicationId = clientString(client, clientProperties.applicationId);
    const serviceId = clientString(client, clientProperties.serviceId);
    const accountId = clientString(client, clientProperties.accountId);
    if (!applicationId || !serviceId || !accountId) return;
    const gty = typeof token.gty === 'string' ? (token.gty.split(' ')[0] ?? grantType) : grantType;
    deps.counter.count({ applicationId, serviceId, accountId, grantType: gty });
  };
  provider.on('client_credentials.issued', countIssued('client_credentials'));
  provider.on('access_token.issued', countIssued('authorization_code'));
  provider.on('server_error', (_ctx: unknown, err: Error) => {
    deps.logger.error({ err: { message: err.message, stack: err.stack } }, 'oauth: server error');
  });
  return { provider, keyVersion };
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page shown to a browser when an authorization request cannot go on (bad client, redirect URI …). */
export function errorPage(error: string, description: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorization error</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem">
<h1>The authorization request cannot go on</h1>
<p><code>${escapeHtml(error)}</code></p><p>${escapeHtml(description)}</p></body></html>`;
}

export { escapeHtml };
