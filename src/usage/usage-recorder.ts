/**
 * Every gateway call becomes a usage record; records are summed in memory per minute and key, and flushed every
 * `flushIntervalMs`: a flush appends the sums to the usage journal (one row, usage-journal.ts), and every
 * `compactIntervalMs` a compaction moves the journal into the usage tables. The request never waits for the
 * database. A flush that fails puts its sums back and is retried at the next tick: usage is never dropped
 * silently (it is lost only if the process dies with unflushed sums, at most one interval plus the time the
 * database has been away); a compaction that fails leaves the journal as it was, for the next one.
 */
import type { Clock } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import { CallPatterns, type RouteRows } from './call-patterns.js';
import {
  type CertificationCallRow,
  type CertificationMark,
  certificationCallRow,
} from './certification-calls.js';
import { type KeyUse, encodeJournal } from './usage-journal.js';
import type { UsageCallTable, UsageMetricCountTable } from './usage-tables.js';
import { type UsageWriter, databaseWriter } from './usage-writer.js';

/** One call as the gateway saw it. */
export interface UsageRecord {
  /** Epoch ms when the call arrived. */
  at: number;
  serviceId: string | null;
  applicationId: string | null;
  accountId: string | null;
  /** Metric increments; empty for refused calls, which count as calls but not as usage. */
  metrics: readonly { metricId: string; delta: number }[];
  status: number;
  latencyMs: number;
  bytesIn: number;
  bytesOut: number;
  endUser: string | null;
  clientIp: string;
  /** The HTTP method (insights: creates and reads). */
  method?: string;
  /** The id of the first mapping rule that matched, '' when none did (usage's route dimension). */
  route?: string;
  /** The Retry-After of a 429, in seconds; 0 otherwise. */
  retryAfterS?: number;
  /** The stored hash of the key the call authenticated with: the flush writes the key's "last used" (issue 13). */
  credentialHash?: string;
  /** Set for a call of a certifying application: written to its run's call log with the usage (issue 11). */
  certification?: CertificationMark;
}

/** Where the gateway sends usage: the recorder, or anything else with this shape. */
export interface UsageSink {
  record(record: UsageRecord): void;
}

export interface UsageLogger {
  info(data: object, message?: string): void;
  error(data: object, message?: string): void;
}

export interface UsageRecorderOptions {
  db: Executor;
  /** Where flushes write; default: `db` itself (see usage-writer.ts for the SQLite file's thread). */
  writer?: UsageWriter;
  clock: Clock;
  /** How often sums are flushed (config `usageFlushMs`). 0 disables the timer: call `flush()` yourself. */
  flushIntervalMs: number;
  logger?: UsageLogger;
  /** Sum routes, latency buckets and call patterns for insights (default true). */
  callPatterns?: boolean;
  /**
   * How often the timer's flushes write the insights sums too (config `insightsFlushMs`); default
   * `flushIntervalMs`. They are statistics, not billing: written less often than usage, a thousand active
   * applications' latency histograms are not rewritten four times a second. `flush()` and `close()` write them always.
   */
  insightsFlushIntervalMs?: number;
  /**
   * How often the timer's flushes also compact the usage journal into the usage tables (config
   * `usageCompactMs`); default: at every flush. `flush()` and `close()` compact always.
   */
  compactIntervalMs?: number;
}

export interface UsageRecorderStats {
  /** Records summed and not yet written. */
  pendingRecords: number;
  /** Clock time of the oldest record not yet written, `null` when all are written. */
  oldestPendingAt: number | null;
  flushes: number;
  failedFlushes: number;
  /** Consecutive failures of the current streak. */
  failingSince: number | null;
  /** Compactions that moved journal rows into the tables, and those that failed. */
  compactions: number;
  failedCompactions: number;
  /** Journal rows deleted unread because their body was not the journal's (each one logged). */
  droppedJournalEntries: number;
}

