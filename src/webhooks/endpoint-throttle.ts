/**
 * Delivery a small partner can bear (issue 9, seed 003): each endpoint's rate and a circuit breaker.
 *
 * - **Rate.** At most `rate` deliveries start in any sliding window of one second (for rates under one a
 *   second: one per `1 / rate` seconds). The rate is the provider's, lowered by the owner's when set.
 * - **Slowed.** Each failed attempt (no answer, or any answer but a 2xx, 429 included) halves the share of the
 *   rate the endpoint gets (down to 1/16); each success raises it by half again, up to the whole. An endpoint
 *   without a rate is unlimited until it fails, then slowed from `slowBase` deliveries a second.
 * - **Paused.** After `failuresToOpen` failures in a row the breaker opens: nothing is sent for `pauseMs`. Then
 *   it is half-open: one delivery (the probe) goes; a success closes the breaker (at the slowest share, rising
 *   with each success), a failure pauses it again for twice as long (at most `maxPauseMs`).
 * - **Retry-After** on 429 or 503 holds the whole endpoint until then.
 *
 * An endpoint that may not be sent to now is *blocked*: the worker leaves its messages out of its claims, and
 * pushes the due time of those it claimed to when it may send again, so the rest of the queue flows and nothing is
 * dropped. The state is in this process's memory, or in Redis when Redis is configured, where every worker shares
 * it (each operation one Lua script, atomic). Every time comes from the caller's clock, so tests drive it.
 */
import type { Redis } from 'ioredis';

export interface ThrottleSettings {
  /** Failures in a row that open the breaker (default 5). */
  failuresToOpen: number;
  /** The first pause (default 30 s); each failed probe doubles it. */
  pauseMs: number;
  /** The longest pause (default 10 min). */
  maxPauseMs: number;
  /** The smallest share of the rate a failing endpoint is slowed to (default 1/16). */
  minFactor: number;
  /** The rate an endpoint without one is slowed from (default 20 a second). */
  slowBase: number;
  /** How long a half-open probe holds the endpoint before another may go (default 60 s, the lease). */
  probeMs: number;
}

export const defaultThrottleSettings: ThrottleSettings = Object.freeze({
  failuresToOpen: 5,
  pauseMs: 30_000,
  maxPauseMs: 600_000,
  minFactor: 1 / 16,
  slowBase: 20,
  probeMs: 60_000,
});

export interface Grant {
  /** deliveries that may start now */
  granted: number;
  /** when more may start, when fewer were granted than wanted */
  retryAt: number | null;
}

export interface Report {
  /** the endpoint may not be sent to before then (paused, Retry-After); null when it may */
  blockedUntil: number | null;
  /** this report opened (or reopened) the breaker */
  opened: boolean;
}

export interface EndpointThrottle {
  /** Endpoints nothing may be sent to now. */
  blocked(now: number): Promise<string[]>;
  /** Takes up to `wanted` deliveries for the endpoint; `rate` per second, null for no limit. */
  acquire(endpointId: string, rate: number | null, wanted: number, now: number): Promise<Grant>;
  /** Tells how an attempt went: `retryAfterMs` from a 429's or 503's Retry-After. */
  report(endpointId: string, succeeded: boolean, now: number, retryAfterMs?: number | null): Promise<Report>;
  /** The endpoint's state, for the console and tests. */
  state(endpointId: string, now: number): Promise<EndpointHealth>;
  close(): Promise<void>;
}

export interface EndpointHealth {
  /** closed: sending; open: paused; half-open: one probe may go */
  breaker: 'closed' | 'open' | 'half-open';
  /** share of the rate the endpoint gets now, in (0, 1] */
  factor: number;
  failures: number;
  blockedUntil: number | null;
}

/** The effective rate of an endpoint: the provider's, lowered by the owner's. */
export function effectiveRate(provider: number | null, owner: number | null): number | null {
  if (provider === null) return owner;
  if (owner === null) return provider;
  return Math.min(provider, owner);
}

