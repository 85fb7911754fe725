/**
 * OAuth settings of services (token lifetimes, the provider's login page and the secret that signs its login
 * assertions, or an external issuer) and of applications (redirect URIs, the client id at an external issuer).
 */
import { randomBytes } from 'node:crypto';
import { getApplication } from '../access/index.js';
import { getService } from '../catalog/index.js';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { type FieldProblem, TrellisError, invalid, isoNow } from '../kernel/index.js';
import { checkOutboundUrl } from '../outbound/index.js';
import type { Executor } from '../store/index.js';
import type { Sealer } from './key-encryption.js';
import {
  type ServiceSettingsRow,
  findClientSettings,
  findServiceSettings,
  upsertClientSettings,
  upsertServiceSettings,
} from './oauth.store.js';

export interface ServiceOAuthSettings {
  serviceId: string;
  /** Seconds an access token lives (RFC 6749 `expires_in`). */
  accessTokenTtl: number;
  /** Seconds a refresh token lives. */
  refreshTokenTtl: number;
  /** The provider's own sign-in page, where end users are sent during the authorization-code flow. */
  loginUrl: string;
  /** Whether a login-assertion secret exists (its value is shown once, when generated). */
  hasLoginSecret: boolean;
  /** trellis: Trellis issues the tokens; external: another issuer does, and the gateway checks them. */
  tokenIssuer: 'trellis' | 'external';
  externalIssuer: string;
  externalJwksUrl: string;
  /** Audience the external tokens must carry ('' accepts any). */
  externalAudience: string;
  /** The claim of external tokens naming the client (`client_id`, `azp`, `cid` …). */
  externalClientClaim: string;
}

export type ServiceOAuthSettingsUpdate = Partial<Omit<ServiceOAuthSettings, 'serviceId' | 'hasLoginSecret'>>;

export interface ClientOAuthSettings {
  applicationId: string;
  redirectUris: string[];
  externalClientId: string | null;
}

export type ClientOAuthSettingsUpdate = Partial<Omit<ClientOAuthSettings, 'applicationId'>>;

export const defaultAccessTokenTtl = 600;
export const defaultRefreshTokenTtl = 30 * 24 * 3600;

function toSettings(serviceId: string, row: ServiceSettingsRow | undefined): ServiceOAuthSettings {
  return {
    serviceId,
    accessTokenTtl: row?.access_token_ttl ?? defaultAccessTokenTtl,
    refreshTokenTtl: row?.refresh_token_ttl ?? defaultRefreshTokenTtl,
    loginUrl: row?.login_url ?? '',
    hasLoginSecret: row?.login_secret != null,
    tokenIssuer: row?.token_issuer === 'external' ? 'external' : 'trellis',
    externalIssuer: row?.external_issuer ?? '',
    externalJwksUrl: row?.external_jwks_url ?? '',
    externalAudience: row?.external_audience ?? '',
    externalClientClaim: row?.external_client_claim || 'client_id',
  };
}

export async function getServiceOAuthSettings(
  db: Executor,
  serviceId: string,
): Promise<ServiceOAuthSettings> {
  await getService(db, serviceId);
  return toSettings(serviceId, await findServiceSettings(db, serviceId));
}

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.hash === '';
  } catch {
    return false;
  }
}

function checkServiceSettings(s: ServiceOAuthSettings): void {
  const problems: FieldProblem[] = [];
  if (!Number.isInteger(s.accessTokenTtl) || s.accessTokenTtl < 30 || s.accessTokenTtl > 86_400)
    problems.push({ field: 'accessTokenTtl', message: 'must be a whole number of seconds, 30…86400' });
  if (!Number.isInteger(s.refreshTokenTtl) || s.refreshTokenTtl < 60 || s.refreshTokenTtl > 365 * 86_400)
    problems.push({ field: 'refreshTokenTtl', message: 'must be a whole number of seconds, 60…31536000' });
  if (s.loginUrl !== '' && !isHttpUrl(s.loginUrl))
    problems.push({ field: 'loginUrl', message: 'must be an http(s) URL without fragment' });
  if (s.tokenIssuer === 'external') {
    if (!isHttpUrl(s.externalIssuer))
      problems.push({ field: 'externalIssuer', message: 'must be the issuer URL' });
    if (!isHttpUrl(s.externalJwksUrl))
      problems.push({ field: 'externalJwksUrl', message: 'must be an http(s) URL' });
  }
  if (!/^[A-Za-z0-9_:.-]{1,100}$/.test(s.externalClientClaim))
    problems.push({ field: 'externalClientClaim', message: 'must be a claim name' });
  if (problems.length > 0) throw invalid(problems);
}

/**
 * A new JWKS URL is one gateways will fetch (SSRF): refuse what the outbound client would refuse, at once, rather
 * than have every gateway fail to fetch it later. Names are checked again on every fetch, after resolution.
 */
function checkJwksUrlTarget(url: string, allowHosts: readonly string[]): void {
  const refused = checkOutboundUrl(url, allowHosts);
  if (refused?.code === 'outbound_address_refused') {
    throw new TrellisError('outbound_address_refused', `externalJwksUrl: ${refused.message}`, [
      { field: 'externalJwksUrl', message: refused.message },
    ]);
  }
  if (refused) throw invalid([{ field: 'externalJwksUrl', message: refused.message }]);
}

/**
 * Changes a service's OAuth settings; gateways reload them from the outbox. A new `externalJwksUrl` must be one
 * Trellis may fetch from: pass `allowHosts` (config.outboundAllowHosts) so allowed hosts are accepted.
 */
