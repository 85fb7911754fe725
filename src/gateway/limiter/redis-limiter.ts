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
 * KEYS: every request's counters, request after request. ARGV[1]: number of requests; then one argument per
 * request: "limit delta ttl" for each of its counters, space-separated (ttl in ms, 0: never expires) — one bulk
 * string per request instead of three per counter and one more per request, which the gateway builds and sends.
 * Returns one flat list of integers, per request: 1, n, the n counts after; or 0, n, the n counts before, m, and
 * the m indexes (1-based) of the full counters.
 */
const CONSUME_SCRIPT = `
local value = {}
local added = {}
local ttls = {}
local out = {}
local k = 0
for r = 1, tonumber(ARGV[1]) do
  local spec = {}
  for x in string.gmatch(ARGV[r + 1], '%S+') do spec[#spec + 1] = tonumber(x) end
  local n = #spec / 3
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
    if current + spec[i * 3 - 1] > spec[i * 3 - 2] then
      exceeded[#exceeded + 1] = i
    end
  end
  if #exceeded > 0 then
    out[#out + 1] = 0
    out[#out + 1] = n
    for i = 1, n do out[#out + 1] = used[i] end
    out[#out + 1] = #exceeded
    for i = 1, #exceeded do out[#out + 1] = exceeded[i] end
  else
    out[#out + 1] = 1
    out[#out + 1] = n
    for i = 1, n do
      local key = KEYS[k + i]
      local delta = spec[i * 3 - 1]
      value[key] = value[key] + delta
      added[key] = added[key] + delta
      if ttls[key] == nil then ttls[key] = spec[i * 3] end
      out[#out + 1] = value[key]
    end
  end
  k = k + n
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

/**
 * `batched` mode's lease: for each counter (KEYS[i]) of ARGV limit, need, want, ttl: when the counter has room for
 * `need` more, grant up to `want` tokens, and at most an eighth of the room left (at least `need`), by adding them
 * to the count now. Returns per counter {granted (0: no room for need), count after}.
 */
const LEASE_SCRIPT = `
local out = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[i * 4 - 3])
  local need = tonumber(ARGV[i * 4 - 2])
  local want = tonumber(ARGV[i * 4 - 1])
  local ttl = tonumber(ARGV[i * 4])
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  local room = limit - current
  local grant = 0
  if room >= need then
    grant = math.min(want, math.max(need, math.floor(room / 8)))
    current = redis.call('INCRBY', KEYS[i], grant)
    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
  out[i] = {grant, current}
end
return out
`;
const LEASE_SHA = createHash('sha1').update(LEASE_SCRIPT).digest('hex');

/** Gives back tokens leased and not used, unless the counter is gone (its window over): no key without expiry. */
const RETURN_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECRBY', KEYS[1], ARGV[1]) end
return 0
`;

/** Counters outlive their window by this much, so a gateway with a slightly late clock still finds them. */
const EXPIRY_GRACE_MS = 60_000;

/**
 * A `batched` lease asks for this many sync intervals' use (the busier of the last two intervals): about a second of
 * a counter's traffic at the default interval, so a steady counter asks Redis about once a second, whatever its
 * rate. At most an eighth of the room left is granted, whatever it asks.
 */
const LEASE_SYNCS = 10;

/**
 * A lease's unused tokens go back to Redis at the sync that finds its counter unused this many syncs in a row
 * (200–300 ms idle at the default interval): a counter called a few times a second keeps its lease between calls.
 */
const RETURN_AFTER_SYNCS = 3;

