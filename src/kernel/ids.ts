import { randomBytes } from 'node:crypto';

/** Every entity id carries a prefix naming its kind, so an id of the wrong kind is refused early. */
export const idPrefixes = {
  service: 'svc',
  metric: 'met',
  mappingRule: 'mr',
  plan: 'pln',
  planLimit: 'lim',
  account: 'acc',
  user: 'usr',
  invitation: 'inv',
  application: 'app',
  credential: 'key',
  customField: 'cf',
  adminUser: 'adm',
  adminToken: 'tok',
  auditEntry: 'aud',
  event: 'evt',
} as const;

export type IdKind = keyof typeof idPrefixes;

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * A new id: prefix, then 26 Crockford base32 characters (48 bits of milliseconds, 80 random bits, as ULID).
 * Ids sort by creation time, which makes them usable as pagination cursors.
 * @example newId('application') // 'app_01jd3k…'
 */
export function newId(kind: IdKind, now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[bytes[i]! % 32];
  return `${idPrefixes[kind]}_${time}${rand}`;
}

/** Whether `id` has the shape of an id of `kind`. */
export function isIdOf(kind: IdKind, id: string): boolean {
  return id.startsWith(`${idPrefixes[kind]}_`) && id.length === idPrefixes[kind].length + 27;
}