export async function updateServiceOAuthSettings(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  input: ServiceOAuthSettingsUpdate,
  options: { allowHosts?: readonly string[] } = {},
): Promise<ServiceOAuthSettings> {
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    const before = await findServiceSettings(tx, serviceId);
    const merged = { ...toSettings(serviceId, before), ...input };
    checkServiceSettings(merged);
    if (input.externalJwksUrl !== undefined && input.externalJwksUrl !== '') {
      checkJwksUrlTarget(input.externalJwksUrl, options.allowHosts ?? []);
    }
    await upsertServiceSettings(tx, {
      service_id: serviceId,
      access_token_ttl: merged.accessTokenTtl,
      refresh_token_ttl: merged.refreshTokenTtl,
      login_url: merged.loginUrl,
      login_secret: before?.login_secret ?? null,
      token_issuer: merged.tokenIssuer,
      external_issuer: merged.externalIssuer,
      external_jwks_url: merged.externalJwksUrl,
      external_audience: merged.externalAudience,
      external_client_claim: merged.externalClientClaim,
      updated_at: isoNow(deps.clock),
    });
    const settings = toSettings(serviceId, await findServiceSettings(tx, serviceId));
    await record({
      type: 'oauth_service_settings.updated',
      entityType: 'oauth_service',
      entityId: serviceId,
      payload: { settings, serviceId },
    });
    return settings;
  });
}

/**
 * Generates the secret that signs the service's login assertions (HS256), replacing any previous one. The value
 * is returned once; it is stored sealed.
 */
export async function generateLoginSecret(
  deps: ChangeDeps,
  actor: Actor,
  sealer: Sealer,
  serviceId: string,
): Promise<{ serviceId: string; loginSecret: string }> {
  const secret = `trls_${randomBytes(32).toString('base64url')}`;
  await runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    const current = toSettings(serviceId, await findServiceSettings(tx, serviceId));
    const before = await findServiceSettings(tx, serviceId);
    await upsertServiceSettings(tx, {
      service_id: serviceId,
      access_token_ttl: current.accessTokenTtl,
      refresh_token_ttl: current.refreshTokenTtl,
      login_url: current.loginUrl,
      login_secret: sealer.seal(secret),
      token_issuer: current.tokenIssuer,
      external_issuer: current.externalIssuer,
      external_jwks_url: current.externalJwksUrl,
      external_audience: current.externalAudience,
      external_client_claim: before?.external_client_claim ?? current.externalClientClaim,
      updated_at: isoNow(deps.clock),
    });
    await record({
      type: 'oauth_service_settings.login_secret_generated',
      entityType: 'oauth_service',
      entityId: serviceId,
      payload: { serviceId },
    });
  });
  return { serviceId, loginSecret: secret };
}

/** The login-assertion secret of a service, unsealed; undefined when none was generated. */
export async function loginSecretOf(
  db: Executor,
  sealer: Sealer,
  serviceId: string,
): Promise<string | undefined> {
  const row = await findServiceSettings(db, serviceId);
  return row?.login_secret ? sealer.open(row.login_secret) : undefined;
}

export async function getClientOAuthSettings(
  db: Executor,
  applicationId: string,
): Promise<ClientOAuthSettings> {
  await getApplication(db, applicationId);
  const row = await findClientSettings(db, applicationId);
  return {
    applicationId,
    redirectUris: row ? (JSON.parse(row.redirect_uris) as string[]) : [],
    externalClientId: row?.external_client_id ?? null,
  };
}

/** Redirect URIs must be absolute, without fragment (RFC 6749 §3.1.2); https, or http for local development. */
function checkRedirectUris(uris: string[]): void {
  const problems: FieldProblem[] = [];
  uris.forEach((raw, i) => {
    let ok = false;
    try {
      const u = new URL(raw);
      const local = u.hostname === 'localhost' || u.hostname === '127.0.0.1' || u.hostname === '[::1]';
      ok = u.hash === '' && (u.protocol === 'https:' || (u.protocol === 'http:' && local));
    } catch {
      ok = false;
    }
    if (!ok)
      problems.push({
        field: `redirectUris[${i}]`,
        message: `"${raw}" is not an https URL (http only on localhost)`,
      });
  });
  if (uris.length > 20) problems.push({ field: 'redirectUris', message: 'at most 20' });
  if (problems.length > 0) throw invalid(problems);
}

export async function updateClientOAuthSettings(
  deps: ChangeDeps,
  actor: Actor,
  applicationId: string,
  input: ClientOAuthSettingsUpdate,
): Promise<ClientOAuthSettings> {
  return runChange(deps, actor, async (tx, record) => {
    const application = await getApplication(tx, applicationId);
    const before = await getClientOAuthSettings(tx, applicationId);
    const next = { ...before, ...input };
    checkRedirectUris(next.redirectUris);
    if (next.externalClientId !== null && !/^[\x21-\x7e]{1,255}$/.test(next.externalClientId)) {
      throw invalid([{ field: 'externalClientId', message: 'must be 1…255 visible ASCII characters' }]);
    }
    await upsertClientSettings(tx, {
      application_id: applicationId,
      redirect_uris: JSON.stringify(next.redirectUris),
      external_client_id: next.externalClientId,
      updated_at: isoNow(deps.clock),
    });
    await record({
      type: 'oauth_client_settings.updated',
      entityType: 'oauth_client',
      entityId: applicationId,
      payload: {
        settings: next,
        applicationId,
        serviceId: application.serviceId,
        accountId: application.accountId,
      },
    });
    return next;
  });
}