/** Counters read by one MGET of a sync at most (the counters in use are read every sync). */
const READ_CHUNK = 500;

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
  /** End of the counter's window: its expiry is computed from it at every write, never carried over. */
  readonly end: number;
  limit: number;
  /**
   * The shared count as Redis last reported it: every gateway's calls plus the tokens leased to gateways and not
   * used yet (ours included).
   */
  base: number;
  /** Tokens Redis granted to this gateway and not used yet: calls admitted from them need no round trip. */
  lease: number;
  /** Calls admitted without a lease while Redis was unreachable (fail open); pushed when it answers again. */
  pending: number;
  /** `pending` pushed but not yet acknowledged. */
  inFlight: number;
  /** Tokens used since the last sync: the next lease asks for twice as many (a burst gets large leases fast). */
  usedSinceSync: number;
  /** Tokens used in the sync interval before: steady traffic gets leases of about two intervals' use. */
  usedBefore: number;
  /** Redis had no room left at the last lease: refuse without asking again until a sync shows room. */
  full: boolean;
  /** Syncs since a request last used the counter; idle counters are forgotten so their next use re-reads Redis. */
  idleSyncs: number;
  /** Set while a lease is being asked for. */
  leasing: Promise<void> | null;
  /** Dropped from the synced counters (idle, or its window over): a check that knew it must look it up again. */
  forgotten: boolean;
}

export interface RedisLimiterOptions {
  redis: Redis;
  /** Prepended to every key, so several Trellis installs (or tests) can share one Redis. */
  keyPrefix?: string;
  /** How often `batched` counters are refreshed from Redis and idle leases given back. Default 100 ms. */
  syncIntervalMs?: number;
  onFailure?: (failure: LimiterFailure) => void;
}

/** ioredis connection states in which commands fail at once: Redis is known to be away. */
const DOWN_STATES = new Set(['reconnecting', 'close', 'end']);

/** Reported for a call decided without asking Redis, because Redis is known to be away. */
const REDIS_AWAY = 'Redis is unreachable';

/**
 * Counters in Redis, shared by every gateway process and host.
 *
 * `strict` runs {@link CONSUME_SCRIPT} for the requests of each event-loop turn: exact, one round trip.
 *
 * `batched` admits calls from tokens leased from Redis ({@link LEASE_SCRIPT}): a lease adds its tokens to the
 * shared count atomically, so however many gateways count on a key, the calls they admit in a window never
 * exceed the limit while Redis answers (no overshoot). Calls use the local lease without a round trip; a lease
 * asks for {@link LEASE_SYNCS} sync intervals' use and gets at most an eighth of the room left, so leases grow fast
 * in a burst and shrink to single tokens near the limit (where calls wait for one round trip, as in strict mode).
 * Every `syncIntervalMs` the counters in use are refreshed (one MGET) and the leases of counters idle for
 * {@link RETURN_AFTER_SYNCS} syncs are given back. What leasing costs is undershoot, never overshoot: a call can be
 * refused while another gateway holds unused tokens (at most an eighth of the room each, given back after two or
 * three idle syncs), and a gateway that dies holding a lease loses it for the rest of the window.
 *
 * When Redis is unreachable: fail `open` keeps deciding on local counts (strict falls back to an in-process
 * counter; batched uses what is left of its leases, then counts calls as pending and pushes them when Redis is
 * back); fail `closed` answers `unavailable` from the moment the connection is known lost. Each failure is
 * reported through `onFailure`.
 *
 * A Redis that hangs keeps its connection ready and leaves commands unanswered: the first call to time out (or
 * fail) marks Redis as away, and from then every mode decides by its failure mode at once, without asking Redis,
 * until the sync timer's probe (one PING, at most the command timeout) gets an answer. Callers' requests are never
 * the probe.
 */
export class RedisLimiter implements Limiter {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly onFailure: (failure: LimiterFailure) => void;
  private readonly local = new MemoryLimiter();
  private readonly synced = new Map<string, SyncedCounter>();
  /**
   * A check → its counter. The gateway's authorize passes an application's same check objects call after call for
   * as long as their window lasts (as the memory limiter's `sharedChecks`), so a known check needs no
   * `key:windowStart` string built and hashed per call.
   */
  private readonly known = new WeakMap<CounterCheck, SyncedCounter>();
  /** A check → its counter's Redis key, for strict calls (shared checks: the key is built once per window). */
  private readonly redisKeys = new WeakMap<CounterCheck, string>();
  private readonly timer: NodeJS.Timeout;
  private syncing: Promise<void> | null = null;
  /** Strict requests of this event-loop turn, sent together when the turn's I/O is done (setImmediate). */
  private strictBatch: StrictRequest[] = [];
  /**
   * Strict batches sent and not answered. ioredis writes one auto-pipeline at a time per connection and starts a
   * command's timeout when it writes it, so with Redis hung a batch waits for the one before it to time out and
   * then for its own timeout (2 s): when one fails, the others are decided at once.
   */
  private readonly strictInFlight = new Set<StrictRequest[]>();
  /**
   * False from a call to Redis that timed out or failed (strict script, lease or sync) until the probe of a sync
   * gets an answer: meanwhile every mode decides by its failure mode without asking Redis.
   */
  private healthy = true;
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