/** A sliding window: `capacity` deliveries in `windowMs`. */
export function windowOf(rate: number): { capacity: number; windowMs: number } {
  const capacity = Math.max(1, Math.floor(rate));
  return { capacity, windowMs: (capacity / rate) * 1000 };
}

interface MemoryState {
  factor: number;
  failures: number;
  openUntil: number;
  pauseMs: number;
  probeUntil: number;
  holdUntil: number;
  /** start times in the window, oldest first */
  sent: number[];
  /** when the window lets the next one go (a full window) */
  fullUntil: number;
}

/** The throttle of one process. */
export function memoryThrottle(settings: Partial<ThrottleSettings> = {}): EndpointThrottle {
  const s = { ...defaultThrottleSettings, ...settings };
  const states = new Map<string, MemoryState>();
  const get = (id: string): MemoryState => {
    let st = states.get(id);
    if (!st) {
      st = {
        factor: 1,
        failures: 0,
        openUntil: 0,
        pauseMs: 0,
        probeUntil: 0,
        holdUntil: 0,
        sent: [],
        fullUntil: 0,
      };
      states.set(id, st);
    }
    return st;
  };
  const until = (st: MemoryState): number =>
    Math.max(st.openUntil, st.holdUntil, st.fullUntil, st.openUntil > 0 ? st.probeUntil : 0);

  return {
    async blocked(now) {
      const out: string[] = [];
      for (const [id, st] of states) if (until(st) > now) out.push(id);
      return out;
    },
    async acquire(id, rate, wanted, now) {
      const st = get(id);
      if (st.openUntil > now) return { granted: 0, retryAt: st.openUntil };
      if (st.holdUntil > now) return { granted: 0, retryAt: st.holdUntil };
      if (st.openUntil > 0) {
        if (st.probeUntil > now) return { granted: 0, retryAt: st.probeUntil };
        st.probeUntil = now + s.probeMs;
        return { granted: 1, retryAt: wanted > 1 ? st.probeUntil : null };
      }
      let r = rate;
      if (r === null) {
        if (st.factor >= 1) return { granted: wanted, retryAt: null };
        r = s.slowBase;
      }
      const { capacity, windowMs } = windowOf(r * st.factor);
      while (st.sent.length > 0 && st.sent[0]! <= now - windowMs) st.sent.shift();
      const granted = Math.max(0, Math.min(wanted, capacity - st.sent.length));
      for (let i = 0; i < granted; i++) st.sent.push(now);
      if (granted < wanted) {
        st.fullUntil = Math.ceil(st.sent[0]! + windowMs);
        return { granted, retryAt: st.fullUntil };
      }
      return { granted, retryAt: null };
    },
    async report(id, succeeded, now, retryAfterMs) {
      const st = get(id);
      let opened = false;
      if (succeeded) {
        st.failures = 0;
        if (st.openUntil > 0) {
          st.openUntil = 0;
          st.probeUntil = 0;
          st.pauseMs = 0;
          st.factor = s.minFactor;
        } else st.factor = Math.min(1, st.factor * 1.5);
      } else {
        st.failures++;
        st.factor = Math.max(s.minFactor, st.factor / 2);
        if (retryAfterMs !== undefined && retryAfterMs !== null)
          st.holdUntil = Math.max(st.holdUntil, now + retryAfterMs);
        if (st.openUntil > 0 && st.openUntil <= now) {
          st.pauseMs = Math.min(s.maxPauseMs, Math.max(s.pauseMs, st.pauseMs * 2));
          st.openUntil = now + st.pauseMs;
          st.probeUntil = 0;
          opened = true;
        } else if (st.openUntil === 0 && st.failures >= s.failuresToOpen) {
          st.pauseMs = s.pauseMs;
          st.openUntil = now + st.pauseMs;
          opened = true;
        }
      }
      const u = Math.max(st.openUntil, st.holdUntil);
      return { blockedUntil: u > now ? u : null, opened };
    },
    async state(id, now) {
      const st = get(id);
      const u = until(st);
      return {
        breaker: st.openUntil > now ? 'open' : st.openUntil > 0 ? 'half-open' : 'closed',
        factor: st.factor,
        failures: st.failures,
        blockedUntil: u > now ? u : null,
      };
    },
    async close() {},
  };
}

