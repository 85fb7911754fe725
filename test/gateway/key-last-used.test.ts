/**
 * Issue 13: every key has a "last used", written by the usage flush (the latest call of each key since the last
 * flush), never by the gateway per call; a key not used stays `null`, and a later flush never moves it back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getApplication } from '../../src/access/index.js';
import { ManualClock, hashSecret } from '../../src/kernel/index.js';
import { UsageRecorder } from '../../src/usage/index.js';
import { markCredentialsUsed } from '../../src/usage/usage.store.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import { usageRecord } from '../support/usage-records.js';
import {
  Fixtures,
  type RunningGateway,
  type Upstream,
  call,
  startGateway,
  startUpstream,
} from './fixtures.js';

describe.each(dialects)('a key’s last use (%s)', (dialect) => {
  let store: TestStore;
  let upstream: Upstream;
  let gw: RunningGateway;
  let recorder: UsageRecorder;
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));

  beforeAll(async () => {
    store = await freshStore(dialect);
    upstream = await startUpstream('production');
    recorder = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    gw = await startGateway({ store, clock, usage: recorder });
  });
  afterAll(async () => {
    await gw?.close();
    await recorder?.close();
    await upstream.close();
    await store.cleanup();
  });

  it('is written with the usage, for the key used only, and never moves back', async () => {
    const f = new Fixtures(store);
    const { app, key } = await f.keyed({ upstream: upstream.url, prefix: '/lu' });
    const { secret: idle } = await f.key(app.id);
    expect(idle).not.toBe(key);
    await gw.close();
    gw = await startGateway({ store, clock, usage: recorder });

    expect((await call(`${gw.url}/lu/x`, { headers: { 'X-User-Key': key } })).status).toBe(200);
    clock.advance(30_000);
    expect((await call(`${gw.url}/lu/x`, { headers: { 'X-User-Key': key } })).status).toBe(200);
    const before = (await getApplication(store.db, app.id)).credentials;
    expect(before.every((c) => c.lastUsedAt === null)).toBe(true);
    await recorder.flush();

    const after = (await getApplication(store.db, app.id)).credentials;
    const used = after.filter((c) => c.lastUsedAt !== null);
    expect(used).toHaveLength(1);
    expect(used[0]!.lastUsedAt).toBe(new Date(clock.now()).toISOString());
    expect(key.startsWith(used[0]!.displayPrefix)).toBe(true);

    // a record of an earlier call flushed later does not move it back
    const { secret_hash } = await store.db
      .selectFrom('credentials')
      .select('secret_hash')
      .where('id', '=', used[0]!.id)
      .executeTakeFirstOrThrow();
    recorder.record(
      usageRecord({
        at: clock.now() - 600_000,
        applicationId: app.id,
        metrics: [],
        credentialHash: secret_hash,
      }),
    );
    await recorder.flush();
    expect(
      (await getApplication(store.db, app.id)).credentials.find((c) => c.id === used[0]!.id)?.lastUsedAt,
    ).toBe(new Date(clock.now()).toISOString());
  });
  it('keeps the later use of each of two keys of one application used in turn, across a flush that fails', async () => {
    const f = new Fixtures(store);
    const { app, key } = await f.keyed({ upstream: upstream.url, prefix: '/lu-turns' });
    const { secret: other } = await f.key(app.id);
    const [a, b] = [hashSecret(key), hashSecret(other)];
    const t = clock.now() + 3_600_000;
    const use = (credentialHash: string, at: number) =>
      recorder.record(usageRecord({ at, applicationId: app.id, metrics: [], credentialHash }));
    const lastUsed = async () => {
      const rows = await store.db
        .selectFrom('credentials')
        .select(['secret_hash', 'last_used_at'])
        .where('secret_hash', 'in', [a, b])
        .execute();
      return Object.fromEntries(rows.map((r) => [r.secret_hash === a ? 'a' : 'b', r.last_used_at]));
    };
    use(a, t);
    use(b, t + 1000);
    use(a, t + 2000);
    use(b, t + 500); // an earlier call of b answered later
    // the usage is written, the keys' last use is not: it waits for the next flush
    await store.db.schema.alterTable('credentials').renameTo('credentials_away').execute();
    try {
      await recorder.flush();
    } finally {
      await store.db.schema.alterTable('credentials_away').renameTo('credentials').execute();
    }
    expect(await lastUsed()).toEqual({ a: null, b: null });
    use(a, t - 5000); // older than what waits: a's later use stands
    use(b, t + 3000);
    await recorder.flush();
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(await lastUsed()).toEqual({ a: iso(t + 2000), b: iso(t + 3000) });
  });
  it('is written for every key of a flush, past one statement’s worth of keys, never moving back', async () => {
    const f = new Fixtures(store);
    const { app } = await f.keyed({ upstream: upstream.url, prefix: '/lu-many' });
    const hashes = Array.from({ length: 450 }, (_, i) => hashSecret(`many-${app.id}-${i}`));
    await f.keyHashes(app.id, hashes, 'trk_many');
    const at = (minutes: number) => new Date(clock.now() + minutes * 60_000).toISOString();
    // the last key already has a later use than this flush says: it stays
    await store.db
      .updateTable('credentials')
      .set({ last_used_at: at(10) })
      .where('secret_hash', '=', hashes[449]!)
      .execute();
    await markCredentialsUsed(store.db, new Map(hashes.map((h, i) => [h, at(i % 2)])));

    const rows = await store.db
      .selectFrom('credentials')
      .select(['secret_hash', 'last_used_at'])
      .where('secret_hash', 'in', hashes)
      .execute();
    const written = new Map(rows.map((r) => [r.secret_hash, r.last_used_at]));
    expect(written.size).toBe(450);
    for (let i = 0; i < 449; i++) expect(written.get(hashes[i]!)).toBe(at(i % 2));
    expect(written.get(hashes[449]!)).toBe(at(10));
    // an empty flush writes nothing and does not fail
    await markCredentialsUsed(store.db, new Map());
  });
});
