/**
 * The usage journal: what a gateway's flush writes. A flush appends its batch's sums as one row of
 * `usage_journal` (its minute rows per application and metric, its calls rows, its keys' last use); a compaction,
 * every few seconds and at a graceful stop, takes journal rows, adds them up, and writes the sums into the usage
 * tables (with the hour and day rollups) and the keys' "last used", deleting the rows it took in the same
 * transaction.
 *
 * Why: a flush every 250 ms (what a kill -9 may lose) wrote an upsert per application and metric, its rollups,
 * its calls row and its keys, about as many rows as calls on a gateway whose calls spread over many applications
 * (docs/benchmarks.md). Appending one row costs a fraction of that; the upserts happen twenty times less often,
 * and on PostgreSQL the usage rows are rewritten (and left dead for vacuum) that much less.
 *
 * Any gateway's compaction takes any journal rows, its own or another's (a gateway killed before its rows were
 * compacted, say): a row is deleted in the transaction that adds it to the tables, so it is counted exactly once.
 * On PostgreSQL, compactions at once take different rows (`for update skip locked`).
 *
 * The body is JSON of arrays. Version 2, what {@link encodeJournal} writes, holds every string once, in `s`, and the
 * rows name them by their index there:
 * `{"v":2,"s":[string…],"m":[[bucket,service,application,account,metric,value]…],"c":[[bucket,service,application,
 * account,end user,client IP,status,calls,latency sum,latency max,bytes in,bytes out]…],"u":[[key hash,epoch ms]…]}`,
 * the text columns as indexes into `s`. A flush of a thousand applications names each application's id, account id
 * and key hash once instead of two to four times, the bucket and the service once in all: about a third of version
 * 1's bytes to encode, write, delete and parse, four times a second (docs/benchmarks.md). Version 1 is the same
 * without `s`, the strings in the rows; a compaction still reads it (rows an older version left).
 */
import type { UsageCallTable, UsageMetricCountTable } from './usage-tables.js';

/** A key's latest call (its stored hash, epoch ms): the recorder moves `at` on as the key's calls come. */
export interface KeyUse {
  readonly hash: string;
  at: number;
}

/** The body of a journal row holding these sums (version 2). */
export function encodeJournal(
  metricRows: readonly UsageMetricCountTable[],
  callRows: readonly UsageCallTable[],
  used: Iterable<Readonly<KeyUse>>,
): string {
  const strings: string[] = [];
  const indexes = new Map<string, number>();
  const ref = (text: string): number => {
    let i = indexes.get(text);
    if (i === undefined) {
      i = strings.length;
      strings.push(text);
      indexes.set(text, i);
    }
    return i;
  };
  const m = metricRows.map((r) => [
    ref(r.bucket),
    ref(r.service_id),
    ref(r.application_id),
    ref(r.account_id),
    ref(r.metric_id),
    r.value,
  ]);
  const c = callRows.map((r) => callValues(r, ref));
  const u: [number, number][] = [];
  for (const k of used) u.push([ref(k.hash), k.at]);
  return JSON.stringify({ v: 2, s: strings, m, c, u });
}

/**
 * A calls row's values in the order of its columns (the journal's and the upsert's), its text columns through
 * `text` (the journal's version 2 writes their indexes).
 */
export function callValues(
  r: UsageCallTable,
  text: (value: string) => string | number = (value) => value,
): (string | number)[] {
  return [
    text(r.bucket),
    text(r.service_id),
    text(r.application_id),
    text(r.account_id),
    text(r.end_user),
    text(r.client_ip),
    r.status,
    r.calls,
    r.latency_ms_sum,
    r.latency_ms_max,
    r.bytes_in,
    r.bytes_out,
  ];
}

/** A journal row whose body is not one {@link encodeJournal} writes. */
export class JournalBodyError extends Error {}