// The same logic in Lua, for every worker sharing Redis. Keys: the endpoint's state hash, its window (a sorted
// set of start times), and the index of blocked endpoints (a sorted set scored by blocked-until).
const acquireScript = `
local id = ARGV[1]
local now = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])
local probeMs = tonumber(ARGV[5])
local slowBase = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local s = redis.call('HMGET', KEYS[1], 'factor', 'openUntil', 'probeUntil', 'holdUntil')
local factor = tonumber(s[1]) or 1
local openUntil = tonumber(s[2]) or 0
local probeUntil = tonumber(s[3]) or 0
local holdUntil = tonumber(s[4]) or 0
if openUntil > now then return {0, openUntil} end
if holdUntil > now then return {0, holdUntil} end
if openUntil > 0 then
  if probeUntil > now then return {0, probeUntil} end
  redis.call('HSET', KEYS[1], 'probeUntil', now + probeMs)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[3], now + probeMs, id)
  if wanted > 1 then return {1, now + probeMs} end
  return {1, -1}
end
if rate < 0 then
  if factor >= 1 then return {wanted, -1} end
  rate = slowBase
end
rate = rate * factor
local capacity = math.max(1, math.floor(rate))
local windowMs = capacity / rate * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - windowMs)
local count = redis.call('ZCARD', KEYS[2])
local granted = math.max(0, math.min(wanted, capacity - count))
if granted > 0 then
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', granted)
  for i = 1, granted do redis.call('ZADD', KEYS[2], now, seq - i) end
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
if granted < wanted then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local retryAt = math.ceil(tonumber(oldest[2]) + windowMs)
  redis.call('ZADD', KEYS[3], retryAt, id)
  return {granted, retryAt}
end
return {granted, -1}
`;

const reportScript = `
local id = ARGV[1]
local now = tonumber(ARGV[2])
local succeeded = ARGV[3] == '1'
local retryAfter = tonumber(ARGV[4])
local failuresToOpen = tonumber(ARGV[5])
local pause0 = tonumber(ARGV[6])
local maxPause = tonumber(ARGV[7])
local minFactor = tonumber(ARGV[8])
local ttl = tonumber(ARGV[9])
local s = redis.call('HMGET', KEYS[1], 'factor', 'failures', 'openUntil', 'pauseMs', 'holdUntil')
local factor = tonumber(s[1]) or 1
local failures = tonumber(s[2]) or 0
local openUntil = tonumber(s[3]) or 0
local pauseMs = tonumber(s[4]) or 0
local holdUntil = tonumber(s[5]) or 0
local opened = 0
if succeeded then
  failures = 0
  if openUntil > 0 then
    openUntil = 0
    pauseMs = 0
    factor = minFactor
    redis.call('HSET', KEYS[1], 'probeUntil', 0)
  else
    factor = math.min(1, factor * 1.5)
  end
else
  failures = failures + 1
  factor = math.max(minFactor, factor / 2)
  if retryAfter >= 0 then holdUntil = math.max(holdUntil, now + retryAfter) end
  if openUntil > 0 and openUntil <= now then
    pauseMs = math.min(maxPause, math.max(pause0, pauseMs * 2))
    openUntil = now + pauseMs
    redis.call('HSET', KEYS[1], 'probeUntil', 0)
    opened = 1
  elseif openUntil == 0 and failures >= failuresToOpen then
    pauseMs = pause0
    openUntil = now + pauseMs
    opened = 1
  end
end
redis.call('HSET', KEYS[1], 'factor', tostring(factor), 'failures', failures, 'openUntil', openUntil,
  'pauseMs', pauseMs, 'holdUntil', holdUntil)
redis.call('PEXPIRE', KEYS[1], ttl)
local u = math.max(openUntil, holdUntil)
if u > now then
  redis.call('ZADD', KEYS[2], u, id)
  return {u, opened}
end
return {-1, opened}
`;

