/** All SQL of usage: the additive upserts of a flush and the chart queries. */
import { CompiledQuery, sql } from 'kysely';
import { type Executor, isPostgres } from '../store/index.js';
import type { PatternBatch } from './call-patterns.js';
import { JournalBodyError, JournalSums, callValues } from './usage-journal.js';
import type {
  Granularity,
  UsageCallPatternTable,
  UsageCallTable,
  UsageMetricCountTable,
  UsageRouteCallTable,
  UsageTables,
} from './usage-tables.js';

/** Rows per INSERT: keeps SQLite under its bound-parameter limit and PostgreSQL statements small. */
const CHUNK = 400;

function usageDb(db: Executor) {
  return db.withTables<UsageTables>();
}

/**
 * One fixed-shape statement of a flush: its SQL text around a VALUES list of `rows` tuples of `width` parameters.
 * The flush's statements are written here once as text, not built with kysely on every flush (building them cost
 * about 3 KB of garbage and 0.6 µs of the gateway's thread per request, docs/benchmarks.md, issue 14): the text of
 * a full chunk is kept per dialect, the parameters are one flat array filled by `push` from each row.
 */
interface Upsert<R> {
  head: string;
  width: number;
  tail: string;
  push: (params: unknown[], row: R) => void;
  /** The order of the conflict key, in which PostgreSQL's rows are written (see {@link runUpsert}). */
  order: (a: R, b: R) => number;
}

/** Rows compared column by column (each column holds strings or numbers throughout). */
function byColumns<R>(columns: readonly string[]): (a: R, b: R) => number {
  return (a, b) => {
    for (const c of columns) {
      const x = (a as Record<string, string | number>)[c]!;
      const y = (b as Record<string, string | number>)[c]!;
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  };
}

function upsert<R>(
  table: string,
  columns: readonly string[],
  conflict: readonly string[],
  update: string,
  push: (params: unknown[], row: R) => void,
): Upsert<R> {
  const q = (names: readonly string[]) => names.map((c) => `"${c}"`).join(', ');
  return {
    head: `insert into "${table}" (${q(columns)}) values `,
    width: columns.length,
    tail: ` on conflict (${q(conflict)}) do update set ${update}`,
    push,
    order: byColumns(conflict),
  };
}

/** The VALUES tuples of `rows` rows of `width` parameters: `?` on SQLite, `$1`, `$2`, … on PostgreSQL. */
function tuples(rows: number, width: number, postgres: boolean): string {
  const out: string[] = new Array(rows);
  if (!postgres) {
    const one = `(${new Array(width).fill('?').join(', ')})`;
    return out.fill(one).join(', ');
  }
  let n = 1;
  const cells: string[] = new Array(width);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < width; c++) cells[c] = `$${n++}`;
    out[r] = `(${cells.join(', ')})`;
  }
  return out.join(', ');
}

/**
 * The rows of each statement of a flush: CHUNK at a time, then what is left. On SQLite the rest goes in powers of
 * two (237 rows: 128, 64, 32, 8, 4, 1): a flush's statements are then of a dozen sizes per table, the same from
 * flush to flush, so their texts are written once and SQLite's prepared statements are kept across flushes
 * (`withStatementCache` in the store) instead of a statement of a new size prepared at every flush. PostgreSQL
 * parses every statement it is sent anyway, and each one more is a round trip: the rest goes in one.
 */
function* chunks(rows: number, postgres: boolean): Generator<[from: number, to: number]> {
  let from = 0;
  while (rows - from >= CHUNK) {
    yield [from, from + CHUNK];
    from += CHUNK;
  }
  if (postgres) {
    if (from < rows) yield [from, rows];
    return;
  }
  for (let size = 256; size >= 1; size /= 2) {
    if (rows - from >= size) {
      yield [from, from + size];
      from += size;
    }
  }
}