/** Journal rows one compaction transaction takes, and transactions one compaction makes at most. */
const COMPACT_ENTRIES = 16;
const COMPACT_ROUNDS = 32;

/** Nested maps, one level per key column: lookups on the strings the gateway already holds, no key building. */
type Level<K, V> = Map<K, V>;

/**
 * The rows one application last added to in a batch, so its next call finds them without walking the nested maps
 * (six lookups for the calls row, three per metric). Only an index: the rows are the batch's, the maps stay the
 * truth, and a call with another bucket, end user, address or status takes the maps' way and moves the index.
 */
interface RecentRows {
  bucket: string;
  /** its metric rows of this bucket (an application counts on a few metrics) */
  metrics: UsageMetricCountTable[];
  call: UsageCallTable | null;
  /** the key its last call presented, as the batch's `lastUsed` holds it */
  used: KeyUse | null;
  /** insights: its histogram rows of this bucket in the call patterns' sums, while their `takes` is `routesTaken` */
  routes: RouteRows | null;
  routesTaken: number;
}

interface Batch {
  /** Minute rows in the order they appeared. */
  metricRows: UsageMetricCountTable[];
  callRows: UsageCallTable[];
  /** bucket → application → metric → row */
  metrics: Level<string, Level<string, Level<string, UsageMetricCountTable>>>;
  /** bucket → service → application → end user → client IP → status → row */
  calls: Level<
    string,
    Level<string, Level<string, Level<string, Level<string, Level<number, UsageCallTable>>>>>
  >;
  /** application → the rows its last call added to */
  recent: Map<string, RecentRows>;
  /** stored key hash → its latest call: each key's "last used", written with the usage */
  lastUsed: Map<string, KeyUse>;
  records: number;
  oldestAt: number | null;
}

function emptyBatch(): Batch {
  return {
    metricRows: [],
    callRows: [],
    metrics: new Map(),
    calls: new Map(),
    recent: new Map(),
    lastUsed: new Map(),
    records: 0,
    oldestAt: null,
  };
}

/** The map under `key`, made empty when new. */
function sub<K, K2, V>(map: Map<K, Map<K2, V>>, key: K): Map<K2, V> {
  let next = map.get(key);
  if (next === undefined) {
    next = new Map();
    map.set(key, next);
  }
  return next;
}

/** The minute row of (bucket, application, metric), made with a zero value when new. */
function metricRow(
  b: Batch,
  bucket: string,
  serviceId: string,
  applicationId: string,
  accountId: string,
  metricId: string,
): UsageMetricCountTable {
  const byMetric = sub(sub(b.metrics, bucket), applicationId);
  let row = byMetric.get(metricId);
  if (row === undefined) {
    row = {
      granularity: 'minute',
      bucket,
      service_id: serviceId,
      application_id: applicationId,
      account_id: accountId,
      metric_id: metricId,
      value: 0,
    };
    byMetric.set(metricId, row);
    b.metricRows.push(row);
  }
  return row;
}

/** The calls row of (bucket, service, application, end user, client IP, status), zero when new. */
function callRow(
  b: Batch,
  bucket: string,
  serviceId: string,
  applicationId: string,
  accountId: string,
  endUser: string,
  clientIp: string,
  status: number,
): UsageCallTable {
  const byStatus = sub(sub(sub(sub(sub(b.calls, bucket), serviceId), applicationId), endUser), clientIp);
  let row = byStatus.get(status);
  if (row === undefined) {
    row = {
      bucket,
      service_id: serviceId,
      application_id: applicationId,
      account_id: accountId,
      end_user: endUser,
      client_ip: clientIp,
      status,
      calls: 0,
      latency_ms_sum: 0,
      latency_ms_max: 0,
      bytes_in: 0,
      bytes_out: 0,
    };
    byStatus.set(status, row);
    b.callRows.push(row);
  }
  return row;
}

const MINUTE = 60_000;