/** Shared by every worker on one Redis; `prefix` keeps tests apart. */
export function redisThrottle(
  redis: Redis,
  settings: Partial<ThrottleSettings> = {},
  prefix = 'trellis:webhooks:',
): EndpointThrottle {
  const s = { ...defaultThrottleSettings, ...settings };
  const ttl = 86_400_000;
  const stateKey = (id: string) => `${prefix}endpoint:${id}`;
  const windowKey = (id: string) => `${prefix}window:${id}`;
  const blockedKey = `${prefix}blocked`;
  const run = (script: string, keys: string[], args: (string | number)[]) =>
    redis.eval(script, keys.length, ...keys, ...args) as Promise<number[]>;
  let lastSweep = 0;
  return {
    async blocked(now) {
      if (now - lastSweep > 60_000) {
        lastSweep = now;
        await redis.zremrangebyscore(blockedKey, '-inf', now);
      }
      return redis.zrangebyscore(blockedKey, `(${now}`, '+inf');
    },
    async acquire(id, rate, wanted, now) {
      const [granted, retryAt] = await run(
        acquireScript,
        [stateKey(id), windowKey(id), blockedKey],
        [id, now, rate ?? -1, wanted, s.probeMs, s.slowBase, ttl],
      );
      return { granted: Number(granted), retryAt: Number(retryAt) < 0 ? null : Number(retryAt) };
    },
    async report(id, succeeded, now, retryAfterMs) {
      const [u, opened] = await run(
        reportScript,
        [stateKey(id), blockedKey],
        [
          id,
          now,
          succeeded ? '1' : '0',
          retryAfterMs ?? -1,
          s.failuresToOpen,
          s.pauseMs,
          s.maxPauseMs,
          s.minFactor,
          ttl,
        ],
      );
      return { blockedUntil: Number(u) < 0 ? null : Number(u), opened: Number(opened) === 1 };
    },
    async state(id, now) {
      const [factor, failures, openUntil, probeUntil, holdUntil] = await redis.hmget(
        stateKey(id),
        'factor',
        'failures',
        'openUntil',
        'probeUntil',
        'holdUntil',
      );
      const open = Number(openUntil ?? 0);
      const blockedScore = await redis.zscore(blockedKey, id);
      const u = Math.max(
        open,
        Number(holdUntil ?? 0),
        open > 0 ? Number(probeUntil ?? 0) : 0,
        Number(blockedScore ?? 0),
      );
      return {
        breaker: open > now ? 'open' : open > 0 ? 'half-open' : 'closed',
        factor: factor === null ? 1 : Number(factor),
        failures: Number(failures ?? 0),
        blockedUntil: u > now ? u : null,
      };
    },
    async close() {},
  };
}

/**
 * Redis when it answers, this process's memory when it does not (a Redis outage slows nothing down: each worker
 * then keeps its endpoints' rates on its own until Redis is back).
 */
export function sharedThrottle(
  primary: EndpointThrottle,
  fallback: EndpointThrottle,
  onError: (err: unknown) => void,
): EndpointThrottle {
  const either =
    <A extends unknown[], R>(f: (t: EndpointThrottle) => (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await f(primary)(...args);
      } catch (err) {
        onError(err);
        return f(fallback)(...args);
      }
    };
  return {
    blocked: either((t) => t.blocked),
    acquire: either((t) => t.acquire),
    report: either((t) => t.report),
    state: either((t) => t.state),
    async close() {
      await primary.close();
      await fallback.close();
    },
  };
}
