/**
 * The keys the browser faces sign with, kept in the database so every control process (and a restart) uses the
 * same ones: `csrf` (CSRF tokens) and `sso` (the secret a provider signs single sign-on tokens with).
 */
import { randomBytes } from 'node:crypto';
import { type Clock, isoNow } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import { findWebKey, insertWebKeyIfMissing, replaceWebKey } from './portal.store.js';

export type WebKeyName = 'csrf' | 'sso';

function freshKey(name: WebKeyName): string {
  const value = randomBytes(32).toString('base64url');
  return name === 'sso' ? `trsso_${value}` : value;
}

/** The key named `name`, created on first use. */
export async function webKey(db: Executor, clock: Clock, name: WebKeyName): Promise<string> {
  const found = await findWebKey(db, name);
  if (found) return found;
  await insertWebKeyIfMissing(db, name, freshKey(name), isoNow(clock));
  return (await findWebKey(db, name))!;
}

/** Replaces a key (the console's "rotate SSO secret"); returns the new one, to be shown once. */
export async function rotateWebKey(db: Executor, clock: Clock, name: WebKeyName): Promise<string> {
  const value = freshKey(name);
  await replaceWebKey(db, name, value, isoNow(clock));
  return value;
}