const isText = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * The rows `name` of a body, each `width` values, the first `texts` of them text: strings in version 1, indexes into
 * `strings` in version 2, replaced by their strings here (in place: the parsed arrays are the body's own).
 */
function rowsOf(
  body: Record<string, unknown>,
  name: string,
  width: number,
  texts: number,
  strings: readonly string[] | null,
): unknown[][] {
  const rows = body[name];
  if (!Array.isArray(rows)) throw new JournalBodyError(`"${name}" is not an array`);
  for (const row of rows) {
    if (!Array.isArray(row) || row.length !== width)
      throw new JournalBodyError(`a row of "${name}" is not ${width} values`);
    for (let i = 0; i < width; i++) {
      if (i >= texts) {
        if (!isCount(row[i])) throw new JournalBodyError(`a row of "${name}" has a value of the wrong type`);
      } else if (strings === null) {
        if (!isText(row[i])) throw new JournalBodyError(`a row of "${name}" has a value of the wrong type`);
      } else {
        const text = strings[row[i] as number];
        if (!Number.isInteger(row[i]) || text === undefined)
          throw new JournalBodyError(`a row of "${name}" names no string of "s"`);
        row[i] = text;
      }
    }
  }
  return rows as unknown[][];
}

/** The strings of a version 2 body. */
function stringsOf(body: Record<string, unknown>): string[] {
  const strings = body.s;
  if (!Array.isArray(strings) || !strings.every(isText))
    throw new JournalBodyError('"s" is not an array of strings');
  return strings;
}

/** Sums of journal rows, added up row after row, then written as the tables' rows. */
export class JournalSums {
  private readonly metrics = new Map<string, UsageMetricCountTable>();
  private readonly calls = new Map<string, UsageCallTable>();
  private readonly used = new Map<string, number>();

  /** Adds a journal row's body; a body of neither version's shape throws {@link JournalBodyError}, adding nothing. */
  add(text: string): void {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new JournalBodyError('not JSON');
    }
    const version = typeof body === 'object' && body !== null ? (body as { v?: unknown }).v : undefined;
    if (version !== 1 && version !== 2) throw new JournalBodyError('not a version 1 or 2 journal body');
    const b = body as Record<string, unknown>;
    const strings = version === 2 ? stringsOf(b) : null;
    // every row is checked before any is added: a bad body adds nothing
    const m = rowsOf(b, 'm', 6, 5, strings);
    const c = rowsOf(b, 'c', 12, 6, strings);
    const u = rowsOf(b, 'u', 2, 1, strings);
    for (const r of m as [string, string, string, string, string, number][]) {
      const key = `${r[0]}\u0000${r[2]}\u0000${r[4]}`;
      const row = this.metrics.get(key);
      if (row !== undefined) row.value += r[5];
      else
        this.metrics.set(key, {
          granularity: 'minute',
          bucket: r[0],
          service_id: r[1],
          application_id: r[2],
          account_id: r[3],
          metric_id: r[4],
          value: r[5],
        });
    }
    type CallValues = [string, string, string, string, string, string, ...number[]];
    for (const r of c as CallValues[]) {
      const key = `${r[0]}\u0000${r[1]}\u0000${r[2]}\u0000${r[4]}\u0000${r[5]}\u0000${r[6]}`;
      const row = this.calls.get(key);
      const [calls, sum, max, bytesIn, bytesOut] = r.slice(7) as number[];
      if (row !== undefined) {
        row.calls += calls!;
        row.latency_ms_sum += sum!;
        if (max! > row.latency_ms_max) row.latency_ms_max = max!;
        row.bytes_in += bytesIn!;
        row.bytes_out += bytesOut!;
      } else
        this.calls.set(key, {
          bucket: r[0],
          service_id: r[1],
          application_id: r[2],
          account_id: r[3],
          end_user: r[4],
          client_ip: r[5],
          status: r[6] as number,
          calls: calls!,
          latency_ms_sum: sum!,
          latency_ms_max: max!,
          bytes_in: bytesIn!,
          bytes_out: bytesOut!,
        });
    }
    for (const [hash, at] of u as [string, number][]) {
      const held = this.used.get(hash);
      if (held === undefined || at > held) this.used.set(hash, at);
    }
  }

  /** Minute rows with their hour and day rollups. */
  metricRows(): UsageMetricCountTable[] {
    return withRollups([...this.metrics.values()]);
  }

  callRows(): UsageCallTable[] {
    return [...this.calls.values()];
  }

  /** Key hash → ISO time of its latest call. */
  lastUsed(): Map<string, string> {
    return new Map([...this.used].map(([hash, at]) => [hash, new Date(at).toISOString()]));
  }
}

/** Minute rows plus their hour and day sums, so charts over long ranges read few rows. */
export function withRollups(minutes: readonly UsageMetricCountTable[]): UsageMetricCountTable[] {
  const out = [...minutes];
  const rollups = new Map<string, UsageMetricCountTable>();
  for (const row of minutes) {
    for (const [granularity, bucket] of [
      ['hour', `${row.bucket.slice(0, 13)}:00:00.000Z`],
      ['day', `${row.bucket.slice(0, 10)}T00:00:00.000Z`],
    ] as const) {
      const key = `${granularity}|${bucket}|${row.application_id}|${row.metric_id}`;
      const existing = rollups.get(key);
      if (existing) existing.value += row.value;
      else rollups.set(key, { ...row, granularity, bucket });
    }
  }
  return out.concat([...rollups.values()]);
}