  private consumeStrict(
    checks: readonly CounterCheck[],
    options: ConsumeOptions,
  ): Promise<LimiterOutcome> | LimiterOutcome {
    // a call timed out or failed: no request waits for a timeout again until the probe has an answer. (A lost
    // connection needs no check of its own here: a command on it fails at once, and that failure sets `healthy`.)
    if (!this.healthy) return this.withoutRedis(checks, options, new Error(REDIS_AWAY));
    return new Promise((resolve) => {
      if (this.strictBatch.length === 0) setImmediate(this.sendStrictBatch);
      this.strictBatch.push({ checks, options, resolve });
      if (this.strictBatch.length >= MAX_STRICT_BATCH) this.sendStrictBatch();
    });
  }

  private redisKeyOf(c: CounterCheck): string {
    let key = this.redisKeys.get(c);
    if (key === undefined) {
      key = `${this.prefix}${c.key}:${c.windowStart}`;
      this.redisKeys.set(c, key);
    }
    return key;
  }

  /** Sends the waiting strict requests in one script call and answers each (an arrow: it is a timer callback). */
  private readonly sendStrictBatch = (): void => {
    const batch = this.strictBatch;
    if (batch.length === 0) return;
    this.strictBatch = [];
    if (!this.healthy) {
      // Redis was found away after these requests were taken, before they were sent
      const error = new Error(REDIS_AWAY);
      for (const r of batch) r.resolve(this.withoutRedis(r.checks, r.options, error));
      return;
    }
    const keys: string[] = [];
    const args: (string | number)[] = [batch.length];
    for (const { checks, options } of batch) {
      let spec = '';
      for (const c of checks) {
        keys.push(this.redisKeyOf(c));
        spec += `${spec === '' ? '' : ' '}${c.limit} ${c.delta} ${ttlOf(c.windowEnd, options.now)}`;
      }
      args.push(spec);
    }
    this.strictInFlight.add(batch);
    this.runScript(keys, args).then(
      (reply) => {
        // already decided without Redis (a batch sent before it failed): its count in Redis errs towards twice
        if (!this.strictInFlight.delete(batch)) return;
        const flat = reply as number[];
        let at = 0;
        for (let i = 0; i < batch.length; i++) {
          const ok = flat[at++];
          const n = flat[at++]!;
          const used: number[] = new Array(n);
          for (let j = 0; j < n; j++) used[j] = flat[at++]!;
          if (ok === 1) {
            batch[i]!.resolve({ kind: 'allowed', used });
            continue;
          }
          const m = flat[at++]!;
          const exceeded: number[] = new Array(m);
          for (let j = 0; j < m; j++) exceeded[j] = flat[at++]! - 1;
          batch[i]!.resolve({ kind: 'exceeded', used, exceeded });
        }
      },
      (err: unknown) => {
        if (!this.strictInFlight.delete(batch)) return;
        this.healthy = false;
        for (const r of batch) r.resolve(this.withoutRedis(r.checks, r.options, err));
        // the batches sent after it wait behind it for their own timeouts: decide them now
        for (const waiting of this.strictInFlight)
          for (const r of waiting) r.resolve(this.withoutRedis(r.checks, r.options, err));
        this.strictInFlight.clear();
      },
    );
  };