/**
 * SQL texts per statement and number of rows (PostgreSQL's as negative numbers): SQLite's sizes ({@link chunks}:
 * CHUNK and the powers of two below it) and PostgreSQL's full chunks. PostgreSQL's last, shorter statement of a
 * flush is written each time (a text kept for each of its 399 possible sizes would hold megabytes for nothing).
 */
const texts = new Map<Upsert<never>, Map<number, string>>();

function textFor(u: Upsert<never>, rows: number, postgres: boolean): string {
  if (postgres && rows !== CHUNK) return u.head + tuples(rows, u.width, true) + u.tail;
  let bySize = texts.get(u);
  if (bySize === undefined) {
    bySize = new Map();
    texts.set(u, bySize);
  }
  const key = postgres ? -rows : rows;
  let text = bySize.get(key);
  if (text === undefined) {
    text = u.head + tuples(rows, u.width, postgres) + u.tail;
    bySize.set(key, text);
  }
  return text;
}

/**
 * Runs `u` over `rows` in {@link chunks}, on `tx` (a transaction the caller holds).
 *
 * On PostgreSQL the rows go in the order of their conflict key. Each row an upsert adds to is locked until the
 * transaction ends, so two gateways flushing rows of the same applications in different orders each held a row
 * the other waited for: PostgreSQL ended one flush with a deadlock (40P01) after a second's wait, nearly every
 * time two flushes met (test/usage/usage-concurrent.test.ts). In one order the later flush just waits for the
 * earlier. SQLite has one writer at a time and needs no order.
 */
async function runUpsert<R>(
  tx: Executor,
  u: Upsert<R>,
  unordered: readonly R[],
  postgres: boolean,
): Promise<void> {
  const rows = postgres ? [...unordered].sort(u.order) : unordered;
  for (const [from, to] of chunks(rows.length, postgres)) {
    const params: unknown[] = [];
    for (let r = from; r < to; r++) u.push(params, rows[r]!);
    await tx.executeQuery(CompiledQuery.raw(textFor(u as Upsert<never>, to - from, postgres), params));
  }
}

const metricCounts = upsert<UsageMetricCountTable>(
  'usage_metric_counts',
  ['granularity', 'bucket', 'service_id', 'application_id', 'account_id', 'metric_id', 'value'],
  ['granularity', 'application_id', 'metric_id', 'bucket'],
  '"value" = usage_metric_counts.value + excluded.value',
  (p, r) =>
    p.push(r.granularity, r.bucket, r.service_id, r.application_id, r.account_id, r.metric_id, r.value),
);

const calls = upsert<UsageCallTable>(
  'usage_calls',
  [
    'bucket',
    'service_id',
    'application_id',
    'account_id',
    'end_user',
    'client_ip',
    'status',
    'calls',
    'latency_ms_sum',
    'latency_ms_max',
    'bytes_in',
    'bytes_out',
  ],
  ['bucket', 'service_id', 'application_id', 'end_user', 'client_ip', 'status'],
  [
    '"calls" = usage_calls.calls + excluded.calls',
    '"latency_ms_sum" = usage_calls.latency_ms_sum + excluded.latency_ms_sum',
    '"latency_ms_max" = case when usage_calls.latency_ms_max > excluded.latency_ms_max then usage_calls.latency_ms_max else excluded.latency_ms_max end',
    '"bytes_in" = usage_calls.bytes_in + excluded.bytes_in',
    '"bytes_out" = usage_calls.bytes_out + excluded.bytes_out',
  ].join(', '),
  (p, r) => p.push(...callValues(r)),
);

const routeCalls = upsert<UsageRouteCallTable>(
  'usage_route_calls',
  ['bucket', 'service_id', 'application_id', 'route', 'status_class', 'latency_bucket', 'calls'],
  ['application_id', 'bucket', 'service_id', 'route', 'status_class', 'latency_bucket'],
  '"calls" = usage_route_calls.calls + excluded.calls',
  (p, r) =>
    p.push(r.bucket, r.service_id, r.application_id, r.route, r.status_class, r.latency_bucket, r.calls),
);

