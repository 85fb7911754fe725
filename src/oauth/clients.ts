/**
 * OAuth clients are Trellis applications of `oauth2` services: the client id is the application's `app_id`, the
 * client secrets are its `client_secret` credentials (stored hashed; several while one is rotated). oidc-provider
 * compares plain secrets by default; the maintainer's advice for hashed secrets (panva/node-oidc-provider#631) is
 * to override `Client.prototype.compareClientSecret`, which `installHashedSecretCheck` does for one provider.
 */
import type { ClientMetadata, Provider } from 'oidc-provider';
import { secretMatches } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import {
  findClientApplication,
  findClientSettings,
  findServiceSettings,
  listActiveClientSecretHashes,
} from './oauth.store.js';

/** Custom client metadata (oidc-provider keeps names verbatim: `client['urn:trellis:service_id']`). */
export const clientProperties = {
  applicationId: 'urn:trellis:application_id',
  accountId: 'urn:trellis:account_id',
  serviceId: 'urn:trellis:service_id',
  serviceSystemName: 'urn:trellis:service_system_name',
  planId: 'urn:trellis:plan_id',
  refreshTokenTtl: 'urn:trellis:refresh_token_ttl',
} as const;

/**
 * Stands in for the secret in the client metadata: oidc-provider requires a `client_secret` for confidential
 * clients but never sees the real one. Symmetric (HS*) algorithms are not offered, so it is never used as a key.
 */
const HASHED_SECRET_PLACEHOLDER = 'stored-hashed-see-compareClientSecret';

/** The resource indicator (RFC 8707) naming a service: `urn:trellis:service:<system name>`. */
export function resourceOf(serviceSystemName: string): string {
  return `urn:trellis:service:${serviceSystemName}`;
}

/**
 * The client metadata of an application, or undefined when it is no OAuth client: unknown, not of an `oauth2`
 * service issuing its own tokens, not live, or its account not approved.
 */
export async function clientMetadataOf(
  db: Executor,
  appId: string,
  defaults: { refreshTokenTtl: number },
): Promise<ClientMetadata | undefined> {
  const app = await findClientApplication(db, appId);
  if (app?.auth_mode !== 'oauth2' || app.app_state !== 'live' || app.account_state !== 'approved') {
    return undefined;
  }
  const [service, client] = await Promise.all([
    findServiceSettings(db, app.service_id),
    findClientSettings(db, app.application_id),
  ]);
  if (service?.token_issuer === 'external') return undefined;
  const redirectUris = client ? (JSON.parse(client.redirect_uris) as string[]) : [];
  const delegated = redirectUris.length > 0;
  return {
    client_id: app.app_id,
    client_secret: HASHED_SECRET_PLACEHOLDER,
    client_name: app.name,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: delegated
      ? ['client_credentials', 'authorization_code', 'refresh_token']
      : ['client_credentials'],
    response_types: delegated ? ['code'] : [],
    redirect_uris: redirectUris,
    [clientProperties.applicationId]: app.application_id,
    [clientProperties.accountId]: app.account_id,
    [clientProperties.serviceId]: app.service_id,
    [clientProperties.serviceSystemName]: app.service_system_name,
    [clientProperties.planId]: app.plan_id,
    [clientProperties.refreshTokenTtl]: service?.refresh_token_ttl ?? defaults.refreshTokenTtl,
  };
}

/** Makes a provider check client secrets against the hashed `client_secret` credentials (constant time). */
export function installHashedSecretCheck(provider: Provider, db: Executor): void {
  provider.Client.prototype.compareClientSecret = async function compareHashedSecret(actual: string) {
    const applicationId = this[clientProperties.applicationId];
    if (typeof applicationId !== 'string' || typeof actual !== 'string') return false;
    const hashes = await listActiveClientSecretHashes(db, applicationId);
    let matched = false;
    // every hash is compared, so timing does not tell which one matched
    for (const hash of hashes) if (secretMatches(actual, hash)) matched = true;
    return matched;
  };
}

/** Reads a custom string property of a client. */
export function clientString(
  client: { [key: string]: unknown } | undefined,
  property: string,
): string | undefined {
  const value = client?.[property];
  return typeof value === 'string' ? value : undefined;
}
