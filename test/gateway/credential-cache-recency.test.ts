/**
 * The credential cache keeps what is used and drops what is not: a key used all along is never looked up again
 * however many others pass through, the least recently used goes first, and the cache never holds more than its
 * capacity. (A hit re-inserts an entry only once it has fallen into the older half of the cache, so a hot key
 * costs no delete and insert per call; these are the properties that must survive that.)
 */
import { describe, expect, it } from 'vitest';
import {
  type AppAccess,
  CredentialCache,
  type CredentialSource,
  type UserKeyEntry,
} from '../../src/gateway/credential-cache.js';
import { ManualClock } from '../../src/kernel/index.js';

function countingSource(): CredentialSource & { lookups: Map<string, number> } {
  const lookups = new Map<string, number>();
  return {
    lookups,
    async findUserKey(hash) {
      lookups.set(hash, (lookups.get(hash) ?? 0) + 1);
      const app: AppAccess = {
        applicationId: `app-${hash}`,
        accountId: 'acc',
        serviceId: 'svc',
        planId: 'plan',
        state: 'live',
        accountState: 'approved',
        environment: 'production',
        appId: `app-${hash}`,
        allowlist: null,
      };
      return { app, credentialState: 'active' } satisfies UserKeyEntry;
    },
    async findAppId() {
      return undefined;
    },
  };
}

/** A lookup, awaited when it went to the source. */
async function use(cache: CredentialCache, hash: string): Promise<void> {
  const found = cache.userKey(hash);
  expect(found instanceof Promise ? await found : found).not.toBeNull();
}

describe('credential cache recency', () => {
  for (const capacity of [2, 3, 10, 64]) {
    it(`keeps a key in use and drops the least recently used (capacity ${capacity})`, async () => {
      const source = countingSource();
      const cache = new CredentialCache({ source, capacity, clock: new ManualClock(), maxAgeMs: 3_600_000 });
      await use(cache, 'hot');
      for (let i = 0; i < capacity * 20; i++) {
        await use(cache, `cold-${i}`);
        await use(cache, 'hot');
        expect(cache.stats().size).toBeLessThanOrEqual(capacity);
      }
      expect(source.lookups.get('hot')).toBe(1);
      // the first cold keys are long gone: looked up again
      await use(cache, 'cold-0');
      expect(source.lookups.get('cold-0')).toBe(2);
    });
  }

  it('evicts exactly the least recently used entry', async () => {
    const source = countingSource();
    const cache = new CredentialCache({ source, capacity: 4, clock: new ManualClock(), maxAgeMs: 3_600_000 });
    for (const k of ['a', 'b', 'c', 'd']) await use(cache, k);
    await use(cache, 'a'); // a is now the most recent; b the least
    await use(cache, 'e'); // over capacity: b goes
    for (const k of ['a', 'c', 'd', 'e']) await use(cache, k);
    expect([...source.lookups.values()].every((n) => n === 1)).toBe(true);
    await use(cache, 'b');
    expect(source.lookups.get('b')).toBe(2);
  });
});