const callPatterns = upsert<UsageCallPatternTable>(
  'usage_call_patterns',
  ['bucket', 'service_id', 'application_id', 'kind', 'route', 'prior_route', 'lag', 'calls'],
  ['application_id', 'bucket', 'service_id', 'kind', 'route', 'prior_route', 'lag'],
  '"calls" = usage_call_patterns.calls + excluded.calls',
  (p, r) => p.push(r.bucket, r.service_id, r.application_id, r.kind, r.route, r.prior_route, r.lag, r.calls),
);

/** The advisory lock of the keys' "last used" writes on PostgreSQL ("trlu"; the outbox's is "trls"). */
const LAST_USED_LOCK_KEY = 0x74726c75;

/** Each key's "last used" (VALUES columns are column1, column2 in both dialects). */
const lastUsed: Upsert<never> = {
  head: 'update credentials set last_used_at = v.column2 from (values ',
  width: 2,
  tail: `) as v where credentials.secret_hash = v.column1
    and (credentials.last_used_at is null or credentials.last_used_at < v.column2)`,
  push: () => {},
  order: () => 0,
};

/**
 * Writes each key's latest call ("last used", issue 13), never moving it back. `used` maps the key's stored hash to
 * an ISO time. One transaction, one statement per CHUNK keys (an UPDATE … FROM a VALUES list, which SQLite and
 * PostgreSQL both take): a gateway whose calls rotate over 1,000 keys wrote 1,000 statements and as many commits per
 * flush, the largest cost of the whole chain per request (docs/benchmarks.md, "Round 3").
 */
export async function markCredentialsUsed(db: Executor, used: ReadonlyMap<string, string>): Promise<void> {
  if (used.size === 0) return;
  const postgres = isPostgres(db);
  const entries = [...used];
  const write = async (tx: Executor) => {
    // On PostgreSQL one such write at a time, until its transaction ends: the rows an UPDATE … FROM locks follow
    // the join's plan, not the VALUES order, so two gateways writing the same keys could each hold one the other
    // waited for (40P01 in test/usage/usage-concurrent.test.ts, even with the VALUES sorted)
    if (postgres) await sql`select pg_advisory_xact_lock(${LAST_USED_LOCK_KEY})`.execute(tx);
    for (const [from, to] of chunks(entries.length, postgres)) {
      const params: unknown[] = [];
      for (let r = from; r < to; r++) params.push(entries[r]![0], entries[r]![1]);
      await tx.executeQuery(CompiledQuery.raw(textFor(lastUsed, to - from, postgres), params));
    }
  };
  if (db.isTransaction) await write(db);
  else await db.transaction().execute(write);
}

/**
 * Adds a batch of aggregated counts in one transaction: all of it is counted, or none (and it is retried). One
 * multi-row upsert per table and CHUNK rows, in SQL text written once (see {@link Upsert}).
 */
export async function addUsage(
  db: Executor,
  metricRows: readonly UsageMetricCountTable[],
  callRows: readonly UsageCallTable[],
): Promise<void> {
  const postgres = isPostgres(db);
  const write = async (tx: Executor) => {
    await runUpsert(tx, metricCounts, metricRows, postgres);
    await runUpsert(tx, calls, callRows, postgres);
  };
  if (db.isTransaction) await write(db);
  else await db.transaction().execute(write);
}

/**
 * Adds the insights sums (calls per route and latency bucket, call patterns) in one transaction, as
 * {@link addUsage} adds the usage. They are written directly, not through the usage journal (docs/gateway.md).
 */
export async function addPatterns(db: Executor, patterns: PatternBatch): Promise<void> {
  const postgres = isPostgres(db);
  const write = async (tx: Executor) => {
    await runUpsert(tx, routeCalls, patterns.routeRows, postgres);
    await runUpsert(tx, callPatterns, patterns.patternRows, postgres);
  };
  if (db.isTransaction) await write(db);
  else await db.transaction().execute(write);
}

