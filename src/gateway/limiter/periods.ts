/** The periods a plan limit can have. Windows are calendar periods in UTC, as 3scale counts them. */
export const periods = ['minute', 'hour', 'day', 'week', 'month', 'year', 'eternity'] as const;
export type Period = (typeof periods)[number];

export function isPeriod(value: string): value is Period {
  return (periods as readonly string[]).includes(value);
}

/** A counting window: `[start, end)` in epoch milliseconds; `end` is `Infinity` for eternity. */
export interface Window {
  readonly start: number;
  readonly end: number;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/**
 * The window of `period` that contains `now`. Weeks start on Monday (ISO 8601).
 * @example windowOf('month', Date.UTC(2026, 1, 14)) // { start: Date.UTC(2026, 1, 1), end: Date.UTC(2026, 2, 1) }
 */
export function windowOf(period: Period, now: number): Window {
  switch (period) {
    case 'minute': {
      const start = now - (now % MINUTE);
      return { start, end: start + MINUTE };
    }
    case 'hour': {
      const start = now - (now % HOUR);
      return { start, end: start + HOUR };
    }
    case 'day': {
      const start = now - (now % DAY);
      return { start, end: start + DAY };
    }
    case 'week': {
      const dayStart = now - (now % DAY);
      // 1970-01-01 was a Thursday: (getUTCDay() + 6) % 7 is days since Monday
      const sinceMonday = (new Date(dayStart).getUTCDay() + 6) % 7;
      const start = dayStart - sinceMonday * DAY;
      return { start, end: start + 7 * DAY };
    }
    case 'month': {
      const d = new Date(now);
      return {
        start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
        end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
      };
    }
    case 'year': {
      const y = new Date(now).getUTCFullYear();
      return { start: Date.UTC(y, 0, 1), end: Date.UTC(y + 1, 0, 1) };
    }
    case 'eternity':
      return { start: 0, end: Number.POSITIVE_INFINITY };
  }
}

/** The nominal length of a period in seconds, as the `w` parameter of `RateLimit-Policy` states it. */
export function periodSeconds(period: Period, window: Window): number | null {
  return period === 'eternity' ? null : Math.round((window.end - window.start) / 1000);
}

/**
 * Remembers the current window of each period so the hot path does date math only when a window rolls over.
 */
export class WindowCalendar {
  private readonly cache = new Map<Period, Window>();

  windowOf(period: Period, now: number): Window {
    const cached = this.cache.get(period);
    if (cached !== undefined && now >= cached.start && now < cached.end) return cached;
    const w = windowOf(period, now);
    this.cache.set(period, w);
    return w;
  }
}
