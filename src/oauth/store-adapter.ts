/**
 * oidc-provider's persistence (its `Adapter` interface) over the Trellis store, so grants, codes, refresh tokens,
 * sessions and interactions live in SQLite or PostgreSQL like everything else and every control process shares them.
 *
 * JWT access tokens are the exception: oidc-provider does not store them (they are self-contained). To revoke
 * (RFC 7009) and introspect (RFC 7662) them anyway, `find` of the two access-token models recognises a JWT,
 * verifies it with the server's own keys and answers with the payload oidc-provider would have stored; `destroy`
 * then records the token's id as revoked, and `revokeByGrantId` the whole grant, in the outbox too, so every
 * gateway refuses it within a second.
 *
 * Codes and refresh tokens are used once, and `consume` is where that is decided: oidc-provider reads the token,
 * checks `consumed`, then calls `consume()` before it saves or issues anything, so requests racing with one
 * token all pass its check. Only the request whose conditional update marks the token gets on; the others are
 * refused as a reuse (see `consume`).
 */
import { type Adapter, type AdapterFactory, type AdapterPayload, errors } from 'oidc-provider';
import type { Clock } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import {
  consumeModel,
  destroyModel,
  destroyModelsOfGrant,
  findModel,
  findModelGrantId,
  upsertModel,
} from './oauth.store.js';

/** Models whose instances are JWTs and never stored. */
const jwtModels = new Set(['AccessToken', 'ClientCredentials']);

/** The models oidc-provider revokes by grant id when a code or refresh token is reused (lib/helpers/revoke.js). */
const grantBoundModels = [
  'AccessToken',
  'RefreshToken',
  'AuthorizationCode',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
];

/** What the adapter needs to handle JWT access tokens. */
export interface JwtAccessTokens {
  /** The stored-form payload of a valid, unrevoked JWT access token of `model`; undefined otherwise. */
  inspect(model: 'AccessToken' | 'ClientCredentials', jwt: string): Promise<AdapterPayload | undefined>;
  /** Records a token id as revoked. */
  revokeToken(jti: string): Promise<void>;
  /** Records every token of a grant as revoked. */
  revokeGrant(grantId: string): Promise<void>;
}

export interface StoreAdapterDeps {
  db: Executor;
  /**
   * oidc-provider reads the system clock itself for `exp`, so stored expiries are compared with the same clock.
   */
  clock: Clock;
  /** Client metadata by client id (clients are applications, not rows of this adapter). */
  findClient(id: string): Promise<AdapterPayload | undefined>;
  jwt: JwtAccessTokens;
}

const looksLikeJwt = (value: string) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(value);

class StoreAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly deps: StoreAdapterDeps,
  ) {}

  private nowIso(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    await upsertModel(this.deps.db, {
      model: this.model,
      id,
      payload: JSON.stringify(payload),
      grantId: payload.grantId ?? null,
      uid: payload.uid ?? null,
      userCode: payload.userCode ?? null,
      expiresAt: expiresIn ? new Date(this.deps.clock.now() + expiresIn * 1000).toISOString() : null,
    });
  }

  private async findBy(key: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    const row = await findModel(this.deps.db, this.model, key, value, this.nowIso());
    if (!row) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    if (row.consumedAt !== null) payload.consumed = Math.floor(Date.parse(row.consumedAt) / 1000);
    return payload;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (this.model === 'Client') return this.deps.findClient(id);
    if (jwtModels.has(this.model) && looksLikeJwt(id)) {
      return this.deps.jwt.inspect(this.model as 'AccessToken' | 'ClientCredentials', id);
    }
    return this.findBy('id', id);
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findBy('uid', uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findBy('user_code', userCode);
  }

  /**
   * Marks a code or refresh token used, or refuses it when another request used it first (or it is gone).
   * The refusal is what oidc-provider answers a reuse one after the other (grants/authorization_code.js,
   * grants/refresh_token.js): the grant is revoked with everything it issued (RFC 6749 §4.1.2, RFC 9700
   * §4.14.2), then `invalid_grant`. Thrown from here, the error ends the token request as a 400 before any
   * token is saved. Only the token endpoint's grants consume (pushed authorization requests are off).
   */
  async consume(id: string): Promise<void> {
    if (await consumeModel(this.deps.db, this.model, id, this.nowIso())) return;
    const grantId = await findModelGrantId(this.deps.db, this.model, id);
    if (grantId) await revokeGrant(this.deps, grantId);
    throw new errors.InvalidGrant(`${this.model} already consumed`);
  }

  async destroy(id: string): Promise<void> {
    if (jwtModels.has(this.model)) await this.deps.jwt.revokeToken(id);
    await destroyModel(this.deps.db, this.model, id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    // oidc-provider calls this on every grant-bound model; the access-token one stands for the JWTs
    if (this.model === 'AccessToken') await this.deps.jwt.revokeGrant(grantId);
    await destroyModelsOfGrant(this.deps.db, this.model, grantId);
  }
}

/** Revokes a grant as oidc-provider's revoke helper does: its tokens of every model, then the grant itself. */
async function revokeGrant(deps: StoreAdapterDeps, grantId: string): Promise<void> {
  await Promise.all(grantBoundModels.map((model) => new StoreAdapter(model, deps).revokeByGrantId(grantId)));
  await new StoreAdapter('Grant', deps).destroy(grantId);
}

/** The adapter factory handed to oidc-provider (`configuration.adapter`). */
export function storeAdapterFactory(deps: StoreAdapterDeps): AdapterFactory {
  return (model: string) => new StoreAdapter(model, deps);
}
