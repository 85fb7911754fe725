/**
 * Issue 13: the usage page shows what remains of every limit of the plan in its current window, the per-minute
 * ones included, counted from the usage sums (the gateway's calendar windows in UTC).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listMetrics, setPlanLimit } from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { UsageRecorder } from '../../src/usage/index.js';
import { dialects } from '../support/stores.js';
import { type PortalHarness, signUp, startPortal } from './portal-harness.js';

describe.each(dialects)('remaining quota on every limit (%s)', (dialect) => {
  let h: PortalHarness;

  beforeAll(async () => {
    h = await startPortal(dialect);
  });
  afterAll(() => h.close());

  it('counts the current minute and day of each limit', async () => {
    const forecast = (await listMetrics(h.store.db, h.serviceId)).find((m) => m.systemName === 'forecast')!;
    await setPlanLimit({ db: h.store.db, clock: h.clock }, systemActor, h.plans.free, {
      metricId: forecast.id,
      period: 'minute',
      value: 10,
    });
    const dev = await signUp(h, 'quota@usage.test', 'Quota');
    await dev.get(`/apps/new?service=${h.serviceId}`);
    const made = await dev.submit('/apps/new', {
      serviceId: h.serviceId,
      planId: h.plans.free,
      name: 'Counter',
    });
    const appId = made.location.slice('/apps/'.length);
    const accountId = (
      await h.store.db
        .selectFrom('applications')
        .select('account_id')
        .where('id', '=', appId)
        .executeTakeFirstOrThrow()
    ).account_id;

    const recorder = new UsageRecorder({ db: h.store.db, clock: h.clock, flushIntervalMs: 0 });
    const call = (at: number) =>
      recorder.record({
        at,
        serviceId: h.serviceId,
        applicationId: appId,
        accountId,
        metrics: [
          { metricId: forecast.id, delta: 1 },
          { metricId: h.hitsId, delta: 1 },
        ],
        status: 200,
        latencyMs: 5,
        bytesIn: 0,
        bytesOut: 10,
        endUser: null,
        clientIp: '127.0.0.1',
      });
    const now = h.clock.now();
    // two calls in an earlier minute of the day, three in this minute
    call(now - 5 * 60_000);
    call(now - 5 * 60_000);
    for (let i = 0; i < 3; i++) call(now);
    await recorder.flush();
    await recorder.close();

    const page = (await dev.get(`/apps/${appId}/usage`)).body;
    const remaining = (period: string) =>
      Number(
        new RegExp(`data-testid="remaining-forecast-${period}"><strong>([0-9,]+)<`)
          .exec(page)?.[1]
          ?.replace(/,/g, ''),
      );
    expect(remaining('minute')).toBe(7);
    expect(remaining('day')).toBe(995);
  });
});
