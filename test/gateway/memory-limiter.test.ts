import { describe, expect, it } from 'vitest';
import type { CounterCheck, LimiterOutcome } from '../../src/gateway/limiter/limiter.js';
import { MemoryLimiter } from '../../src/gateway/limiter/memory-limiter.js';

const MINUTE = 60_000;
const t0 = Date.UTC(2026, 10, 29, 10, 0);

function check(app: string, metricId: string, limit: number, windowStart: number, delta = 1): CounterCheck {
  return {
    key: `{${app}}:${metricId}:minute`,
    windowStart,
    windowEnd: windowStart + MINUTE,
    limit,
    delta,
    subject: { applicationId: app, metricId, period: 'minute', endUser: false },
  };
}

/** A small deterministic sequence (no Math.random: a failure must be reproducible). */
function* sequence(seed: number): Generator<number> {
  let x = seed;
  for (;;) {
    x = (x * 48271) % 2147483647; // MINSTD: exact in doubles
    yield x;
  }
}

describe('memory limiter with shared checks', () => {
  it('decides exactly as without them when the same check objects come call after call', () => {
    const shared = new MemoryLimiter({ sharedChecks: true });
    const plain = new MemoryLimiter();
    const random = sequence(42);
    const next = (n: number) => random.next().value! % n;
    // checks shared by calls, as authorize makes them: per application, limit and window; one with delta 2
    let windowStart = t0;
    const make = () => {
      const hits = check('app_a', 'hits', 7, windowStart);
      return [
        [hits, check('app_a', 'search', 3, windowStart, 2)],
        [hits],
        [check('app_b', 'hits', 5, windowStart)],
        // the same counter named twice by one request
        [check('app_c', 'hits', 4, windowStart), check('app_c', 'hits', 4, windowStart)],
      ];
    };
    let requests = make();
    const outcomes: [LimiterOutcome, LimiterOutcome][] = [];
    for (let i = 0; i < 400; i++) {
      if (i === 200) {
        // the next window: new checks, counters from zero (and the old window's swept)
        windowStart += MINUTE;
        requests = make();
      }
      const now = windowStart + i * 10;
      const checks = requests[next(requests.length)]!;
      const a = shared.consume(checks, { now });
      const b = plain.consume(checks, { now });
      if (a instanceof Promise || b instanceof Promise) throw new Error('no seed: decided at once');
      outcomes.push([a, b]);
    }
    for (const [a, b] of outcomes) expect(a).toEqual(b);
    // every kind of outcome was seen, so both ways of deciding were compared
    expect(outcomes.filter(([a]) => a.kind === 'allowed').length).toBeGreaterThan(10);
    expect(outcomes.filter(([a]) => a.kind === 'exceeded').length).toBeGreaterThan(10);
    expect(shared.peek(check('app_a', 'hits', 7, windowStart))).toBe(7);
    expect(shared.peek(check('app_a', 'search', 3, windowStart))).toBe(2);
  });

  it('adds nothing to a known counter when another counter of the request has no room', () => {
    const limiter = new MemoryLimiter({ sharedChecks: true });
    const hits = check('app_a', 'hits', 10, t0);
    const search = check('app_a', 'search', 1, t0);
    expect(limiter.consume([hits], { now: t0 })).toEqual({ kind: 'allowed', used: [1] });
    expect(limiter.consume([hits, search], { now: t0 })).toEqual({ kind: 'allowed', used: [2, 1] });
    expect(limiter.consume([hits, search], { now: t0 })).toEqual({
      kind: 'exceeded',
      used: [2, 1],
      exceeded: [1],
    });
    expect(limiter.consume([hits], { now: t0 })).toEqual({ kind: 'allowed', used: [3] });
  });
});
