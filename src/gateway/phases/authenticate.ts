import type { AppIdEntry, CredentialCache, UserKeyEntry } from '../credential-cache.js';
import type { ChangeFeedEntry } from '../../events/index.js';
import { type Denial, type DenialCode, deny } from '../denials.js';
import type { RequestContext } from '../request-context.js';
import type { CompiledService } from '../snapshot.js';

/** What a token verifier found in a valid OAuth 2.0 access token. */
export interface VerifiedToken {
  /** The client id: the application's `app_id`. */
  clientId: string;
  claims: Record<string, unknown>;
  /**
   * The first scope the request lacks, given the metrics it maps to; null when the token covers them. Absent when
   * the token's scopes are not checked per metric.
   */
  missingScope?: (usage: readonly { metricId: string }[], service: CompiledService) => string | null;
}

/** Why a verifier refused a token: a denial code of its own (expired, wrong audience, revoked …). */
export interface TokenRejection {
  rejected: DenialCode;
  message: string;
}

/**
 * The seam for `oauth2` services: validates a bearer token (JWT signature, issuer, audience, expiry) and names
 * its client. Until one is plugged in, `oauth2` services refuse every call with `credentials_invalid`.
 */
export interface TokenVerifier {
  verify(token: string, service: CompiledService): Promise<VerifiedToken | TokenRejection | null>;
  /** Sees every batch of the change feed (revoked tokens, rotated keys), so changes apply within a second. */
  applyChanges?(entries: readonly ChangeFeedEntry[]): Promise<void>;
}

export interface AuthenticateDeps {
  cache: CredentialCache;
  tokenVerifier: TokenVerifier | null;
}

function credential(
  ctx: RequestContext,
  service: CompiledService,
  header: string,
  param: string,
): string | null {
  const value = service.credentialsLocation === 'header' ? ctx.header(header) : ctx.query().get(param);
  return value === undefined || value === null || value === '' ? null : value;
}

function fromUserKey(
  ctx: RequestContext,
  service: CompiledService,
  entry: UserKeyEntry | null,
): Denial | null {
  if (entry === null || entry.app.serviceId !== service.id) return deny('credentials_invalid');
  if (entry.credentialState !== 'active') return deny('credentials_revoked');
  ctx.app = entry.app;
  return null;
}

function fromAppId(
  ctx: RequestContext,
  service: CompiledService,
  entry: AppIdEntry | null,
  keyHash: string | null,
): Denial | null {
  if (entry === null || entry.app.serviceId !== service.id) return deny('credentials_invalid');
  if (keyHash !== null) {
    const state = entry.keys.get(keyHash);
    if (state === undefined) return deny('credentials_invalid');
    if (state !== 'active') return deny('credentials_revoked');
  }
  ctx.app = entry.app;
  return null;
}

/**
 * `credentials_missing` saying where the service expects its credentials, in words and as `details.expected`
 * (issue 13: a partner's first failed call tells what to fix). Only on the refusal path, never per accepted call.
 */
function missingCredentials(service: CompiledService): Denial {
  const where = service.credentialsLocation === 'query' ? 'query' : 'header';
  const names =
    service.authMode === 'app_id_app_key'
      ? [service.appIdName, service.appKeyName]
      : service.authMode === 'oauth2'
        ? []
        : [service.userKeyName];
  if (names.length === 0) {
    const expected = [{ in: 'header', name: 'Authorization' }];
    if (where === 'query') expected.push({ in: 'query', name: 'access_token' });
    return deny(
      'credentials_missing',
      'The request carries no credentials: send an access token as `Authorization: Bearer <token>`.',
      { expected },
    );
  }
  const noun = where === 'query' ? 'query parameter' : 'header';
  const message =
    names.length === 1
      ? `The request carries no credentials: send your key in the ${names[0]} ${noun}.`
      : `The request carries no credentials: send your application id and key in the ${names.join(' and ')} ${noun}s.`;
  return deny('credentials_missing', message, { expected: names.map((name) => ({ in: where, name })) });
}

/**
 * Phase 2, authenticate: finds the application from the credentials the service asks for (`user_key`, or
 * `app_id` + `app_key`, in a header or the query string; or an OAuth 2.0 bearer token). Answers from the
 * credential cache when it can, so the common case is synchronous.
 */
export function authenticate(
  ctx: RequestContext,
  deps: AuthenticateDeps,
): Denial | null | Promise<Denial | null> {
  const service = ctx.service!;
  switch (service.authMode) {
    case 'user_key': {
      const key = credential(ctx, service, service.userKeyHeader, service.userKeyName);
      if (key === null) return missingCredentials(service);
      const presented = deps.cache.presented(key);
      ctx.credentialHash = presented.hash;
      const found = deps.cache.userKeyOf(presented);
      return found instanceof Promise
        ? found.then((entry) => fromUserKey(ctx, service, entry))
        : fromUserKey(ctx, service, found);
    }
    case 'app_id_app_key': {
      const appId = credential(ctx, service, service.appIdHeader, service.appIdName);
      const appKey = credential(ctx, service, service.appKeyHeader, service.appKeyName);
      if (appId === null || appKey === null) return missingCredentials(service);
      const keyHash = deps.cache.hashOf(appKey);
      ctx.credentialHash = keyHash;
      const found = deps.cache.appIdWithKey(appId, keyHash);
      return found instanceof Promise
        ? found.then((entry) => fromAppId(ctx, service, entry, keyHash))
        : fromAppId(ctx, service, found, keyHash);
    }
    case 'oauth2': {
      const authorization = ctx.header('authorization');
      const token =
        authorization?.toLowerCase().startsWith('bearer ') === true
          ? authorization.slice(7).trim()
          : service.credentialsLocation === 'query'
            ? ctx.query().get('access_token')
            : null;
      if (!token) return missingCredentials(service);
      const verifier = deps.tokenVerifier;
      if (verifier === null)
        return deny('credentials_invalid', 'OAuth 2.0 tokens cannot be verified by this gateway yet.');
      return verifier.verify(token, service).then(async (verified) => {
        if (verified === null) return deny('credentials_invalid');
        if ('rejected' in verified) return deny(verified.rejected, verified.message);
        ctx.claims = verified.claims;
        ctx.missingScope = verified.missingScope ?? null;
        const found = deps.cache.appId(verified.clientId);
        return fromAppId(ctx, service, found instanceof Promise ? await found : found, null);
      });
    }
  }
}
