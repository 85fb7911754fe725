/**
 * How long a usage flush holds the gateway's thread on a SQLite file: the flush on the store's own connection
 * (better-sqlite3 is synchronous) against the flush on its writer thread (`src/usage/usage-writer.ts`). Each flush
 * carries one minute of calls of `--applications` applications (metric, call, route and pattern rows, as the gateway
 * sums them); the two writers take turns, round by round, on files of their own. Measured: the longest stretch the
 * event loop was held during the flush (a 1 ms timer's lateness, `monitorEventLoopDelay`) and the flush's duration.
 *
 *   node --import tsx bench/flush-stall.ts --applications 1000 --rounds 15
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/kernel/index.js';
import { migrateToLatest, openStore } from '../src/store/index.js';
import { databaseWriter, threadWriter, UsageRecorder, type UsageWriter } from '../src/usage/index.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const applications = arg('applications', 1000);
const rounds = arg('rounds', 15);
const dir = mkdtempSync(join(tmpdir(), 'trellis-flush-stall-'));
const base = Date.UTC(2026, 10, 29, 10, 0);

async function setUp(name: string, thread: boolean) {
  const url = `sqlite:${join(dir, `${name}.db`)}`;
  const store = openStore(url);
  await migrateToLatest(store.db);
  const writer: UsageWriter = thread ? threadWriter(url) : databaseWriter(store.db);
  await writer.ready();
  const recorder = new UsageRecorder({
    db: store.db,
    writer,
    clock: new ManualClock(base),
    flushIntervalMs: 0,
  });
  return { name, store, recorder };
}

/** One flush of a minute of every application's calls; answers (max event-loop delay, flush duration) in ms. */
async function measure(recorder: UsageRecorder, round: number): Promise<[number, number]> {
  const at = base + round * 60_000;
  for (let a = 0; a < applications; a++) {
    for (let c = 0; c < 3; c++) {
      recorder.record({
        at: at + c,
        serviceId: 'svc_bench',
        applicationId: `app_${a}`,
        accountId: `acc_${a}`,
        metrics: [{ metricId: 'hits', delta: 1 }],
        status: c === 2 ? 429 : 200,
        latencyMs: 3,
        bytesIn: 0,
        bytesOut: 120,
        endUser: null,
        clientIp: '127.0.0.1',
        method: 'GET',
        route: 'r_items',
      });
    }
  }
  // the loop turns on setImmediate while the flush runs: the longest gap between two turns is how long it was held
  let last = performance.now();
  let held = 0;
  let turning = true;
  const turn = () => {
    const now = performance.now();
    held = Math.max(held, now - last);
    last = now;
    if (turning) setImmediate(turn);
  };
  setImmediate(turn);
  const started = performance.now();
  await recorder.flush();
  const took = performance.now() - started;
  await new Promise((resolve) => setImmediate(resolve));
  turning = false;
  return [held, took];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows = [await setUp('store-connection', false), await setUp('writer-thread', true)];
const results = rows.map(() => ({ held: [] as number[], took: [] as number[] }));
for (let round = 0; round < rounds + 2; round++) {
  for (let i = 0; i < rows.length; i++) {
    const [held, took] = await measure(rows[i]!.recorder, round);
    // two rounds of warm-up: the first flush creates the rows, later ones update them as a running gateway does
    if (round < 2) continue;
    results[i]!.held.push(held);
    results[i]!.took.push(took);
  }
}
console.log(`usage flush of ${applications} applications' minute, ${rounds} rounds (medians, ms)`);
for (let i = 0; i < rows.length; i++) {
  const r = results[i]!;
  console.log(
    `${rows[i]!.name.padEnd(18)} event loop held ${median(r.held).toFixed(1).padStart(6)} (max ${Math.max(...r.held).toFixed(1)})   flush took ${median(r.took).toFixed(1).padStart(6)}`,
  );
}
for (const row of rows) {
  await row.recorder.close();
  await row.store.destroy();
}
rmSync(dir, { recursive: true, force: true });
