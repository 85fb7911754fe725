import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Secrets handed to people (API keys, admin tokens, client secrets). They are random (CSPRNG), carry a
 * recognisable prefix so leaked ones can be found by scanners, and are stored only as a SHA-256 hash with a short
 * display prefix. High-entropy secrets need no slow hash; passwords use argon2 (see `passwords.ts`).
 */
export const secretPrefixes = {
  userKey: 'trk_',
  appKey: 'trak_',
  adminToken: 'trat_',
  clientSecret: 'trcs_',
  invitation: 'tri_',
  webhookSecret: 'whsec_',
  serviceSecretToken: 'trst_',
} as const;

export type SecretKind = keyof typeof secretPrefixes;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A fresh secret of `kind`: its prefix and 32 base62 characters (~190 bits). */
export function generateSecret(kind: SecretKind): string {
  const bytes = randomBytes(40);
  let out = '';
  for (const b of bytes) {
    // rejection sampling keeps the alphabet uniform
    if (b < 248) out += BASE62[b % 62];
    if (out.length === 32) break;
  }
  while (out.length < 32) out += BASE62[randomBytes(1)[0]! % 62];
  return secretPrefixes[kind] + out;
}

/** The stored form of a secret. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** What may be shown of a stored secret: its prefix and the first characters after it. */
export function displayPrefix(secret: string): string {
  const underscore = secret.indexOf('_');
  return secret.slice(0, underscore + 1 + 6);
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