  private async runScript(
    keys: string[],
    args: (string | number)[],
    script = CONSUME_SCRIPT,
    sha = CONSUME_SHA,
  ): Promise<unknown> {
    try {
      return await this.redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return await this.redis.eval(script, keys.length, ...keys, ...args);
    }
  }

  /**
   * A strict request decided without Redis: `closed` refuses; `open` counts on the in-process counter, and what it
   * admits is pending on the Redis counter, pushed by the first sync that finds Redis answering (as batched mode's
   * calls admitted while Redis is away: erring towards counting twice, never zero times).
   */
  private withoutRedis(
    checks: readonly CounterCheck[],
    options: ConsumeOptions,
    err: unknown,
  ): LimiterOutcome {
    const error = err instanceof Error ? err : new Error(String(err));
    this.onFailure({ mode: options.mode, failureMode: options.failureMode, error });
    if (options.failureMode === 'closed') return { kind: 'unavailable' };
    const outcome = this.local.consumeNow(checks, options);
    if (outcome.kind === 'allowed') for (const c of checks) this.counterOf(c).pending += c.delta;
    return outcome;
  }

  /** True when Redis is known to be away: the connection is lost, or a call to it timed out or failed. */
  private redisDown(): boolean {
    return !this.healthy || DOWN_STATES.has(this.redis.status);
  }

  private consumeBatched(
    checks: readonly CounterCheck[],
    options: ConsumeOptions,
  ): Promise<LimiterOutcome> | LimiterOutcome {
    if (options.failureMode === 'closed' && this.redisDown()) {
      this.onFailure({ mode: 'batched', failureMode: 'closed', error: new Error(REDIS_AWAY) });
      return { kind: 'unavailable' };
    }
    const n = checks.length;
    const counters: SyncedCounter[] = new Array(n);
    for (let i = 0; i < n; i++) counters[i] = this.counterOf(checks[i]!);
    return this.fromLeases(checks, counters) ?? this.decideBatched(checks, counters, options, 0);
  }

