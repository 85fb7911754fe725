import type { ConsumeOptions, CounterCheck, Limiter, LimiterOutcome } from './limiter.js';
import type { SeedCounts, UsageSeedSource } from './usage-seed.js';

interface Counter {
  count: number;
  end: number;
}

/** A counter's windows: the current one and, briefly, the one before (swept once it ended). */
type Windows = Map<number, Counter>;

export interface MemoryLimiterOptions {
  /**
   * Recorded usage to start counters from (see `usage-seed.ts`): read once per application, before its first
   * call is decided, so a restarted gateway counts on from what was flushed instead of from zero.
   */
  seed?: UsageSeedSource;
  /** The recorded usage could not be read: that application's counters start from zero. */
  onSeedFailure?: (error: Error, applicationId: string) => void;
  /**
   * The caller passes the same check objects call after call (the gateway's authorize shares an application's
   * checks for as long as their window lasts): each one's counter is remembered, so the next call with it goes
   * straight to its counter. Off for callers that build checks afresh (it would only add work there).
   */
  sharedChecks?: boolean;
}

/**
 * Counters in this process's memory: the embedded default. Exact for one process; with several gateway
 * processes each would count on its own, so those need the Redis limiter. Both modes behave the same here,
 * and there is nothing to fail. With a `seed`, an application's counters start from its recorded usage: the
 * first call of each application after a start waits for one read, every later call decides in memory.
 */
export class MemoryLimiter implements Limiter {
  /**
   * Counter key → window start → counter. Two levels instead of one `key:windowStart` string: the key is the
   * string the caller keeps (authorize builds it once per application and limit), so its hash is computed once,
   * not a fresh string hashed per check per call.
   */
  private readonly counters = new Map<string, Windows>();
  private lastSweep = 0;
  /** Recorded counts per application; a promise while being read. */
  private readonly seeds = new Map<string, SeedCounts | Promise<void>>();
  /**
   * An application check → its counter (with `sharedChecks`). A check names one window, so its counter stays the
   * same until the window ends, after which authorize makes a new check; only counters that exist are remembered,
   * so their application's seed has been read.
   */
  private readonly known: WeakMap<CounterCheck, Counter> | null;

  constructor(private readonly options: MemoryLimiterOptions = {}) {
    this.known = options.sharedChecks === true ? new WeakMap() : null;
  }

  consume(
    checks: readonly CounterCheck[],
    options: Pick<ConsumeOptions, 'now'>,
  ): LimiterOutcome | Promise<LimiterOutcome> {
    if (this.known !== null) {
      const outcome = this.consumeKnown(this.known, checks, options.now);
      if (outcome !== null) return outcome;
    }
    const seed = this.options.seed;
    if (seed !== undefined) {
      let waiting: Promise<void>[] | undefined;
      for (const c of checks) {
        if (c.subject === undefined || c.subject.endUser) continue;
        const app = c.subject.applicationId;
        let known = this.seeds.get(app);
        if (known === undefined) {
          known = this.readSeed(seed, app, options.now);
          this.seeds.set(app, known);
        }
        if (known instanceof Promise) {
          waiting ??= [];
          waiting.push(known);
        }
      }
      if (waiting !== undefined) return Promise.all(waiting).then(() => this.consumeNow(checks, options));
    }
    return this.consumeNow(checks, options);
  }

  private readSeed(seed: UsageSeedSource, applicationId: string, now: number): Promise<void> {
    return seed(applicationId, now).then(
      (counts) => {
        this.seeds.set(applicationId, counts);
      },
      (err: unknown) => {
        // counting from zero is what a gateway did before seeds existed; trying again later could count calls
        // this process admitted (and flushed meanwhile) twice
        this.seeds.set(applicationId, new Map());
        this.options.onSeedFailure?.(err instanceof Error ? err : new Error(String(err)), applicationId);
      },
    );
  }

  /**
   * The common call: every counter known and with room. Decides as `consumeNow` does (each check against the count
   * before this request, then every delta added); null when a counter is not known yet or has no room, for
   * `consumeNow` to decide and say which.
   */
  private consumeKnown(
    known: WeakMap<CounterCheck, Counter>,
    checks: readonly CounterCheck[],
    now: number,
  ): LimiterOutcome | null {
    if (now - this.lastSweep >= 60_000) return null;
    const n = checks.length;
    const counters: Counter[] = new Array(n);
    const used: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const c = checks[i]!;
      const counter = known.get(c);
      if (counter === undefined || counter.count + c.delta > c.limit) return null;
      counters[i] = counter;
      used[i] = counter.count;
    }
    for (let i = 0; i < n; i++) {
      const delta = checks[i]!.delta;
      counters[i]!.count += delta;
      used[i] = used[i]! + delta;
    }
    return { kind: 'allowed', used };
  }

  /** The recorded count a new counter starts from: 0 without a seed, for end users, or for another window. */
  private seeded(c: CounterCheck): number {
    const s = c.subject;
    if (s === undefined || s.endUser) return 0;
    const counts = this.seeds.get(s.applicationId);
    if (counts === undefined || counts instanceof Promise) return 0;
    const count = counts.get(`${s.metricId}:${s.period}`);
    return count !== undefined && count.windowStart === c.windowStart ? count.value : 0;
  }

  /** Checks and counts on the counters in memory, synchronously (the Redis limiter's local fallback uses it). */
  consumeNow(checks: readonly CounterCheck[], options: Pick<ConsumeOptions, 'now'>): LimiterOutcome {
    this.sweep(options.now);
    const n = checks.length;
    const used: number[] = new Array(n);
    // each counter is looked up once: the check pass remembers what it found for the counting pass (a counter, or
    // its windows when it is new)
    const found: (Counter | Windows)[] = new Array(n);
    let exceeded: number[] | undefined;
    for (let i = 0; i < n; i++) {
      const c = checks[i]!;
      let windows = this.counters.get(c.key);
      if (windows === undefined) {
        windows = new Map();
        this.counters.set(c.key, windows);
      }
      const counter = windows.get(c.windowStart);
      found[i] = counter ?? windows;
      const current = counter === undefined ? this.seeded(c) : counter.count;
      used[i] = current;
      if (current + c.delta > c.limit) {
        exceeded ??= [];
        exceeded.push(i);
      }
    }
    if (exceeded) return { kind: 'exceeded', used, exceeded };
    const known = this.known;
    for (let i = 0; i < n; i++) {
      const c = checks[i]!;
      let counter = found[i]!;
      if (counter instanceof Map) {
        // new counter (or one named twice by this request, created by its first mention)
        const again = counter.get(c.windowStart);
        if (again) again.count += c.delta;
        else {
          const made = { count: used[i]! + c.delta, end: c.windowEnd };
          counter.set(c.windowStart, made);
          counter = made;
        }
      } else counter.count += c.delta;
      // end users' checks are made per call: remembering them would only fill the map
      if (known !== null && !(counter instanceof Map) && c.subject?.endUser === false) known.set(c, counter);
      used[i] = used[i]! + c.delta;
    }
    return { kind: 'allowed', used };
  }

  /** Current count of a counter (tests and the Redis fallback read it). */
  peek(check: Pick<CounterCheck, 'key' | 'windowStart'>): number {
    return this.counters.get(check.key)?.get(check.windowStart)?.count ?? 0;
  }

  /** Drops counters of windows that have ended, at most once a minute of clock time. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [key, windows] of this.counters) {
      for (const [start, counter] of windows) if (counter.end <= now) windows.delete(start);
      if (windows.size === 0) this.counters.delete(key);
    }
  }

  async close(): Promise<void> {}
}
