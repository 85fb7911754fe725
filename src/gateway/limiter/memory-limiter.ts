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
    const n = checks.length;
    const used: number[] = new Array(n);
    // each counter is looked up once: the check pass remembers what it found for the counting pass
    const found: (Counter | string)[] = new Array(n);
    let exceeded: number[] | undefined;
    for (let i = 0; i < n; i++) {
      const c = checks[i]!;
      const id = counterId(c);
      const counter = this.counters.get(id);
      found[i] = counter ?? id;
      const current = counter === undefined ? 0 : counter.count;
      used[i] = current;
      if (current + c.delta > c.limit) {
        exceeded ??= [];
        exceeded.push(i);
      }
    }
    if (exceeded) return { kind: 'exceeded', used, exceeded };
    for (let i = 0; i < n; i++) {
      const c = checks[i]!;
      const counter = found[i]!;
      if (typeof counter === 'string') {
        // new counter (or one named twice by this request, created by its first mention)
        const again = this.counters.get(counter);
        if (again) again.count += c.delta;
        else this.counters.set(counter, { count: c.delta, end: c.windowEnd });
      } else counter.count += c.delta;
      used[i] = used[i]! + c.delta;
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
