/**
 * Sealing of what the OAuth server keeps secret at rest: the private signing keys, the cookie keys and the
 * services' login-assertion secrets. With `TRELLIS_OAUTH_KEY_SECRET` set they are encrypted with AES-256-GCM
 * under a key derived from it (HKDF-SHA256); without it they are stored as they are, marked so, and the
 * secret can be set later (values are re-read and re-sealed on the next write).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

export interface Sealer {
  /** Whether values are really encrypted (false: stored in clear, development only). */
  readonly encrypts: boolean;
  seal(plain: string): string;
  open(sealed: string): string;
}

const AES_PREFIX = 'aes256gcm.v1.';
const PLAIN_PREFIX = 'plain.';

/**
 * @example const sealer = createSealer(config.oauthKeySecret); const stored = sealer.seal(jwkJson)
 */
export function createSealer(secret: string): Sealer {
  const key =
    secret === '' ? null : Buffer.from(hkdfSync('sha256', secret, 'trellis-oauth', 'key-encryption', 32));
  return {
    encrypts: key !== null,
    seal(plain) {
      if (key === null) return PLAIN_PREFIX + Buffer.from(plain, 'utf8').toString('base64url');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return `${AES_PREFIX}${iv.toString('base64url')}.${tag.toString('base64url')}.${body.toString('base64url')}`;
    },
    open(sealed) {
      if (sealed.startsWith(PLAIN_PREFIX)) {
        return Buffer.from(sealed.slice(PLAIN_PREFIX.length), 'base64url').toString('utf8');
      }
      if (!sealed.startsWith(AES_PREFIX)) throw new Error('oauth: unknown sealed value format');
      if (key === null) {
        throw new Error(
          'oauth: keys are encrypted at rest; set TRELLIS_OAUTH_KEY_SECRET to the secret they were sealed with',
        );
      }
      const [iv = '', tag = '', body = ''] = sealed.slice(AES_PREFIX.length).split('.');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    },
  };
}
