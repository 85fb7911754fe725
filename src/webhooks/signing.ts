/**
 * Standard Webhooks v1 signatures (https://www.standardwebhooks.com/, spec/standard-webhooks.md): the signed
 * content is `${webhook-id}.${webhook-timestamp}.${body}`, signed with HMAC-SHA256 under the base64-decoded part
 * of the secret after `whsec_`; `webhook-signature` lists one `v1,<base64>` per secret, space-separated, so a
 * receiver accepts the message while either the old or the new secret is in use during a rotation.
 */
import { createHmac, randomBytes } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';

/** A new signing secret: `whsec_` and 32 random bytes in base64 (the form Standard Webhooks libraries take). */
export function generateSigningSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** What may be shown of a secret to tell it apart: its prefix and 6 characters. */
export function signingSecretPrefix(secret: string): string {
  return secret.slice(0, SECRET_PREFIX.length + 6);
}

function keyOf(secret: string): Buffer {
  return Buffer.from(
    secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret,
    'base64',
  );
}

/**
 * The `webhook-signature` header of a message: one `v1,<signature>` per secret.
 * @example signatureHeader('msg_1', 1700000000, '{"type":"account.created"}', [secret])
 */
export function signatureHeader(
  id: string,
  timestampSeconds: number,
  body: string,
  secrets: readonly string[],
): string {
  const content = `${id}.${timestampSeconds}.${body}`;
  return secrets
    .map((s) => `v1,${createHmac('sha256', keyOf(s)).update(content).digest('base64')}`)
    .join(' ');
}

/** The three headers of a Standard Webhooks delivery, with the JSON content type. */
export function webhookHeaders(
  id: string,
  timestampSeconds: number,
  body: string,
  secrets: readonly string[],
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'Trellis-Webhooks/1',
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signatureHeader(id, timestampSeconds, body, secrets),
  };
}
