/**
 * Signing keys of the authorization server, kept in the database so every control process signs with the same
 * keys and every gateway can verify. Rotation follows the usual three states, so no verifier ever meets a token
 * signed with a key it has not seen:
 *
 * - `next`: published in the JWKS (and loaded by gateways) but not yet signing;
 * - `current`: signing; exactly one;
 * - `retired`: no longer signing, still published until every token it signed has expired.
 *
 * `rotateSigningKeys` moves next → current → retired and creates a new next key. Private keys are sealed at rest
 * (key-encryption.ts) and never leave this module except into oidc-provider's keystore.
 * See RFC 7517 (JWK) and RFC 7638 (thumbprints used as `kid`).
 */
import { randomBytes } from 'node:crypto';
import { type JWK, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import type { Clock } from '../kernel/index.js';
import { type Executor, lockKey } from '../store/index.js';
import type { Sealer } from './key-encryption.js';
import {
  deleteExpiredSigningKeys,
  findOrCreateSecret,
  insertSigningKey,
  listPublicKeys,
  listSigningKeys,
  updateSigningKey,
} from './oauth.store.js';

/** The algorithm of every signing key: ECDSA P-256 (small keys and signatures, fast to verify). */
export const SIGNING_ALG = 'ES256';

/** The advisory lock of key rotations on PostgreSQL ("trks"; applies take "trla", the outbox "trls"). */
const ROTATION_LOCK_KEY = 0x74726b73;

/** How long a retired key stays published by default: longer than any access token or ID token lives. */
export const DEFAULT_RETIRED_KEY_SECONDS = 24 * 60 * 60;

async function newKeyRow(sealer: Sealer, state: 'next' | 'current', nowIso: string) {
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = await exportJWK(privateKey);
  const common = { kid, alg: SIGNING_ALG, use: 'sig' };
  return {
    kid,
    alg: SIGNING_ALG,
    state,
    public_jwk: JSON.stringify({ ...publicJwk, ...common }),
    private_jwk: sealer.seal(JSON.stringify({ ...privateJwk, ...common })),
    created_at: nowIso,
    activated_at: state === 'current' ? nowIso : null,
    retired_at: null,
    expires_at: null,
  };
}

/**
 * Makes sure there is a current and a next key (first start, or after a restore). Safe to call from several
 * processes: a duplicate current key is harmless (both are published) and the next rotation resolves it.
 */
export async function ensureSigningKeys(db: Executor, sealer: Sealer, clock: Clock): Promise<void> {
  const rows = await listSigningKeys(db);
  const nowIso = new Date(clock.now()).toISOString();
  if (!rows.some((r) => r.state === 'current'))
    await insertSigningKey(db, await newKeyRow(sealer, 'current', nowIso));
  if (!rows.some((r) => r.state === 'next'))
    await insertSigningKey(db, await newKeyRow(sealer, 'next', nowIso));
}

export interface KeyRotation {
  /** The key that signs from now on. */
  current: string;
  /** The key published for the next rotation. */
  next: string;
  /** Keys no longer signing, published until they expire. */
  retired: string[];
}

/**
 * Rotates the signing keys: next → current, current → retired (published for `retiredKeySeconds` more), and a new
 * next key. Records `oauth_signing_keys.rotated` in the outbox so gateways and other control processes reload.
 */
export async function rotateSigningKeys(
  deps: ChangeDeps,
  actor: Actor,
  sealer: Sealer,
  options: { retiredKeySeconds?: number } = {},
): Promise<KeyRotation> {
  const now = deps.clock.now();
  const nowIso = new Date(now).toISOString();
  const retireUntil = new Date(
    now + (options.retiredKeySeconds ?? DEFAULT_RETIRED_KEY_SECONDS) * 1000,
  ).toISOString();
  const fresh = await newKeyRow(sealer, 'next', nowIso);
  return runChange(deps, actor, async (tx, record) => {
    // one rotation at a time: two at once each made a next key of their own, and every one stayed published
    await lockKey(tx, ROTATION_LOCK_KEY);
    await deleteExpiredSigningKeys(tx, nowIso);
    let rows = await listSigningKeys(tx);
    if (!rows.some((r) => r.state === 'next')) {
      // a next key must have been published before it signs; without one, publish now and promote it
      await insertSigningKey(tx, await newKeyRow(sealer, 'next', nowIso));
      rows = await listSigningKeys(tx);
    }
    for (const r of rows.filter((k) => k.state === 'current')) {
      await updateSigningKey(tx, r.kid, { state: 'retired', retired_at: nowIso, expires_at: retireUntil });
    }
    const next = rows.find((r) => r.state === 'next')!;
    await updateSigningKey(tx, next.kid, { state: 'current', activated_at: nowIso });
    await insertSigningKey(tx, fresh);
    const retired = (await listSigningKeys(tx)).filter((r) => r.state === 'retired').map((r) => r.kid);
    const rotation = { current: next.kid, next: fresh.kid, retired };
    await record({
      type: 'oauth_signing_keys.rotated',
      entityType: 'oauth_signing_key',
      entityId: next.kid,
      payload: rotation,
    });
    return rotation;
  });
}

/** Private JWKs for oidc-provider's keystore: the current key first (it is the one selected for signing). */
export async function loadPrivateJwks(
  db: Executor,
  sealer: Sealer,
): Promise<{ jwks: JWK[]; currentKid: string }> {
  const rows = await listSigningKeys(db);
  const order = { current: 0, next: 1, retired: 2 } as Record<string, number>;
  const sorted = [...rows].sort((a, b) => (order[a.state] ?? 3) - (order[b.state] ?? 3));
  const current = sorted[0];
  if (current === undefined || current.state !== 'current') throw new Error('oauth: no current signing key');
  return {
    jwks: sorted.map((r) => JSON.parse(sealer.open(r.private_jwk)) as JWK),
    currentKid: current.kid,
  };
}

/** The public keys every verifier trusts: current, next and retired-but-not-expired. */
export async function loadPublicJwks(db: Executor, clock: Clock): Promise<JWK[]> {
  const nowIso = new Date(clock.now()).toISOString();
  const rows = await listPublicKeys(db);
  return rows
    .filter((r) => r.state !== 'retired' || (r.expires_at !== null && r.expires_at > nowIso))
    .map((r) => JSON.parse(r.public_jwk) as JWK);
}

/** A fingerprint of the key set, so a process can tell cheaply whether it must reload. */
export async function keySetVersion(db: Executor): Promise<string> {
  const rows = await listPublicKeys(db);
  return rows.map((r) => `${r.kid}:${r.state}`).join(',');
}

/** The keys oidc-provider signs its cookies with, shared by every control process. */
export async function loadCookieKeys(db: Executor, sealer: Sealer, clock: Clock): Promise<string[]> {
  const sealed = await findOrCreateSecret(
    db,
    'cookie_keys',
    () => sealer.seal(JSON.stringify([randomBytes(32).toString('base64url')])),
    new Date(clock.now()).toISOString(),
  );
  return JSON.parse(sealer.open(sealed)) as string[];
}
