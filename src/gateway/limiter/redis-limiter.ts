import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ConsumeOptions, CounterCheck, Limiter, LimiterFailure, LimiterOutcome } from './limiter.js';
import { MemoryLimiter } from './memory-limiter.js';

/**
 * For each request of a batch in turn: check every counter of the request, then increment all of them — the
 * request's check-and-increment is one atomic step, as Redis runs a script alone, so N concurrent requests
 * against a limit of L let exactly L through however many gateways send them. The requests of one event-loop
 * turn share one script call (one command to build, send and run instead of one per request); the outcome is the
 * same as one script per request run back to back in arrival order. Each counter is read once per call and
 * written once at its end (INCRBY of what the call added; the expiry set when that created the key).
 * KEYS: every request's counters, request after request. ARGV[1]: number of requests; then per request its
 * number of counters n, then limit, delta, ttl in ms (0: never expires) for each of its n counters.
 * Returns one reply per request: {1, counts after} or {0, counts before, indexes (1-based) of full counters}.
 */
const CONSUME_SCRIPT = `
local value = {}
local added = {}
local ttls = {}
local out = {}
local k = 0
local a = 2
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  a = a + 1
  local used = {}
  local exceeded = {}
  for i = 1, n do
    local key = KEYS[k + i]
    local current = value[key]
    if current == nil then
      current = tonumber(redis.call('GET', key) or '0')
      value[key] = current
      added[key] = 0
    end
    used[i] = current
    if current + tonumber(ARGV[a + i * 3 - 2]) > tonumber(ARGV[a + i * 3 - 3]) then
      exceeded[#exceeded + 1] = i
    end
  end
  if #exceeded > 0 then
    out[r] = {0, used, exceeded}
  else
    for i = 1, n do
      local key = KEYS[k + i]
      local delta = tonumber(ARGV[a + i * 3 - 2])
      value[key] = value[key] + delta
      added[key] = added[key] + delta
      if ttls[key] == nil then ttls[key] = tonumber(ARGV[a + i * 3 - 1]) end
      used[i] = value[key]
    end
    out[r] = {1, used}
  end
  k = k + n
  a = a + n * 3
end
for key, n in pairs(added) do
  if n > 0 then
    local v = redis.call('INCRBY', key, n)
    if ttls[key] > 0 and v == n then
      redis.call('PEXPIRE', key, ttls[key])
    end
  end
end
return out
`;
const CONSUME_SHA = createHash('sha1').update(CONSUME_SCRIPT).digest('hex');

/** Counters outlive their window by this much, so a gateway with a slightly late clock still finds them. */
const EXPIRY_GRACE_MS = 60_000;

/** Requests in one strict script call at most; more start another call in the same turn. */
const MAX_STRICT_BATCH = 256;

/** A strict request waiting for its event-loop turn's script call. */
interface StrictRequest {
  readonly checks: readonly CounterCheck[];
  readonly options: ConsumeOptions;
  readonly resolve: (outcome: LimiterOutcome) => void;
}

/** A counter as a gateway in `batched` mode knows it. */
interface SyncedCounter {
  readonly redisKey: string;
  readonly end: number;
  readonly ttlMs: number;
  /** The shared count as Redis last reported it (includes our increments already pushed). */
  base: number;
  /** Our increments not pushed yet. */
  pending: number;
  /** Our increments pushed but not yet acknowledged. */
  inFlight: number;
  /** Syncs since a request last used the counter; idle counters are forgotten so their next use re-reads Redis. */
  idleSyncs: number;
  /** Set while the first read from Redis is under way. */
  loading: Promise<void> | null;
}

export interface RedisLimiterOptions {
  redis: Redis;
  /** Prepended to every key, so several Trellis installs (or tests) can share one Redis. */
  keyPrefix?: string;
  /** How often `batched` counters are pushed to and refreshed from Redis. Default 100 ms. */
  syncIntervalMs?: number;
  onFailure?: (failure: LimiterFailure) => void;
}

/**
 * Counters in Redis, shared by every gateway process and host.
 *
 * `strict` runs {@link CONSUME_SCRIPT} for the requests of each event-loop turn: exact, one round trip.
 *
 * `batched` decides locally against `base + pending + inFlight` and syncs every `syncIntervalMs`. The overshoot
 * bound: a gateway never admits more than the limit by its own counts, and it learns the others' counts at every
 * sync, so over a window the total admitted is at most `L + (N − 1) × A`, where N is the number of gateways
 * counting on the key and A is what one gateway admits on that key during one sync interval plus one Redis
 * round trip (and never more than `L + (N − 1) × L`). A counter seen for the first time is read from Redis
 * before deciding, so restarts and idle counters do not start from zero.
 *
 * When Redis is unreachable: fail `open` keeps deciding on local counts (strict falls back to an in-process
 * counter, batched keeps its pending increments and pushes them when Redis is back); fail `closed` answers
 * `unavailable`. Each failure is reported through `onFailure`.
 */
