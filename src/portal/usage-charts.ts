/**
 * The series behind the usage charts of the portal and the console: calls per bucket and, for applications of
 * `oauth2` services, the access tokens issued in the same buckets — a client fetching a token for every call
 * stands out when both are drawn together.
 */
import { queryTokenCounts } from '../oauth/index.js';
import type { Executor } from '../store/index.js';
import type { UsagePoint } from '../usage/index.js';

export type ChartUnit = 'hour' | 'day';

/** What a `<canvas data-chart>` holds: labels are ISO bucket starts, `tokens` is drawn as a second series. */
export interface ChartData {
  unit: ChartUnit;
  labels: string[];
  values: number[];
  limit: number | null;
  tokens?: number[];
}

const step: Record<ChartUnit, number> = { hour: 3_600_000, day: 86_400_000 };

/** The starts of the buckets from `from` (rounded down) up to `to` (exclusive, rounded up), as ISO strings. */
export function bucketsBetween(from: number, to: number, unit: ChartUnit): string[] {
  const first = from - (from % step[unit]);
  const out: string[] = [];
  for (let t = first; t < to; t += step[unit]) out.push(new Date(t).toISOString());
  return out;
}

/** Values of `points` on the given buckets (zero where there is none). */
export function valuesOn(buckets: string[], points: UsagePoint[] | undefined): number[] {
  const byAt = new Map((points ?? []).map((p) => [p.at, p.value]));
  return buckets.map((b) => byAt.get(b) ?? 0);
}

/**
 * Access tokens issued to an application on the given buckets (all grant types). Counts are kept per hour; a day
 * bucket sums its hours.
 * @example await tokensOn(db, app.id, bucketsBetween(from, to, 'day'), 'day')
 */
export async function tokensOn(
  db: Executor,
  applicationId: string,
  buckets: string[],
  unit: ChartUnit,
): Promise<number[]> {
  const first = buckets[0];
  const last = buckets[buckets.length - 1];
  if (first === undefined || last === undefined) return [];
  const rows = await queryTokenCounts(db, {
    applicationId,
    from: first,
    to: new Date(Date.parse(last) + step[unit]).toISOString(),
  });
  const sums = new Map<string, number>();
  for (const r of rows) {
    const ms = Date.parse(r.bucket);
    const key = new Date(ms - (ms % step[unit])).toISOString();
    sums.set(key, (sums.get(key) ?? 0) + r.count);
  }
  return buckets.map((b) => sums.get(b) ?? 0);
}