/** Appends a flush's sums (a body of usage-journal.ts) to the usage journal. */
export async function appendUsageJournal(db: Executor, body: string, writtenAt: string): Promise<void> {
  await usageDb(db).insertInto('usage_journal').values({ written_at: writtenAt, body }).execute();
}

/** What a compaction did. */
export interface JournalCompaction {
  /** Journal rows added to the tables (and deleted). */
  entries: number;
  /** Journal rows deleted without being added: their bodies were not the journal's (logged by the caller). */
  dropped: number;
}

/**
 * Takes up to `maxEntries` journal rows, oldest first, and adds them to the usage tables and the keys' "last used"
 * in the transaction that deletes them: each row is counted once, by whichever compaction takes it. On PostgreSQL
 * rows another compaction holds are skipped, not waited for.
 */
export async function compactUsageJournal(db: Executor, maxEntries: number): Promise<JournalCompaction> {
  const postgres = isPostgres(db);
  const compact = async (tx: Executor): Promise<JournalCompaction> => {
    const taken = await sql<{ body: string }>`delete from usage_journal where seq in (
        select seq from usage_journal order by seq limit ${maxEntries} ${postgres ? sql`for update skip locked` : sql``}
      ) returning body`.execute(tx);
    if (taken.rows.length === 0) return { entries: 0, dropped: 0 };
    const sums = new JournalSums();
    let dropped = 0;
    for (const { body } of taken.rows) {
      try {
        sums.add(body);
      } catch (err) {
        if (!(err instanceof JournalBodyError)) throw err;
        dropped++;
      }
      // PostgreSQL's compaction runs on the gateway's thread: a flush of a thousand applications is about 250 KB
      // to parse, so requests get their turn between rows (SQLite's runs on the writer thread)
      if (postgres) await new Promise((resolve) => setImmediate(resolve));
    }
    await addUsage(tx, sums.metricRows(), sums.callRows());
    await markCredentialsUsed(tx, sums.lastUsed());
    return { entries: taken.rows.length - dropped, dropped };
  };
  return db.isTransaction ? compact(db) : db.transaction().execute(compact);
}

export interface MetricCountFilter {
  granularity: Granularity;
  from: string;
  to: string;
  serviceId?: string | undefined;
  applicationId?: string | undefined;
  accountId?: string | undefined;
  metricId?: string | undefined;
}

/** Sums per metric and bucket in `[from, to)`. */
export async function selectMetricCounts(
  db: Executor,
  f: MetricCountFilter,
): Promise<{ metric_id: string; bucket: string; value: number }[]> {
  let q = usageDb(db)
    .selectFrom('usage_metric_counts')
    .select((eb) => ['metric_id', 'bucket', eb.fn.sum<number>('value').as('value')])
    .where('granularity', '=', f.granularity)
    .where('bucket', '>=', f.from)
    .where('bucket', '<', f.to);
  if (f.serviceId) q = q.where('service_id', '=', f.serviceId);
  if (f.applicationId) q = q.where('application_id', '=', f.applicationId);
  if (f.accountId) q = q.where('account_id', '=', f.accountId);
  if (f.metricId) q = q.where('metric_id', '=', f.metricId);
  const rows = await q.groupBy(['metric_id', 'bucket']).orderBy('bucket').execute();
  return rows.map((r) => ({ metric_id: r.metric_id, bucket: r.bucket, value: Number(r.value) }));
}

export interface CallFilter {
  granularity: Granularity;
  from: string;
  to: string;
  serviceId?: string | undefined;
  applicationId?: string | undefined;
}

export interface CallRow {
  bucket: string;
  calls: number;
  client_errors: number;
  server_errors: number;
  latency_ms_sum: number;
  latency_ms_max: number;
  bytes_in: number;
  bytes_out: number;
}