export class RedisLimiter implements Limiter {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly onFailure: (failure: LimiterFailure) => void;
  private readonly local = new MemoryLimiter();
  private readonly synced = new Map<string, SyncedCounter>();
  private readonly timer: NodeJS.Timeout;
  private syncing: Promise<void> | null = null;
  /** Strict requests of this event-loop turn, sent together when the turn's I/O is done (setImmediate). */
  private strictBatch: StrictRequest[] = [];
  /** False from a failed sync until the next successful one: batched + closed refuses meanwhile. */
  private syncHealthy = true;
  private lastNow = 0;

  constructor(options: RedisLimiterOptions) {
    this.redis = options.redis;
    this.prefix = options.keyPrefix ?? 'trellis:rl:';
    this.onFailure = options.onFailure ?? (() => {});
    this.timer = setInterval(() => void this.sync(), options.syncIntervalMs ?? 100);
    this.timer.unref();
  }

  consume(
    checks: readonly CounterCheck[],
    options: ConsumeOptions,
  ): Promise<LimiterOutcome> | LimiterOutcome {
    this.lastNow = options.now;
    return options.mode === 'strict'
      ? this.consumeStrict(checks, options)
      : this.consumeBatched(checks, options);
  }

  private consumeStrict(checks: readonly CounterCheck[], options: ConsumeOptions): Promise<LimiterOutcome> {
    return new Promise((resolve) => {
      if (this.strictBatch.length === 0) setImmediate(this.sendStrictBatch);
      this.strictBatch.push({ checks, options, resolve });
      if (this.strictBatch.length >= MAX_STRICT_BATCH) this.sendStrictBatch();
    });
  }

  /** Sends the waiting strict requests in one script call and answers each (an arrow: it is a timer callback). */
  private readonly sendStrictBatch = (): void => {
    const batch = this.strictBatch;
    if (batch.length === 0) return;
    this.strictBatch = [];
    const keys: string[] = [];
    const args: (string | number)[] = [batch.length];
    for (const { checks, options } of batch) {
      args.push(checks.length);
      for (const c of checks) {
        keys.push(`${this.prefix}${c.key}:${c.windowStart}`);
        args.push(c.limit, c.delta, ttlOf(c, options.now));
      }
    }
    this.runScript(keys, args).then(
      (reply) => {
        const replies = reply as [number, number[], number[] | undefined][];
        for (let i = 0; i < batch.length; i++) {
          const [ok, used, exceeded] = replies[i]!;
          batch[i]!.resolve(
            ok === 1
              ? { kind: 'allowed', used }
              : { kind: 'exceeded', used, exceeded: (exceeded ?? []).map((x) => x - 1) },
          );
        }
      },
      (err: unknown) => {
        for (const r of batch) r.resolve(this.failed(r.checks, r.options, err));
      },
    );
  };

  private async runScript(keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(CONSUME_SHA, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return await this.redis.eval(CONSUME_SCRIPT, keys.length, ...keys, ...args);
    }
  }

  private failed(checks: readonly CounterCheck[], options: ConsumeOptions, err: unknown): LimiterOutcome {
    const error = err instanceof Error ? err : new Error(String(err));
    this.onFailure({ mode: options.mode, failureMode: options.failureMode, error });
    if (options.failureMode === 'closed') return { kind: 'unavailable' };
    return this.local.consume(checks, options);
  }