/** Sums usage in memory and writes it in batches. */
export class UsageRecorder implements UsageSink {
  private current = emptyBatch();
  private readonly timer: NodeJS.Timeout | null;
  private flushing: Promise<void> | null = null;
  private flushes = 0;
  private failedFlushes = 0;
  private failingSince: number | null = null;
  private minuteStart = -1;
  private minuteIso = '';
  private readonly patterns: CallPatterns | null;
  /** Calls of certification runs since the last flush, written with the usage. */
  private certificationCalls: CertificationCallRow[] = [];
  private readonly writer: UsageWriter;
  private readonly insightsFlushIntervalMs: number;
  /** Clock time the insights sums were last written (or the recorder started). */
  private insightsWrittenAt: number;
  private readonly compactIntervalMs: number;
  /** Clock time of the last compaction (or the recorder's start). */
  private compactedAt: number;
  private compactions = 0;
  private failedCompactions = 0;
  private compactFailing = false;
  private droppedJournalEntries = 0;

  constructor(private readonly options: UsageRecorderOptions) {
    this.writer = options.writer ?? databaseWriter(options.db);
    this.patterns = options.callPatterns === false ? null : new CallPatterns();
    this.insightsFlushIntervalMs = options.insightsFlushIntervalMs ?? options.flushIntervalMs;
    this.insightsWrittenAt = options.clock.now();
    this.compactIntervalMs = options.compactIntervalMs ?? options.flushIntervalMs;
    this.compactedAt = options.clock.now();
    if (options.flushIntervalMs > 0) {
      this.timer = setInterval(() => void this.flushWith(false), options.flushIntervalMs);
      this.timer.unref();
    } else {
      this.timer = null;
    }
  }

  record(r: UsageRecord): void {
    const b = this.current;
    b.records++;
    if (b.oldestAt === null) b.oldestAt = this.options.clock.now();
    if (r.certification !== undefined) this.markCertificationCall(r, r.certification);
    const minute = r.at - (r.at % MINUTE);
    if (minute !== this.minuteStart) {
      this.minuteStart = minute;
      this.minuteIso = new Date(minute).toISOString();
    }
    const bucket = this.minuteIso;
    const serviceId = r.serviceId ?? '';
    const applicationId = r.applicationId ?? '';
    const accountId = r.accountId ?? '';
    const endUser = r.endUser ?? '';
    let recent = b.recent.get(applicationId);
    if (recent === undefined || recent.bucket !== bucket) {
      recent = { bucket, metrics: [], call: null, used: null, routes: null, routesTaken: -1 };
      b.recent.set(applicationId, recent);
    }
    const hash = r.credentialHash;
    if (hash !== undefined) {
      let used = recent.used;
      if (used === null || used.hash !== hash) {
        const held = b.lastUsed.get(hash);
        used = held ?? { hash, at: r.at };
        if (held === undefined) b.lastUsed.set(hash, used);
        recent.used = used;
      }
      if (r.at > used.at) used.at = r.at;
    }
    const known = recent.metrics;
    for (const m of r.metrics) {
      let row: UsageMetricCountTable | undefined;
      for (let i = 0; i < known.length; i++)
        if (known[i]!.metric_id === m.metricId) {
          row = known[i];
          break;
        }
      if (row === undefined) {
        row = metricRow(b, bucket, serviceId, applicationId, accountId, m.metricId);
        known.push(row);
      }
      row.value += m.delta;
    }
    let call = recent.call;
    if (
      call === null ||
      call.status !== r.status ||
      call.end_user !== endUser ||
      call.client_ip !== r.clientIp ||
      call.service_id !== serviceId
    ) {
      call = callRow(b, bucket, serviceId, applicationId, accountId, endUser, r.clientIp, r.status);
      recent.call = call;
    }
    if (call.calls === 0 || r.latencyMs > call.latency_ms_max) call.latency_ms_max = r.latencyMs;
    call.calls++;
    call.latency_ms_sum += r.latencyMs;
    call.bytes_in += r.bytesIn;
    call.bytes_out += r.bytesOut;
    const patterns = this.patterns;
    if (patterns !== null && r.applicationId !== null) {
      let routes = recent.routes;
      if (routes === null || recent.routesTaken !== patterns.takes) {
        routes = patterns.routesOf(bucket, applicationId);
        recent.routes = routes;
        recent.routesTaken = patterns.takes;
      }
      patterns.record(
        {
          at: r.at,
          serviceId,
          applicationId,
          method: r.method ?? '',
          route: r.route ?? '',
          status: r.status,
          latencyMs: r.latencyMs,
          retryAfterS: r.retryAfterS ?? 0,
        },
        bucket,
        routes,
      );
    }
  }

