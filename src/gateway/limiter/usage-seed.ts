/**
 * Where the in-memory limiter starts its counters after a restart: the usage recorded in the database
 * (`usage_metric_counts`, where the usage recorder's compactions move its journal; a gateway compacts before it
 * serves, so what a killed gateway left in the journal is counted). The minute and hour counters start from their rows,
 * day, week, month and year from the sum of their day rows, eternity from every day row.
 */
import { selectApplicationUsage } from '../../usage/index.js';
import type { Executor } from '../../store/index.js';
import { type Period, windowOf } from './periods.js';

/** A counter's recorded count in the window that held `now` when it was read. */
export interface SeedCount {
  readonly windowStart: number;
  readonly value: number;
}

/** An application's recorded counts by `${metricId}:${period}`. */
export type SeedCounts = ReadonlyMap<string, SeedCount>;

export type UsageSeedSource = (applicationId: string, now: number) => Promise<SeedCounts>;

const DAY_PERIODS: readonly Period[] = ['day', 'week', 'month', 'year'];

/** Reads an application's recorded usage of the windows that contain `now`. */
export function usageSeed(db: Executor): UsageSeedSource {
  return async (applicationId, now) => {
    const starts = new Map<Period, number>();
    const ends = new Map<Period, number>();
    for (const p of ['minute', 'hour', ...DAY_PERIODS] as const) {
      const w = windowOf(p, now);
      starts.set(p, w.start);
      ends.set(p, w.end);
    }
    // a week can begin in the previous year
    const daysFrom = Math.min(starts.get('week')!, starts.get('year')!);
    const { rows, totals } = await selectApplicationUsage(db, {
      applicationId,
      daysFrom: new Date(daysFrom).toISOString(),
      hour: new Date(starts.get('hour')!).toISOString(),
      minute: new Date(starts.get('minute')!).toISOString(),
    });
    const seeds = new Map<string, SeedCount>();
    const add = (metricId: string, period: Period, value: number) => {
      const id = `${metricId}:${period}`;
      const windowStart = period === 'eternity' ? 0 : starts.get(period)!;
      seeds.set(id, { windowStart, value: (seeds.get(id)?.value ?? 0) + value });
    };
    for (const r of rows) {
      if (r.granularity === 'minute') add(r.metric_id, 'minute', r.value);
      else if (r.granularity === 'hour') add(r.metric_id, 'hour', r.value);
      else {
        const at = Date.parse(r.bucket);
        for (const p of DAY_PERIODS)
          if (at >= starts.get(p)! && at < ends.get(p)!) add(r.metric_id, p, r.value);
      }
    }
    for (const [metricId, value] of totals) add(metricId, 'eternity', value);
    return seeds;
  };
}
