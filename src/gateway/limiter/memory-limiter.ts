import type { ConsumeOptions, CounterCheck, Limiter, LimiterOutcome } from './limiter.js';

interface Counter {
  count: number;
  end: number;
}

/**
 * Counters in this process's memory: the embedded default. Exact for one process; with several gateway
 * processes each would count on its own, so those need the Redis limiter. Both modes behave the same here,
 * and there is nothing to fail.
 */
export class MemoryLimiter implements Limiter {
  private readonly counters = new Map<string, Counter>();
  private lastSweep = 0;

  consume(checks: readonly CounterCheck[], options: Pick<ConsumeOptions, 'now'>): LimiterOutcome {
    this.sweep(options.now);
    const used: number[] = new Array(checks.length);
    let exceeded: number[] | undefined;
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      const current = this.counters.get(counterId(c))?.count ?? 0;
      used[i] = current;
      if (current + c.delta > c.limit) {
        exceeded ??= [];
        exceeded.push(i);
      }
    }
    if (exceeded) return { kind: 'exceeded', used, exceeded };
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      const id = counterId(c);
      const counter = this.counters.get(id);
      if (counter) counter.count += c.delta;
      else this.counters.set(id, { count: c.delta, end: c.windowEnd });
      used[i] = (used[i] ?? 0) + c.delta;
    }
    return { kind: 'allowed', used };
  }

  /** Current count of a counter (tests and the Redis fallback read it). */
  peek(check: Pick<CounterCheck, 'key' | 'windowStart'>): number {
    return this.counters.get(counterId(check))?.count ?? 0;
  }

  /** Drops counters of windows that have ended, at most once a minute of clock time. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [id, counter] of this.counters) if (counter.end <= now) this.counters.delete(id);
  }

  async close(): Promise<void> {}
}

export function counterId(check: Pick<CounterCheck, 'key' | 'windowStart'>): string {
  return `${check.key}:${check.windowStart}`;
}