  /**
   * The common call: each counter named once and holding enough leased tokens. Takes them and answers as
   * `decideBatched` would; null otherwise, for `decideBatched` to decide.
   */
  private fromLeases(
    checks: readonly CounterCheck[],
    counters: readonly SyncedCounter[],
  ): LimiterOutcome | null {
    const n = checks.length;
    for (let i = 0; i < n; i++) {
      const counter = counters[i]!;
      if (counter.lease < checks[i]!.delta) return null;
      for (let j = 0; j < i; j++) if (counters[j] === counter) return null;
    }
    const used: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const counter = counters[i]!;
      const delta = checks[i]!.delta;
      counter.lease -= delta;
      counter.usedSinceSync += delta;
      used[i] = usedOf(counter);
    }
    return { kind: 'allowed', used };
  }

  private counterOf(c: CounterCheck): SyncedCounter {
    const known = this.known.get(c);
    if (known !== undefined && !known.forgotten && known.limit === c.limit) {
      known.idleSyncs = 0;
      return known;
    }
    const id = `${c.key}:${c.windowStart}`;
    let counter = this.synced.get(id);
    if (counter === undefined) {
      counter = {
        redisKey: `${this.prefix}${id}`,
        end: c.windowEnd,
        limit: c.limit,
        base: 0,
        lease: 0,
        pending: 0,
        inFlight: 0,
        usedSinceSync: 0,
        usedBefore: 0,
        full: false,
        idleSyncs: 0,
        leasing: null,
        forgotten: false,
      };
      this.synced.set(id, counter);
    } else if (counter.limit !== c.limit) {
      // the plan changed: whether there is room is a new question
      counter.limit = c.limit;
      counter.full = false;
    }
    counter.idleSyncs = 0;
    this.known.set(c, counter);
    return counter;
  }

  /**
   * Admits the request from the leases when they hold enough; otherwise waits for a lease under way, or asks for
   * one, and decides again. A counter Redis reported full refuses at once until a sync shows room.
   */
  private decideBatched(
    checks: readonly CounterCheck[],
    counters: readonly SyncedCounter[],
    options: ConsumeOptions,
    attempt: number,
  ): Promise<LimiterOutcome> | LimiterOutcome {
    const n = checks.length;
    // tokens each counter must give (a counter named twice gives both deltas)
    const need = new Map<SyncedCounter, number>();
    for (let i = 0; i < n; i++) need.set(counters[i]!, (need.get(counters[i]!) ?? 0) + checks[i]!.delta);
    // Redis away (fail open), or leases keep going to the requests queued before this one: decide on local counts
    const local = this.redisDown() || attempt > 20;
    let short: SyncedCounter[] | undefined;
    let exceeded: number[] | undefined;
    for (let i = 0; i < n; i++) {
      const counter = counters[i]!;
      const tokens = need.get(counter)!;
      if (counter.lease >= tokens) continue;
      if (
        counter.full ||
        (local && counter.base + counter.pending + counter.inFlight + tokens - counter.lease > counter.limit)
      ) {
        exceeded ??= [];
        exceeded.push(i);
      } else if (!short?.includes(counter)) {
        short ??= [];
        short.push(counter);
      }
    }
    if (exceeded) return { kind: 'exceeded', used: counters.map(usedOf), exceeded };
    if (short !== undefined && local && attempt <= 20)
      this.onFailure({ mode: 'batched', failureMode: 'open', error: new Error(REDIS_AWAY) });
    if (short === undefined || local) {
      // every counter has its tokens leased, or Redis is away and (fail open) local counts have room
      for (const [counter, tokens] of need) {
        const fromLease = Math.min(counter.lease, tokens);
        counter.lease -= fromLease;
        counter.pending += tokens - fromLease;
        counter.usedSinceSync += tokens;
      }
      return { kind: 'allowed', used: counters.map(usedOf) };
    }
    const underWay = short.filter((c) => c.leasing !== null).map((c) => c.leasing!);
    const ask = short.filter((c) => c.leasing === null);
    if (ask.length > 0) underWay.push(this.lease(ask, need, options.now));
    return Promise.all(underWay).then(
      () => this.decideBatched(checks, counters, options, attempt + 1),
      (err: unknown) => {
        // fail open: decided again on local counts, which reports the failure
        if (options.failureMode === 'open') return this.decideBatched(checks, counters, options, attempt + 1);
        const error = err instanceof Error ? err : new Error(String(err));
        this.onFailure({ mode: 'batched', failureMode: 'closed', error });
        return { kind: 'unavailable' };
      },
    );
  }

  /** Asks Redis for tokens on each counter (one script call); the counters' `leasing` is set meanwhile. */
  private lease(
    counters: SyncedCounter[],
    need: ReadonlyMap<SyncedCounter, number>,
    now: number,
  ): Promise<void> {
    const keys: string[] = [];
    const args: number[] = [];
    for (const c of counters) {
      const min = need.get(c)! - c.lease;
      keys.push(c.redisKey);
      args.push(c.limit, min, min + LEASE_SYNCS * Math.max(c.usedSinceSync, c.usedBefore), ttlOf(c.end, now));
    }
    const done = this.runScript(keys, args, LEASE_SCRIPT, LEASE_SHA).then(
      (reply) => {
        const replies = reply as [number, number][];
        counters.forEach((c, i) => {
          const [granted, count] = replies[i] ?? [0, c.base];
          c.lease += granted;
          c.base = count;
          c.full = granted === 0;
          c.leasing = null;
        });
      },
      (err: unknown) => {
        for (const c of counters) c.leasing = null;
        this.healthy = false;
        throw err;
      },
    );
    const settled = done.catch(() => {});
    for (const c of counters) c.leasing = settled;
    return done;
  }

  /**
   * Pushes calls counted while Redis was away, gives back the leases of idle counters and refreshes the counters
   * in use, in one pipeline. Runs on a timer; tests call it to make a sync happen at a known point.
   */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  private async syncOnce(final = false): Promise<void> {
    if (!this.healthy) {
      // the probe: one PING before anything else, as a hung Redis runs what it was sent when it wakes (pushes and
      // give-backs sent at every sync would count again and again)
      this.healthy = await this.redis.ping().then(
        () => true,
        () => false,
      );
      if (!this.healthy) return;
    }
    if (this.synced.size === 0) return;
    const now = this.lastNow;
    const batch: { counter: SyncedCounter; pushed: number; returned: number; replies: number }[] = [];
    /** Counters that only need their count read: one MGET per READ_CHUNK of them, after the batch's commands. */
    const reads: SyncedCounter[] = [];
    const pipeline = this.redis.pipeline();
    for (const [id, counter] of this.synced) {
      if (counter.leasing) continue;
      const ended = counter.end <= now;
      counter.usedBefore = counter.usedSinceSync;
      counter.usedSinceSync = 0;
      if (!ended) counter.idleSyncs++;
      let replies = 0;
      const pushed = counter.pending;
      if (pushed > 0) {
        counter.pending = 0;
        counter.inFlight += pushed;
        pipeline.incrby(counter.redisKey, pushed);
        replies++;
        const ttl = ttlOf(counter.end, now);
        if (ttl > 0) {
          // the expiry is the window's end (plus grace), computed now: never a stale relative TTL
          pipeline.pexpire(counter.redisKey, ttl);
          replies++;
        }
      }
      const forget = ended || counter.idleSyncs >= 10 || final;
      let returned = 0;
      if ((counter.idleSyncs >= RETURN_AFTER_SYNCS || forget) && counter.lease > 0 && !ended) {
        returned = counter.lease;
        counter.lease = 0;
        pipeline.eval(RETURN_SCRIPT, 1, counter.redisKey, returned);
        replies++;
      }
      if (forget && pushed === 0) {
        this.synced.delete(id);
        counter.forgotten = true;
        if (replies === 0) continue;
      } else if (replies === 0) {
        reads.push(counter);
        continue;
      }
      batch.push({ counter, pushed, returned, replies });
    }
    if (batch.length === 0 && reads.length === 0) return;
    for (let i = 0; i < reads.length; i += READ_CHUNK)
      pipeline.mget(reads.slice(i, i + READ_CHUNK).map((c) => c.redisKey));
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
      if (results === null) throw new Error('Redis pipeline was discarded');
      const failed = results.find(([error]) => error !== null);
      if (failed) throw failed[0];
    } catch (err) {
      for (const { counter, pushed, returned } of batch) {
        // not known to be counted: keep it pending so it is pushed again (errs towards counting twice, not never)
        counter.inFlight -= pushed;
        counter.pending += pushed;
        // not known to be given back: keep the tokens (they are still in the shared count)
        counter.lease += returned;
      }
      if (this.healthy) {
        const error = err instanceof Error ? err : new Error(String(err));
        this.onFailure({ mode: 'batched', failureMode: 'open', error });
      }
      this.healthy = false;
      return;
    }
    let r = 0;
    for (const { counter, pushed, replies } of batch) {
      // the last reply of a counter is its count after everything this sync sent
      const value = Number(results[r + replies - 1]?.[1] ?? 0);
      r += replies;
      counter.inFlight -= pushed;
      counter.base = value - counter.inFlight;
      if (counter.base < counter.limit) counter.full = false;
    }
    for (let i = 0; i < reads.length; i += READ_CHUNK) {
      const values = results[r++]![1] as (string | null)[];
      for (let j = 0; j < values.length; j++) {
        const counter = reads[i + j]!;
        counter.base = Number(values[j] ?? 0) - counter.inFlight;
        if (counter.base < counter.limit) counter.full = false;
      }
    }
    this.healthy = true;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.syncing?.catch(() => {});
    // give back every lease and push what is pending
    await this.syncOnce(true).catch(() => {});
  }
}

/** What a counter counts as used: the shared count less the tokens this gateway holds and has not used. */
function usedOf(c: SyncedCounter): number {
  return c.base + c.pending + c.inFlight - c.lease;
}

/** Milliseconds from `now` to the window's end plus grace; 0 for counters that never expire. */
function ttlOf(end: number, now: number): number {
  return Number.isFinite(end) ? Math.max(1, end - now) + EXPIRY_GRACE_MS : 0;
}
