/**
 * Dormant keys (issue 10), on SQLite and PostgreSQL with the injected clock: a key never used, or unused for
 * `dormantDays`, is a finding of its own with the advice to revoke it; a key in use, a young key and the keys of
 * an application dormant as a whole are not; used again (marked by the usage flush, as the gateway does) or
 * revoked, the key's finding resolves at the next run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readChangesSince } from '../../src/events/index.js';
import { listFindings, runInsights } from '../../src/insights/index.js';
import { hashSecret, ManualClock } from '../../src/kernel/index.js';
import { UsageRecorder } from '../../src/usage/index.js';
import { Fixtures } from '../gateway/fixtures.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';

const DAY = 86_400_000;

describe.each(dialects)('dormant keys (%s)', (dialect) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore(dialect);
  });
  afterAll(async () => {
    await store.cleanup();
  });

  it('finds keys never used or unused for dormantDays, and resolves them once used or revoked', async () => {
    const t0 = Date.UTC(2026, 0, 1, 9);
    const clock = new ManualClock(t0);
    const f = new Fixtures(store, clock);
    const service = await f.service();
    const planId = await f.plan(service.id);
    const app = await f.application(service.id, planId);
    const never = await f.key(app.id);
    const old = await f.key(app.id, 'app_key');
    const inUse = await f.key(app.id);
    const revokedLongAgo = await f.key(app.id, 'user_key', 'revoked');
    // an application never used at all: its own finding says to revoke its keys
    const quietApp = await f.application(service.id, planId);
    const quietKey = await f.key(quietApp.id);

    // the fixtures stamp rows with the wall clock: give them the injected clock's dates
    const at = (table: 'applications' | 'credentials', id: string, ms: number) =>
      store.db
        .updateTable(table)
        .set({ created_at: new Date(ms).toISOString() })
        .where('id', '=', id)
        .execute();
    for (const id of [app.id, quietApp.id]) await at('applications', id, t0);
    for (const k of [never, old, inUse, revokedLongAgo, quietKey]) await at('credentials', k.id, t0);
    const use = async (secret: string) => {
      const recorder = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
      recorder.record({
        at: clock.now(),
        serviceId: service.id,
        applicationId: app.id,
        accountId: app.accountId,
        metrics: [{ metricId: service.hitsId, delta: 1 }],
        status: 200,
        latencyMs: 3,
        bytesIn: 0,
        bytesOut: 0,
        endUser: null,
        clientIp: '127.0.0.1',
        credentialHash: hashSecret(secret),
      });
      await recorder.close();
    };
    clock.set(t0 + 1 * DAY);
    await use(old.secret);
    clock.set(t0 + 40 * DAY);
    const young = await f.key(app.id);
    await at('credentials', young.id, clock.now());
    clock.set(t0 + 44 * DAY);
    await use(inUse.secret);
    clock.set(t0 + 45 * DAY);

    const deps = { db: store.db, clock };
    const first = await runInsights(deps);
    expect(first.detected).toBe(3);
    const open = (await listFindings(store.db, { serviceId: service.id, state: 'open', limit: 50 })).data;
    const keyOf = (secret: string) => `key ${secret.slice(0, 10)}…`;
    expect(
      open.map((x) => `${x.applicationId === app.id ? 'app' : 'quiet'} ${x.kind} ${x.subject}`).sort(),
    ).toEqual(
      [
        `app dormant ${keyOf(never.secret)}`,
        `app dormant ${keyOf(old.secret)}`,
        'quiet dormant never_used',
      ].sort(),
    );
    const oldFinding = open.find((x) => x.subject === keyOf(old.secret))!;
    expect(oldFinding.advice).toContain(`Revoke key ${old.secret.slice(0, 10)}…, unused since 2026-01-02`);
    expect(oldFinding.severity).toBe('low');
    expect(oldFinding.evidence.numbers).toMatchObject({ credentialId: old.id, days: 30 });
    const neverFinding = open.find((x) => x.subject === keyOf(never.secret))!;
    expect(neverFinding.advice).toContain('created on 2026-01-01 and never used');
    for (const k of [inUse, young, revokedLongAgo]) {
      expect(open.some((x) => x.subject === keyOf(k.secret))).toBe(false);
    }

    // seen again: refreshed, nothing new
    clock.advance(60_000);
    expect(await runInsights(deps)).toMatchObject({ detected: 0, refreshed: 3, resolved: 0 });

    // the never-used key makes a call; the old one is revoked: both resolve at the next run, not an hour later
    await use(never.secret);
    await store.db
      .updateTable('credentials')
      .set({ state: 'revoked', revoked_at: new Date(clock.now()).toISOString() })
      .where('id', '=', old.id)
      .execute();
    clock.advance(60_000);
    expect(await runInsights(deps)).toMatchObject({ detected: 0, resolved: 2 });
    const after = (await listFindings(store.db, { serviceId: service.id, limit: 50 })).data;
    expect(
      after
        .filter((x) => x.state === 'resolved')
        .map((x) => x.subject)
        .sort(),
    ).toEqual([keyOf(never.secret), keyOf(old.secret)].sort());
    const resolved = (await readChangesSince(store.db, 0, 1000)).filter((e) => e.type === 'insight.resolved');
    expect(resolved).toHaveLength(2);
  });
});