  private consumeBatched(
    checks: readonly CounterCheck[],
    options: ConsumeOptions,
  ): Promise<LimiterOutcome> | LimiterOutcome {
    if (!this.syncHealthy && options.failureMode === 'closed') {
      this.onFailure({ mode: 'batched', failureMode: 'closed', error: new Error('Redis sync is failing') });
      return { kind: 'unavailable' };
    }
    let missing: CounterCheck[] | undefined;
    let loading: Promise<void>[] | undefined;
    for (const c of checks) {
      const counter = this.synced.get(`${c.key}:${c.windowStart}`);
      if (counter === undefined) {
        missing ??= [];
        missing.push(c);
      } else if (counter.loading) {
        loading ??= [];
        loading.push(counter.loading);
      }
    }
    if (missing === undefined && loading === undefined) return this.decideBatched(checks);
    const waits = loading ?? [];
    if (missing) waits.push(this.load(missing, options));
    return Promise.all(waits).then(
      () => this.decideBatched(checks),
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        this.onFailure({ mode: 'batched', failureMode: options.failureMode, error });
        // fail open: decide on local counts; they are pushed when Redis answers again
        return options.failureMode === 'closed' ? { kind: 'unavailable' } : this.decideBatched(checks);
      },
    );
  }

  /** Reads counters seen for the first time, so a fresh gateway starts from the shared count. */
  private load(checks: CounterCheck[], options: ConsumeOptions): Promise<void> {
    const counters = checks.map((c) => {
      const counter: SyncedCounter = {
        redisKey: `${this.prefix}${c.key}:${c.windowStart}`,
        end: c.windowEnd,
        ttlMs: ttlOf(c, options.now),
        base: 0,
        pending: 0,
        inFlight: 0,
        idleSyncs: 0,
        loading: null,
      };
      this.synced.set(`${c.key}:${c.windowStart}`, counter);
      return counter;
    });
    const done = this.redis.mget(counters.map((c) => c.redisKey)).then(
      (values) => {
        counters.forEach((c, i) => {
          c.base = Number(values[i] ?? 0);
          c.loading = null;
        });
      },
      (err: unknown) => {
        // start from local counts; the next successful sync pushes them
        for (const c of counters) c.loading = null;
        this.syncHealthy = false;
        throw err;
      },
    );
    for (const c of counters) c.loading = done.catch(() => {});
    return done;
  }

  private decideBatched(checks: readonly CounterCheck[]): LimiterOutcome {
    const counters: SyncedCounter[] = new Array(checks.length);
    const used: number[] = new Array(checks.length);
    let exceeded: number[] | undefined;
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      const counter = this.synced.get(`${c.key}:${c.windowStart}`)!;
      counters[i] = counter;
      const current = counter.base + counter.pending + counter.inFlight;
      used[i] = current;
      if (current + c.delta > c.limit) {
        exceeded ??= [];
        exceeded.push(i);
      }
      counter.idleSyncs = 0;
    }
    if (exceeded) return { kind: 'exceeded', used, exceeded };
    for (let i = 0; i < checks.length; i++) {
      counters[i]!.pending += checks[i]!.delta;
      used[i] = (used[i] ?? 0) + checks[i]!.delta;
    }
    return { kind: 'allowed', used };
  }

  /**
   * Pushes pending increments and refreshes the counters in use, in one pipeline. Runs on a timer; tests call it
   * to make a sync happen at a known point.
   */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    if (this.synced.size === 0) {
      // nothing to push, but a failed Redis must be seen coming back for fail-closed services to recover
      if (!this.syncHealthy)
        this.syncHealthy = await this.redis.ping().then(
          () => true,
          () => false,
        );
      return;
    }
    const batch: { counter: SyncedCounter; id: string; pushed: number }[] = [];
    const pipeline = this.redis.pipeline();
    for (const [id, counter] of this.synced) {
      if (counter.loading) continue;
      if (counter.pending > 0) {
        const pushed = counter.pending;
        counter.pending = 0;
        counter.inFlight += pushed;
        pipeline.incrby(counter.redisKey, pushed);
        if (counter.ttlMs > 0) pipeline.pexpire(counter.redisKey, counter.ttlMs);
        batch.push({ counter, id, pushed });
      } else if (counter.end <= this.lastNow || counter.idleSyncs >= 10) {
        this.synced.delete(id);
      } else {
        counter.idleSyncs++;
        pipeline.get(counter.redisKey);
        batch.push({ counter, id, pushed: 0 });
      }
    }
    if (batch.length === 0) return;
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
      if (results === null) throw new Error('Redis pipeline was discarded');
    } catch (err) {
      for (const { counter, pushed } of batch) {
        // not known to be counted: keep it pending so it is pushed again (errs towards counting twice, not never)
        counter.inFlight -= pushed;
        counter.pending += pushed;
      }
      if (this.syncHealthy) {
        const error = err instanceof Error ? err : new Error(String(err));
        this.onFailure({ mode: 'batched', failureMode: 'open', error });
      }
      this.syncHealthy = false;
      return;
    }
    let r = 0;
    for (const { counter, pushed } of batch) {
      const [error, value] = results[r] ?? [new Error('missing reply'), null];
      r += pushed > 0 && counter.ttlMs > 0 ? 2 : 1;
      if (error) {
        counter.inFlight -= pushed;
        counter.pending += pushed;
        continue;
      }
      counter.inFlight -= pushed;
      counter.base = Number(value ?? 0) - counter.inFlight;
    }
    this.syncHealthy = true;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.sync().catch(() => {});
  }
}

function ttlOf(check: CounterCheck, now: number): number {
  return Number.isFinite(check.windowEnd) ? Math.max(1, check.windowEnd - now) + EXPIRY_GRACE_MS : 0;
}
