/**
 * What writing usage costs a gateway per call, at the flush and compaction intervals given: a usage recorder on a
 * SQLite file or a PostgreSQL database, fed calls of `--applications` applications in turn at `--rate` calls a
 * second for `--seconds` of real time, its timer flushing as a gateway's does. Measured: the process's CPU time
 * (every thread) per call, minus the same feeding with no flush at all in the window (the recording itself), the
 * configurations interleaved round by round (medians). The writes run on the process's own thread here (no writer
 * thread), so all of their cost is counted.
 *
 *   node --import tsx bench/flush-cost.ts --applications 1000 --rate 4000 --seconds 10 --rounds 3
 *   … --database postgres://postgres@127.0.0.1:5432/postgres   # a database of its own is made there and dropped
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { hashSecret, systemClock } from '../src/kernel/index.js';
import { migrateToLatest, openStore, type Store } from '../src/store/index.js';
import { UsageRecorder } from '../src/usage/index.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1]!;
};
const applications = Number(arg('applications', '1000'));
const rate = Number(arg('rate', '4000'));
const seconds = Number(arg('seconds', '10'));
const rounds = Number(arg('rounds', '3'));
const postgres = arg('database', '');

/** name → [flush interval, compaction interval] in ms */
const configurations: [string, number, number][] = [
  ['no flush in the window (recording only)', 3_600_000, 3_600_000],
  ['flush 250 ms, compaction at every flush (the tables at every flush)', 250, 250],
  ['flush 250 ms, compaction every 5 s (the defaults)', 250, 5000],
  ['flush 1 s, compaction every 5 s', 1000, 5000],
];

async function openDatabase(): Promise<{ store: Store; drop(): Promise<void> }> {
  if (!postgres) {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-flush-cost-'));
    const store = openStore(`sqlite:${join(dir, 'usage.db')}`);
    return { store, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `trellis_flush_cost_${randomBytes(4).toString('hex')}`;
  const admin = openStore(postgres);
  await sql.raw(`create database ${name}`).execute(admin.db);
  await admin.destroy();
  const url = new URL(postgres);
  url.pathname = `/${name}`;
  const store = openStore(url.toString());
  return {
    store,
    drop: async () => {
      const a = openStore(postgres);
      await sql.raw(`drop database if exists ${name} with (force)`).execute(a.db);
      await a.destroy();
    },
  };
}

/** CPU µs per call of one stretch of calls, the recorder's timer running. */
async function measure(store: Store, flushMs: number, compactMs: number): Promise<number> {
  const recorder = new UsageRecorder({
    db: store.db,
    clock: systemClock,
    flushIntervalMs: flushMs,
    compactIntervalMs: compactMs,
    insightsFlushIntervalMs: 5000,
  });
  const total = rate * seconds;
  const perTick = Math.max(1, Math.round(rate / 100));
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    for (let i = 0; i < perTick && sent < total; i++, sent++) {
      const app = sent % applications;
      recorder.record({
        at: Date.now(),
        serviceId: 'svc_bench',
        applicationId: `app_${app}`,
        accountId: `acc_${app}`,
        metrics: [{ metricId: 'hits', delta: 1 }],
        status: 200,
        latencyMs: 2,
        bytesIn: 0,
        bytesOut: 11,
        endUser: null,
        clientIp: '127.0.0.1',
        method: 'GET',
        route: 'r_items',
        credentialHash: keyHashes[app]!,
      });
    }
    // the calls of the next 10 ms are due then
    const due = start + (sent / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const cpu = process.cpuUsage(cpuBefore);
  // what is left is written outside the window (close() flushes and compacts)
  await recorder.close();
  return (cpu.user + cpu.system) / total;
}

const keyHashes = Array.from({ length: applications }, (_, i) => hashSecret(`flush-cost-key-${i}`));
const { store, drop } = await openDatabase();
try {
  await migrateToLatest(store.db);
  const samples = configurations.map(() => [] as number[]);
  // a warm-up stretch of each (JIT, the database's pages), then the rounds
  for (const [, flushMs, compactMs] of configurations) await measure(store, flushMs, compactMs);
  for (let round = 0; round < rounds; round++)
    for (const [i, [, flushMs, compactMs]] of configurations.entries())
      samples[i]!.push(await measure(store, flushMs, compactMs));
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const base = median(samples[0]!);
  console.log(
    `${postgres ? 'PostgreSQL' : 'SQLite file'}, ${applications} applications, ${rate} calls/s, ${seconds} s per measurement, ${rounds} interleaved rounds (CPU µs per call, median)`,
  );
  for (const [i, [name]] of configurations.entries()) {
    const m = median(samples[i]!);
    console.log(
      `${name.padEnd(72)} ${m.toFixed(2).padStart(7)}  writing: ${(m - base).toFixed(2).padStart(6)}  [${samples[i]!.map((s) => s.toFixed(2)).join(', ')}]`,
    );
  }
} finally {
  await store.destroy();
  await drop();
}
