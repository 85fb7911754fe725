/**
 * Quota alerts (issue 10): each level (50, 80, 90, 100 % of a limit) is announced once per limit window — a
 * `quota.level_reached` event and a mail to the account's admins — driven by the injected clock, on both
 * databases; a new window announces again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEventPayload, readChangesSince } from '../../src/events/index.js';
import { runQuotaAlerts } from '../../src/insights/index.js';
import { ManualClock, newId } from '../../src/kernel/index.js';
import { createMailer, listMail } from '../../src/mail/index.js';
import { UsageRecorder } from '../../src/usage/index.js';
import { Fixtures } from '../gateway/fixtures.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';

describe.each(dialects)('quota alerts (%s)', (dialect) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore(dialect);
  });
  afterAll(async () => {
    await store.cleanup();
  });

  it('announces each level once per window, by event and mail, and again in the next window', async () => {
    const t0 = Date.UTC(2026, 5, 1, 10, 5);
    const clock = new ManualClock(t0);
    const f = new Fixtures(store, clock);
    const service = await f.service();
    const planId = await f.plan(service.id);
    const limitId = await f.limit(planId, service.hitsId, 'hour', 10);
    const app = await f.application(service.id, planId);
    const now = new Date(t0).toISOString();
    await store.db
      .insertInto('users')
      .values({
        id: newId('user'),
        account_id: app.accountId,
        email: 'owner@partner.test',
        name: 'Owner',
        role: 'admin',
        password_hash: null,
        custom_fields: '{}',
        created_at: now,
        updated_at: now,
      })
      .execute();
    const recorder = new UsageRecorder({ db: store.db, clock, flushIntervalMs: 0 });
    const use = async (n: number) => {
      recorder.record({
        at: clock.now(),
        serviceId: service.id,
        applicationId: app.id,
        accountId: app.accountId,
        metrics: [{ metricId: service.hitsId, delta: n }],
        status: 200,
        latencyMs: 1,
        bytesIn: 0,
        bytesOut: 0,
        endUser: null,
        clientIp: '127.0.0.1',
      });
      await recorder.flush();
    };
    const mailer = createMailer({ db: store.db, clock, smtpUrl: '', from: 'portal@trellis.test' });
    const run = async () => (await runQuotaAlerts({ db: store.db, clock, mailer })).announced;

    await use(4);
    expect(await run()).toBe(0);
    await use(1); // 5 of 10
    expect(await run()).toBe(1);
    expect(await run()).toBe(0);
    clock.advance(60_000);
    await use(4); // 9 of 10: 80 and 90 at once
    expect(await run()).toBe(2);
    clock.advance(1000); // mails made in one clock millisecond would list in any order
    await use(1); // 10 of 10
    expect(await run()).toBe(1);
    await use(2); // over the limit: nothing new
    expect(await run()).toBe(0);
    // the next hour is a new window
    clock.set(t0 + 3_600_000);
    await use(6);
    expect(await run()).toBe(1);
    expect(await run()).toBe(0);

    const events = (await readChangesSince(store.db, 0, 1000)).filter(
      (e) => e.type === 'quota.level_reached',
    );
    expect(events.map((e) => [e.payload.level, e.payload.windowStart])).toEqual([
      [50, '2026-06-01T10:00:00.000Z'],
      [80, '2026-06-01T10:00:00.000Z'],
      [90, '2026-06-01T10:00:00.000Z'],
      [100, '2026-06-01T10:00:00.000Z'],
      [50, '2026-06-01T11:00:00.000Z'],
    ]);
    for (const e of events) expect(checkEventPayload(e.type, e.payload)).toEqual([]);
    expect(events[0]!.payload).toMatchObject({ limitId, applicationId: app.id, used: 5, limit: 10 });
    const mails = await listMail(store.db, { to: 'owner@partner.test' });
    expect(mails.map((m) => m.subject).reverse()).toEqual([
      'App: 50 % of the hour limit on hits used',
      'App: 90 % of the hour limit on hits used',
      'App: the hour limit on hits is reached',
      'App: 50 % of the hour limit on hits used',
    ]);
  });
});
