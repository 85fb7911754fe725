/**
 * Developer single sign-on for "customer mode": the provider's own product signs a short-lived token with the
 * SSO secret (shown in the console) and redirects the developer to `/sso?token=…`; the developer lands signed
 * in. Token: `v1.<base64url JSON {email, exp}>.<base64url HMAC-SHA256(secret, "v1.<payload>")>`; `exp` is in
 * seconds since the epoch and may be at most five minutes ahead. Each token works once.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Tokens living longer than this are refused: a leaked link must be worthless within minutes. */
export const maxSsoLifetimeSeconds = 300;

export interface SsoClaims {
  /** The e-mail of an existing developer user. */
  email: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

function sign(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('base64url');
}

/**
 * Makes a token (what the provider's backend does; given here for tests and as the reference).
 * @example signSsoToken(secret, { email: 'dev@example.com', exp: Math.floor(Date.now() / 1000) + 60 })
 */
export function signSsoToken(secret: string, claims: SsoClaims): string {
  const payload = Buffer.from(JSON.stringify({ ...claims, nonce: randomBytes(8).toString('hex') })).toString(
    'base64url',
  );
  const body = `v1.${payload}`;
  return `${body}.${sign(secret, body)}`;
}

export type SsoVerdict = { ok: true; email: string; exp: number } | { ok: false; reason: string };

/** Checks signature and lifetime (not single use: the caller records that). */
export function verifySsoToken(secret: string, token: string, nowMs: number): SsoVerdict {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== 'v1' || token.length > 2000)
    return { ok: false, reason: 'malformed' };
  const [, payload = '', signature = ''] = parts;
  const expected = Buffer.from(sign(secret, `v1.${payload}`));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return { ok: false, reason: 'bad signature' };
  }
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const c = claims as Partial<SsoClaims> | null;
  if (!c || typeof c.email !== 'string' || typeof c.exp !== 'number')
    return { ok: false, reason: 'malformed' };
  const now = nowMs / 1000;
  if (c.exp <= now) return { ok: false, reason: 'expired' };
  if (c.exp > now + maxSsoLifetimeSeconds) return { ok: false, reason: 'lives too long' };
  return { ok: true, email: c.email, exp: c.exp };
}