  /**
   * Writes what is summed so far, the insights sums included. A failure is logged, counted in `stats()`, and the
   * sums kept for the next try.
   */
  flush(): Promise<void> {
    return this.flushWith(true);
  }

  /** A flush; the timer's (`insights` false) writes the insights sums only once their interval has passed. */
  private flushWith(insights: boolean): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flushWith(insights));
    this.flushing = this.flushOnce(insights).finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async flushOnce(all: boolean): Promise<void> {
    const batch = this.current;
    const now = this.options.clock.now();
    const sums = this.patterns;
    const withInsights =
      sums?.pending() === true && (all || now - this.insightsWrittenAt >= this.insightsFlushIntervalMs);
    const compact =
      all ||
      this.compactIntervalMs <= this.options.flushIntervalMs ||
      now - this.compactedAt >= this.compactIntervalMs;
    if (batch.records === 0 && !withInsights && !compact) return;
    if (batch.records > 0) {
      this.current = emptyBatch();
      try {
        await this.writer.appendJournal(
          encodeJournal(batch.metricRows, batch.callRows, batch.lastUsed.values()),
          new Date(now).toISOString(),
        );
        this.flushes++;
        if (this.failingSince !== null) {
          this.options.logger?.info({ records: batch.records }, 'usage: flushing again after failures');
        }
        this.failingSince = null;
      } catch (err) {
        this.failedFlushes++;
        this.restore(batch);
        if (this.failingSince === null) {
          this.failingSince = this.options.clock.now();
          this.options.logger?.error(
            { err: errorOf(err), pending: this.current.records },
            'usage: flush failed; keeping the usage in memory and retrying',
          );
        }
        // the database is likely away: the insights sums and the compaction wait for a flush that works
        return;
      }
    }
    if (withInsights) await this.writeInsights(now);
    if (compact) {
      this.compactedAt = now;
      await this.compact();
    }
    await this.flushCertificationCalls();
  }

  /** Writes the insights sums; on a failure they are put back for the next time. */
  private async writeInsights(now: number): Promise<void> {
    const patterns = this.patterns?.take();
    if (patterns === undefined) return;
    try {
      await this.writer.addPatterns(patterns);
      this.insightsWrittenAt = now;
    } catch (err) {
      this.patterns?.restore(patterns);
      this.options.logger?.error(
        { err: errorOf(err) },
        'usage: insights sums not written; keeping them in memory and retrying',
      );
    }
  }

  /**
   * Moves the usage journal into the usage tables: rows of this gateway and of any other (one killed before it
   * compacted), up to COMPACT_ROUNDS × COMPACT_ENTRIES rows, the rest at the next compaction. A failure is logged
   * once per streak and leaves the journal for the next compaction. A gateway compacts once before it serves, so
   * the limits it starts from the tables count what a killed predecessor left in the journal.
   */
  async compact(): Promise<void> {
    try {
      for (let round = 0; round < COMPACT_ROUNDS; round++) {
        const done = await this.writer.compactJournal(COMPACT_ENTRIES);
        if (done.dropped > 0) {
          this.droppedJournalEntries += done.dropped;
          this.options.logger?.error(
            { dropped: done.dropped },
            'usage: journal rows that were not usage sums deleted unread',
          );
        }
        if (done.entries > 0) this.compactions++;
        if (done.entries + done.dropped < COMPACT_ENTRIES) break;
      }
      if (this.compactFailing) this.options.logger?.info({}, 'usage: compacting the journal again');
      this.compactFailing = false;
    } catch (err) {
      this.failedCompactions++;
      if (!this.compactFailing)
        this.options.logger?.error(
          { err: errorOf(err) },
          'usage: journal not compacted into the usage tables; retrying at the next compaction',
        );
      this.compactFailing = true;
    }
  }

  private markCertificationCall(r: UsageRecord, mark: CertificationMark): void {
    this.certificationCalls.push(
      certificationCallRow(mark, {
        at: r.at,
        method: r.method ?? '',
        route: r.route ?? '',
        status: r.status,
        retryAfterS: r.retryAfterS ?? 0,
        latencyMs: r.latencyMs,
      }),
    );
  }

  /** Writes the calls of certification runs; on a failure they wait for the next flush. */
  private async flushCertificationCalls(): Promise<void> {
    if (this.certificationCalls.length === 0) return;
    const calls = this.certificationCalls;
    this.certificationCalls = [];
    try {
      await this.writer.addCertificationCalls(calls);
    } catch (err) {
      this.certificationCalls = calls.concat(this.certificationCalls);
      this.options.logger?.error(
        { err: errorOf(err) },
        'usage: calls of certification runs not written; retrying with the next flush',
      );
    }
  }

  /** Puts a failed batch back in front of what arrived since. */
  private restore(batch: Batch): void {
    const now = this.current;
    for (const row of now.metricRows) {
      metricRow(batch, row.bucket, row.service_id, row.application_id, row.account_id, row.metric_id).value +=
        row.value;
    }
    for (const row of now.callRows) {
      const old = callRow(
        batch,
        row.bucket,
        row.service_id,
        row.application_id,
        row.account_id,
        row.end_user,
        row.client_ip,
        row.status,
      );
      old.latency_ms_max =
        old.calls === 0 ? row.latency_ms_max : Math.max(old.latency_ms_max, row.latency_ms_max);
      old.calls += row.calls;
      old.latency_ms_sum += row.latency_ms_sum;
      old.bytes_in += row.bytes_in;
      old.bytes_out += row.bytes_out;
    }
    mergeLastUsed(batch.lastUsed, now.lastUsed);
    batch.records += now.records;
    batch.oldestAt = batch.oldestAt ?? now.oldestAt;
    this.current = batch;
  }

  /** Settles once the writer can write: a gateway waits for it before it listens. */
  ready(): Promise<void> {
    return this.writer.ready();
  }

  stats(): UsageRecorderStats {
    return {
      pendingRecords: this.current.records,
      oldestPendingAt: this.current.oldestAt,
      flushes: this.flushes,
      failedFlushes: this.failedFlushes,
      failingSince: this.failingSince,
      compactions: this.compactions,
      failedCompactions: this.failedCompactions,
      droppedJournalEntries: this.droppedJournalEntries,
    };
  }

  /**
   * Stops the timer, makes a last flush and closes the writer (rejects if the flush fails, so the caller knows usage
   * is unwritten).
   */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    try {
      await this.flush();
    } finally {
      await this.writer.close();
    }
    if (this.current.records > 0)
      throw new Error(`usage: ${this.current.records} records could not be written`);
  }
}

/** Adds `from`'s keys' last uses to `into`, the later of two uses of a key winning. */
function mergeLastUsed(into: Map<string, KeyUse>, from: ReadonlyMap<string, KeyUse>): void {
  for (const u of from.values()) {
    const held = into.get(u.hash);
    if (held === undefined) into.set(u.hash, { hash: u.hash, at: u.at });
    else if (u.at > held.at) held.at = u.at;
  }
}

function errorOf(err: unknown): { message: string } {
  return { message: err instanceof Error ? err.message : String(err) };
}
