/**
 * The gateway's side of OAuth 2.0: checks bearer tokens (RFC 6750) locally, with no network call per request.
 *
 * - Tokens of Trellis are JWTs (RFC 9068) checked against the public signing keys loaded from the database:
 *   signature (ES256), issuer, `typ` at+jwt, expiry, audience = the service's system name, and revocation.
 *   An unknown `kid` reloads the keys (at most once a second): a rotation never fails a call, because the next
 *   key is published before it signs.
 * - Services in `external` mode accept JWTs of another issuer, checked against its JWKS (fetched in the
 *   background and on an unknown `kid`), mapping a claim (`client_id`, `azp` …) to an application.
 * - Revocations arrive through the outbox (`oauth_token` events): the gateway's change feed hands them to
 *   `applyChanges`, or the verifier follows the outbox itself (`followChangesMs`).
 */
import {
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  createLocalJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { type ChangeFeedEntry, latestChangeSeq, readChangesSince } from '../events/index.js';
import type { Clock } from '../kernel/index.js';
import { type OutboundClient, OutboundError, createOutboundClient } from '../outbound/index.js';
import type { Executor } from '../store/index.js';
import { listExternalClients, listExternalIssuerServices, listRevocations } from './oauth.store.js';
import { type ScopedMetric, missingScope } from './scopes.js';
import { SIGNING_ALG, loadPublicJwks } from './signing-keys.js';

/** Why a token is refused; each is a stable denial code of the gateway. */
export type TokenRejectionCode =
  | 'token_invalid'
  | 'token_expired'
  | 'token_wrong_audience'
  | 'token_revoked'
  | 'token_unknown_client';

export interface TokenRejection {
  readonly rejected: TokenRejectionCode;
  readonly message: string;
}

export interface AcceptedToken {
  /** The application's `app_id`. */
  readonly clientId: string;
  readonly claims: Record<string, unknown>;
  /** Scopes the token carries; null when they are not Trellis scopes (external issuers). */
  readonly scopes: ReadonlySet<string> | null;
  /** The first scope a request mapping to `usage` lacks (see scopes.ts); absent when scopes are not checked. */
  readonly missingScope?: (
    usage: readonly { metricId: string }[],
    service: { readonly metrics: ReadonlyMap<string, ScopedMetric> },
  ) => string | null;
}

export type TokenVerdict = AcceptedToken | TokenRejection;

/** What the verifier needs to know of a service (the gateway's compiled service has it). */
export interface VerifiedService {
  readonly id: string;
  readonly systemName: string;
}

export interface VerifierLogger {
  warn(data: object, message?: string): void;
  error(data: object, message?: string): void;
}

export interface OAuthTokenVerifierOptions {
  db: Executor;
  clock: Clock;
  /** The Trellis issuer (`issuerOf(config.publicUrl)`). */
  issuer: string;
  /** Follow the outbox every N ms (0: only when `applyChanges` is called by the gateway's change feed). */
  followChangesMs?: number;
  /** How often external JWKS are fetched again. Default 5 minutes. */
  externalRefreshMs?: number;
  /** Leeway for `exp`/`nbf` between clocks, in seconds. Default 5. */
  clockToleranceSeconds?: number;
  /**
   * Hosts external JWKS may be fetched from although they are not public (`config.outboundAllowHosts`), for the
   * guarded outbound client the verifier makes and closes. Default: none.
   */
  outboundAllowHosts?: readonly string[];
  /** An outbound client of the caller's (tests inject a resolver); the caller closes it. */
  outbound?: OutboundClient;
  logger?: VerifierLogger;
}

interface ExternalIssuer {
  issuer: string;
  jwksUrl: string;
  audience: string;
  clientClaim: string;
  keySet: JWTVerifyGetKey;
  kids: Set<string>;
  fetchedAt: number;
  fetching: Promise<void> | null;
}

/** Reloads caused by tokens with unknown key ids come at most this often. */
const KEY_RELOAD_MIN_MS = 1000;

const reject = (rejected: TokenRejectionCode, message: string): TokenRejection => ({ rejected, message });

export function isRejection(v: TokenVerdict): v is TokenRejection {
  return 'rejected' in v;
}

/** A JWKS document (RFC 7517 §5) fetched through the guarded outbound client. */
async function fetchJwks(outbound: OutboundClient, url: string): Promise<{ keys: JWK[] }> {
  const body = (await outbound.fetchJson(url)) as { keys?: unknown } | null;
  if (body === null || typeof body !== 'object' || !Array.isArray(body.keys)) {
    throw new Error(`JWKS ${url} has no keys`);
  }
  return { keys: body.keys as JWK[] };
}

function audienceOf(payload: JWTPayload): string[] {
  if (typeof payload.aud === 'string') return [payload.aud];
  return Array.isArray(payload.aud) ? payload.aud : [];
}

/** Maps jose's failures to denial codes: expiry is the client's to fix by refreshing; the rest is a bad token. */
function rejectionOf(err: unknown): TokenRejection {
  if (err instanceof joseErrors.JWTExpired) return reject('token_expired', 'The access token has expired.');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return reject('token_wrong_audience', 'The access token is for another API.');
    return reject('token_invalid', `The access token's ${err.claim} claim is not valid.`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return reject('token_invalid', 'The access token signature is not valid.');
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return reject('token_invalid', 'The access token was signed with an unknown key.');
  }
  return reject('token_invalid', 'The access token is not valid.');
}

/**
 * Verifies OAuth 2.0 access tokens for the gateway.
 * @example const verifier = await OAuthTokenVerifier.create({ db, clock, issuer }); await verifier.verify(jwt, service)
 */
export class OAuthTokenVerifier {
  private keySet: JWTVerifyGetKey = createLocalJWKSet({ keys: [] });
  private kids = new Set<string>();
  private keysLoadedAt = 0;
  private keyReload: Promise<void> | null = null;
  private keyReloadAgain: Promise<void> | null = null;
  private keyReloadLater: Promise<void> | null = null;
  private readonly revokedTokens = new Map<string, number>();
  private readonly revokedGrants = new Map<string, number>();
  private external = new Map<string, ExternalIssuer>();
  private externalClients = new Map<string, string>();
  private seq = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private following: Promise<void> | null = null;
  private readonly outbound: OutboundClient;
  /** The outbound client was made here (no `outbound` option), so closing the verifier closes it. */
  private readonly ownsOutbound: boolean;
  private readonly tolerance: number;

  private constructor(private readonly options: OAuthTokenVerifierOptions) {
    this.ownsOutbound = options.outbound === undefined;
    this.outbound =
      options.outbound ?? createOutboundClient({ allowHosts: options.outboundAllowHosts ?? [] });
    this.tolerance = options.clockToleranceSeconds ?? 5;
  }

  /** Loads keys, revocations and external issuers, then starts following changes when asked to. */
  static async create(options: OAuthTokenVerifierOptions): Promise<OAuthTokenVerifier> {
    const v = new OAuthTokenVerifier(options);
    v.seq = await latestChangeSeq(options.db);
    await Promise.all([v.reloadKeys(), v.reloadRevocations(), v.reloadExternal()]);
    if (options.followChangesMs) {
      const t = setInterval(() => void v.follow(), options.followChangesMs);
      t.unref();
      v.timers.push(t);
    }
    const refresh = setInterval(() => void v.refreshExternalKeys(), options.externalRefreshMs ?? 300_000);
    refresh.unref();
    v.timers.push(refresh);
    return v;
  }

  /** Checks a bearer token for a service. Never throws. */
  async verify(token: string, service: VerifiedService): Promise<TokenVerdict> {
    const ext = this.external.get(service.id);
    try {
      return ext ? await this.verifyExternal(token, service, ext) : await this.verifyOwn(token, service);
    } catch (err) {
      this.options.logger?.error({ err: String(err) }, 'oauth: token verification failed unexpectedly');
      return reject('token_invalid', 'The access token is not valid.');
    }
  }

  private async verifyOwn(token: string, service: VerifiedService): Promise<TokenVerdict> {
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return reject('token_invalid', 'The access token is not a JWT.');
    }
    if (kid !== undefined && !this.kids.has(kid)) await this.reloadKeys(true);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keySet, {
        issuer: this.options.issuer,
        algorithms: [SIGNING_ALG],
        typ: 'at+jwt',
        currentDate: new Date(this.options.clock.now()),
        clockTolerance: this.tolerance,
        requiredClaims: ['exp', 'jti'],
      }));
    } catch (err) {
      return rejectionOf(err);
    }
    if (!audienceOf(payload).includes(service.systemName)) {
      return reject('token_wrong_audience', 'The access token is for another API.');
    }
    const jti = String(payload.jti);
    const gid = typeof payload.gid === 'string' ? payload.gid : null;
    if (this.revokedTokens.has(jti) || (gid !== null && this.revokedGrants.has(gid))) {
      return reject('token_revoked', 'The access token was revoked.');
    }
    if (typeof payload.client_id !== 'string')
      return reject('token_invalid', 'The access token names no client.');
    const scope = typeof payload.scope === 'string' ? payload.scope : '';
    const scopes: ReadonlySet<string> = new Set(scope.split(' ').filter(Boolean));
    return {
      clientId: payload.client_id,
      claims: payload as Record<string, unknown>,
      scopes,
      missingScope: (usage, svc) => missingScope(scopes, usage, svc.metrics),
    };
  }

  private async verifyExternal(
    token: string,
    service: VerifiedService,
    ext: ExternalIssuer,
  ): Promise<TokenVerdict> {
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return reject('token_invalid', 'The access token is not a JWT.');
    }
    if (kid !== undefined && !ext.kids.has(kid)) await this.fetchExternal(ext, true);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, ext.keySet, {
        issuer: ext.issuer,
        ...(ext.audience ? { audience: ext.audience } : {}),
        currentDate: new Date(this.options.clock.now()),
        clockTolerance: this.tolerance,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      return rejectionOf(err);
    }
    const externalId = payload[ext.clientClaim];
    const appId =
      typeof externalId === 'string' ? this.externalClients.get(`${service.id}|${externalId}`) : undefined;
    if (appId === undefined) {
      return reject(
        'token_unknown_client',
        `No application of this API is known by the token's ${ext.clientClaim}.`,
      );
    }
    return { clientId: appId, claims: payload as Record<string, unknown>, scopes: null };
  }

  /** Applies outbox entries (the gateway's change feed calls this with every batch). */
  async applyChanges(entries: readonly ChangeFeedEntry[]): Promise<void> {
    let keys = false;
    let external = false;
    for (const e of entries) {
      if (e.entityType === 'oauth_token') {
        const { kind, id, expiresAt } = e.payload as { kind?: string; id?: string; expiresAt?: string };
        if (typeof id !== 'string') continue;
        const until = typeof expiresAt === 'string' ? Date.parse(expiresAt) : Number.POSITIVE_INFINITY;
        (kind === 'grant' ? this.revokedGrants : this.revokedTokens).set(id, until);
      } else if (e.entityType === 'oauth_signing_key') {
        keys = true;
      } else if (
        e.entityType === 'oauth_service' ||
        e.entityType === 'oauth_client' ||
        e.entityType === 'service'
      ) {
        external = true;
      }
      if (e.seq > this.seq) this.seq = e.seq;
    }
    if (keys) await this.reloadKeys();
    if (external) await this.reloadExternal();
    this.forgetExpiredRevocations();
  }

  /** Reads the outbox since the last entry seen (when no change feed drives the verifier). */
  follow(): Promise<void> {
    this.following ??= (async () => {
      try {
        for (;;) {
          const entries = await readChangesSince(this.options.db, this.seq, 1000);
          if (entries.length === 0) break;
          await this.applyChanges(entries);
          this.seq = entries[entries.length - 1]!.seq;
        }
      } catch (err) {
        this.options.logger?.warn(
          { err: String(err) },
          'oauth: cannot read the change feed; keeping the last state',
        );
      } finally {
        this.following = null;
      }
    })();
    return this.following;
  }

  /**
   * Reloads the public keys. `ifStale` (a token with an unknown key id) reloads at most once a second: within that
   * second the call waits for the reload the rate allows instead of failing, so a key made just after the last
   * reload is still accepted, and a flood of forged key ids costs one read a second. A reload asked for while
   * another is reading runs again after it: the one in flight may have read before the change that asked.
   */
  reloadKeys(ifStale = false): Promise<void> {
    if (ifStale) {
      const wait = this.keysLoadedAt + KEY_RELOAD_MIN_MS - this.options.clock.now();
      if (wait > 0) {
        this.keyReloadLater ??= new Promise<void>((resolve) => {
          setTimeout(resolve, Math.min(wait, KEY_RELOAD_MIN_MS)).unref();
        }).then(() => {
          this.keyReloadLater = null;
          return this.reloadKeys();
        });
        return this.keyReloadLater;
      }
    }
    if (this.keyReload) {
      this.keyReloadAgain ??= this.keyReload.then(() => {
        this.keyReloadAgain = null;
        return this.reloadKeys();
      });
      return this.keyReloadAgain;
    }
    this.keyReload = (async () => {
      try {
        const keys = await loadPublicJwks(this.options.db, this.options.clock);
        this.keySet = createLocalJWKSet({ keys });
        this.kids = new Set(keys.flatMap((k) => (k.kid ? [k.kid] : [])));
      } catch (err) {
        this.options.logger?.error(
          { err: String(err) },
          'oauth: cannot load the signing keys; keeping the last ones',
        );
      } finally {
        this.keysLoadedAt = this.options.clock.now();
        this.keyReload = null;
      }
    })();
    return this.keyReload;
  }

  private async reloadRevocations(): Promise<void> {
    const nowIso = new Date(this.options.clock.now()).toISOString();
    for (const r of await listRevocations(this.options.db, nowIso)) {
      (r.kind === 'grant' ? this.revokedGrants : this.revokedTokens).set(r.id, Date.parse(r.expiresAt));
    }
  }

  private forgetExpiredRevocations(): void {
    const now = this.options.clock.now();
    for (const map of [this.revokedTokens, this.revokedGrants]) {
      for (const [id, until] of map) if (until <= now) map.delete(id);
    }
  }

  /** Reloads the external-issuer services and the applications they know by another client id. */
  async reloadExternal(): Promise<void> {
    const [services, clients] = await Promise.all([
      listExternalIssuerServices(this.options.db),
      listExternalClients(this.options.db),
    ]);
    const next = new Map<string, ExternalIssuer>();
    for (const s of services) {
      const before = this.external.get(s.service_id);
      const same = before && before.jwksUrl === s.external_jwks_url;
      const ext: ExternalIssuer = {
        issuer: s.external_issuer,
        jwksUrl: s.external_jwks_url,
        audience: s.external_audience,
        clientClaim: s.external_client_claim || 'client_id',
        keySet: same ? before.keySet : createLocalJWKSet({ keys: [] }),
        kids: same ? before.kids : new Set(),
        fetchedAt: same ? before.fetchedAt : 0,
        fetching: null,
      };
      next.set(s.service_id, ext);
      if (!same) await this.fetchExternal(ext, false);
    }
    this.external = next;
    this.externalClients = new Map(clients.map((c) => [`${c.service_id}|${c.external_client_id}`, c.app_id]));
  }

  private fetchExternal(ext: ExternalIssuer, ifStale: boolean): Promise<void> {
    // an unknown kid refetches at most every 30 s, so a flood of forged kids cannot hammer the issuer
    if (ifStale && this.options.clock.now() - ext.fetchedAt < 30_000)
      return ext.fetching ?? Promise.resolve();
    ext.fetching ??= (async () => {
      try {
        const { keys } = await fetchJwks(this.outbound, ext.jwksUrl);
        ext.keySet = createLocalJWKSet({ keys });
        ext.kids = new Set(keys.flatMap((k) => (k.kid ? [k.kid] : [])));
      } catch (err) {
        this.options.logger?.warn(
          {
            err: String(err),
            code: err instanceof OutboundError ? err.code : undefined,
            jwksUrl: ext.jwksUrl,
          },
          'oauth: cannot fetch an external JWKS',
        );
      } finally {
        ext.fetchedAt = this.options.clock.now();
        ext.fetching = null;
      }
    })();
    return ext.fetching;
  }

  private async refreshExternalKeys(): Promise<void> {
    await Promise.all([...this.external.values()].map((ext) => this.fetchExternal(ext, false)));
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    if (this.ownsOutbound) void this.outbound.close();
  }
}
