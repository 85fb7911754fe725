/**
 * Tokens issued, counted per application and hour, so charts and monitoring can set tokens issued beside API
 * calls made (a client fetching a token per call shows at once). Counting never delays the token response: each
 * issuance is summed in memory and written by `flush`, run on a timer and at shutdown.
 */
import type { Clock } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import { ceilTo, floorTo } from '../usage/index.js';
import { type TokenCount, addTokenCounts, selectTokenCounts } from './oauth.store.js';

export interface TokenIssued {
  applicationId: string;
  serviceId: string;
  accountId: string;
  /** client_credentials | authorization_code | refresh_token */
  grantType: string;
}

const HOUR = 3_600_000;

export class TokenCounter {
  private pending = new Map<string, TokenCount>();
  private flushing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout | null;

  constructor(
    private readonly db: Executor,
    private readonly clock: Clock,
    private readonly onError: (err: unknown) => void,
    flushIntervalMs = 1000,
  ) {
    this.timer = flushIntervalMs > 0 ? setInterval(() => void this.flush(), flushIntervalMs) : null;
    this.timer?.unref();
  }

  count(t: TokenIssued): void {
    const now = this.clock.now();
    const bucket = new Date(now - (now % HOUR)).toISOString();
    const key = `${bucket}|${t.applicationId}|${t.grantType}`;
    const row = this.pending.get(key);
    if (row) row.count++;
    else this.pending.set(key, { bucket, ...t, count: 1 });
  }

  /** Writes what was counted; a failed write is put back and retried at the next flush. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      try {
        await addTokenCounts(this.db, [...batch.values()]);
      } catch (err) {
        for (const [key, row] of batch) {
          const now = this.pending.get(key);
          if (now) now.count += row.count;
          else this.pending.set(key, row);
        }
        this.onError(err);
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}

/**
 * Tokens issued per hour and grant type, for an application or a service. `from` is floored and `to` raised to
 * the hour as `/usage` and `/traffic` do, so the hour a `from` falls inside is counted and the two series line up.
 */
export function queryTokenCounts(
  db: Executor,
  filter: { applicationId?: string; serviceId?: string; from: string; to: string },
): Promise<TokenCount[]> {
  return selectTokenCounts(db, {
    ...filter,
    from: new Date(floorTo(filter.from, 'hour')).toISOString(),
    to: new Date(ceilTo(filter.to, 'hour')).toISOString(),
  });
}