/** Call counts, errors, latency and bytes per bucket; hours and days group minutes by their ISO prefix. */
export async function selectCalls(db: Executor, f: CallFilter): Promise<CallRow[]> {
  const width = f.granularity === 'minute' ? 16 : f.granularity === 'hour' ? 13 : 10;
  const bucketExpr = sql<string>`substr(bucket, 1, ${sql.lit(width)})`;
  let q = usageDb(db)
    .selectFrom('usage_calls')
    .select((eb) => [
      bucketExpr.as('bucket'),
      eb.fn.sum<number>('calls').as('calls'),
      sql<number>`sum(case when status >= 400 and status < 500 then calls else 0 end)`.as('client_errors'),
      sql<number>`sum(case when status >= 500 then calls else 0 end)`.as('server_errors'),
      eb.fn.sum<number>('latency_ms_sum').as('latency_ms_sum'),
      eb.fn.max<number>('latency_ms_max').as('latency_ms_max'),
      eb.fn.sum<number>('bytes_in').as('bytes_in'),
      eb.fn.sum<number>('bytes_out').as('bytes_out'),
    ])
    .where('bucket', '>=', f.from)
    .where('bucket', '<', f.to);
  if (f.serviceId) q = q.where('service_id', '=', f.serviceId);
  if (f.applicationId) q = q.where('application_id', '=', f.applicationId);
  const rows = await q.groupBy(bucketExpr).orderBy(bucketExpr).execute();
  return rows.map((r) => ({
    bucket: r.bucket,
    calls: Number(r.calls),
    client_errors: Number(r.client_errors),
    server_errors: Number(r.server_errors),
    latency_ms_sum: Number(r.latency_ms_sum),
    latency_ms_max: Number(r.latency_ms_max),
    bytes_in: Number(r.bytes_in),
    bytes_out: Number(r.bytes_out),
  }));
}

export interface ApplicationUsageQuery {
  applicationId: string;
  /** Day rows from this ISO bucket on. */
  daysFrom: string;
  /** The one hour row and the one minute row wanted (ISO buckets). */
  hour: string;
  minute: string;
}

export interface ApplicationUsage {
  /** Day rows since `daysFrom`, and the hour and minute rows asked for. */
  rows: { metric_id: string; granularity: string; bucket: string; value: number }[];
  /** Every day row ever, summed per metric (eternity counters). */
  totals: Map<string, number>;
}

/**
 * What an application has used in the current windows, as flushed so far: the gateway's in-memory limiter
 * starts its counters from it after a restart. Two reads on the primary key's prefix (granularity, application).
 */
export async function selectApplicationUsage(
  db: Executor,
  q: ApplicationUsageQuery,
): Promise<ApplicationUsage> {
  const u = usageDb(db);
  const rows = await u
    .selectFrom('usage_metric_counts')
    .select(['metric_id', 'granularity', 'bucket', 'value'])
    .where('application_id', '=', q.applicationId)
    .where((eb) =>
      eb.or([
        eb.and([eb('granularity', '=', 'day'), eb('bucket', '>=', q.daysFrom)]),
        eb.and([eb('granularity', '=', 'hour'), eb('bucket', '=', q.hour)]),
        eb.and([eb('granularity', '=', 'minute'), eb('bucket', '=', q.minute)]),
      ]),
    )
    .execute();
  const sums = await u
    .selectFrom('usage_metric_counts')
    .select((eb) => ['metric_id', eb.fn.sum<number>('value').as('value')])
    .where('granularity', '=', 'day')
    .where('application_id', '=', q.applicationId)
    .groupBy('metric_id')
    .execute();
  return {
    rows: rows.map((r) => ({ ...r, value: Number(r.value) })),
    totals: new Map(sums.map((r) => [r.metric_id, Number(r.value)])),
  };
}
