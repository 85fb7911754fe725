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
  mail: 'mail',
  webhookEndpoint: 'whe',
  webhookMessage: 'msg',
  webhookAttempt: 'wha',
  finding: 'fnd',
  goliveRequest: 'glr',
  contentPage: 'cpg',
  certificationRun: 'crun',
  certificationEvidence: 'cev',
} as const;

export type IdKind = keyof typeof idPrefixes;

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * The last id's time and random part. Ids made in the same millisecond (or with a clock that stands still, as in
 * tests) increment the random part, so ids made by one process are strictly increasing (ULID's monotonic mode) and
 * lists ordered by id are in creation order. This is the one piece of module state in Trellis: a counter that has to
 * be process-wide to mean anything.
 */
const last = { time: -1, rand: [] as number[] };

function nextRandom(time: number): number[] {
  if (time <= last.time) {
    const rand = [...last.rand];
    for (let i = rand.length - 1; i >= 0; i--) {
      rand[i] = (rand[i]! + 1) % 32;
      if (rand[i] !== 0) break;
    }
    last.rand = rand;
    return rand;
  }
  const bytes = randomBytes(16);
  // The top bit is left clear so increments within one millisecond never wrap around.
  const rand = [...bytes].map((b, i) => (i === 0 ? b % 16 : b % 32));
  last.time = time;
  last.rand = rand;
  return rand;
}

/**
 * A new id: prefix, then 26 Crockford base32 characters (48 bits of milliseconds, 80 random bits, as ULID).
 * Ids sort by creation time, which makes them usable as pagination cursors.
 * @example newId('application') // 'app_01jd3k…'
 */
export function newId(kind: IdKind, now: number = Date.now()): string {
  const time = Math.max(now, last.time);
  let t = time;
  let timePart = '';
  for (let i = 0; i < 10; i++) {
    timePart = CROCKFORD[t % 32] + timePart;
    t = Math.floor(t / 32);
  }
  const rand = nextRandom(time)
    .map((n) => CROCKFORD[n])
    .join('');
  return `${idPrefixes[kind]}_${timePart}${rand}`;
}
/** Whether `id` has the shape of an id of `kind`. */
export function isIdOf(kind: IdKind, id: string): boolean {
  return id.startsWith(`${idPrefixes[kind]}_`) && id.length === idPrefixes[kind].length + 27;
}
