/**
 * Webhook delivery benchmark (issue 9): deliveries per second from the outbox to a local receiver with 1 and 2
 * worker processes on PostgreSQL and 1 on SQLite, and publish-to-receipt latency at low load.
 *
 *   node --import tsx bench/webhooks.ts [--messages 5000] [--latency-events 100] [--latency-only]
 *
 * The receiver (this process) answers 200 at once and records the first arrival of each webhook-id. Throughput:
 * N events are written first, then the workers are told to go; the clock runs until every message has arrived.
 * Latency: one event at a time, written through runChange, 20 ms apart, the time until its delivery arrives.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Change, recordChanges, runChange, systemActor } from '../src/events/index.js';
import { systemClock } from '../src/kernel/index.js';
import { createSealer } from '../src/oauth/index.js';
import { type Store, migrateToLatest, openStore } from '../src/store/index.js';
import { createEndpoint } from '../src/webhooks/index.js';
import pg from 'pg';

const keySecret = 'bench key secret';
const argv = process.argv.slice(2);
const arg = (name: string, def: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const messages = arg('--messages', 5000);
const latencyEvents = arg('--latency-events', 100);
const adminUrl = process.env.TRELLIS_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function adminQuery(sql: string) {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(sql);
  await c.end();
}

async function database(dialect: 'sqlite' | 'postgres') {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-hooks-'));
    return {
      url: `sqlite:${join(dir, 'b.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `trellis_bench_${Date.now()}`;
  await adminQuery(`create database ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => adminQuery(`drop database ${name} with (force)`) };
}

const arrivals = new Map<string, number>();
let onArrival: (() => void) | null = null;
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const id = String(req.headers['webhook-id']);
    if (!arrivals.has(id)) arrivals.set(id, performance.now());
    res.writeHead(200).end();
    onArrival?.();
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/in`;

async function prepare(store: Store) {
  await migrateToLatest(store.db);
  await createEndpoint(
    { db: store.db, clock: systemClock, sealer: createSealer(keySecret), allowHosts: ['127.0.0.1'] },
    systemActor,
    { url: receiverUrl, eventTypes: ['*'] },
  );
}

function startWorkers(url: string, n: number, pollMs: number): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: n }, () => {
      const child = fork(join(import.meta.dirname, 'webhook-worker.ts'), {
        // BENCH_WORKER_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles each worker process
        execArgv: ['--import', 'tsx', ...(process.env.BENCH_WORKER_ARGS ?? '').split(' ').filter(Boolean)],
        env: {
          ...process.env,
          TRELLIS_DATABASE_URL: url,
          TRELLIS_OAUTH_KEY_SECRET: keySecret,
          BENCH_POLL_MS: String(pollMs),
        },
      });
      return new Promise<ChildProcess>((resolve) => child.once('message', () => resolve(child)));
    }),
  );
}

async function stopWorkers(children: ChildProcess[]) {
  for (const c of children) {
    // SIGTERM lets a profiled worker write its profile
    c.kill(process.env.BENCH_WORKER_ARGS ? 'SIGTERM' : 'SIGKILL');
    await new Promise((r) => c.once('exit', r));
  }
}

const event = (i: number): Change => ({
  type: 'portal.sso_secret_rotated',
  entityType: 'settings',
  entityId: `s${i}`,
  payload: {},
});

async function throughput(
  dialect: 'sqlite' | 'postgres',
  workers: number,
): Promise<{ rate: number; cpuUsPerDelivery: number }> {
  const db = await database(dialect);
  const store = openStore(db.url);
  await prepare(store);
  const children = await startWorkers(db.url, workers, 250);
  // warm-up: each worker loads its modules and compiles its hot path on a few hundred deliveries first, so the
  // figure is the steady rate, not the first second of a fresh process (which alone cut a 3,000-message run's rate
  // by half); then they stop, the measured events are written, and they go again
  const warmup = 200 * workers;
  await store.db.transaction().execute((tx) =>
    recordChanges(
      tx,
      systemClock,
      systemActor,
      Array.from({ length: warmup }, (_, k) => event(-1 - k)),
    ),
  );
  arrivals.clear();
  await new Promise<void>((resolve) => {
    onArrival = () => arrivals.size >= warmup && resolve();
    for (const c of children) c.send({ type: 'go' });
  });
  const cpuBefore = await pauseWorkers(children);
  for (let i = 0; i < messages; i += 500) {
    const batch = Array.from({ length: Math.min(500, messages - i) }, (_, k) => event(i + k));
    await store.db.transaction().execute((tx) => recordChanges(tx, systemClock, systemActor, batch));
  }
  arrivals.clear();
  const done = new Promise<void>((resolve) => {
    onArrival = () => arrivals.size >= messages && resolve();
  });
  const started = performance.now();
  for (const c of children) c.send({ type: 'go' });
  await done;
  const seconds = (performance.now() - started) / 1000;
  onArrival = null;
  const cpuAfter = await pauseWorkers(children);
  await stopWorkers(children);
  await store.destroy();
  await db.drop();
  // the workers' CPU time (user + system) per delivery: what load on the machine does not change
  return { rate: messages / seconds, cpuUsPerDelivery: (cpuAfter - cpuBefore) / messages };
}

/** Stops the workers after their round in progress; their CPU time (user + system, µs) so far, summed. */
async function pauseWorkers(children: ChildProcess[]): Promise<number> {
  const cpu = await Promise.all(
    children.map(
      (c) =>
        new Promise<number>((resolve) => {
          c.once('message', (m: { cpu?: { user: number; system: number } }) =>
            resolve((m.cpu?.user ?? 0) + (m.cpu?.system ?? 0)),
          );
          c.send({ type: 'pause' });
        }),
    ),
  );
  return cpu.reduce((a, b) => a + b, 0);
}

async function latency(
  dialect: 'sqlite' | 'postgres',
  pollMs: number,
): Promise<{ p50: number; p99: number }> {
  const db = await database(dialect);
  const store = openStore(db.url);
  await prepare(store);
  const children = await startWorkers(db.url, 1, pollMs);
  for (const c of children) c.send({ type: 'go' });
  const samples: number[] = [];
  for (let i = 0; i < latencyEvents; i++) {
    arrivals.clear();
    const arrived = new Promise<void>((resolve) => {
      onArrival = resolve;
    });
    const t0 = performance.now();
    await runChange({ db: store.db, clock: systemClock }, systemActor, async (_tx, record) =>
      record(event(i)),
    );
    await arrived;
    samples.push([...arrivals.values()][0]! - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  onArrival = null;
  await stopWorkers(children);
  await store.destroy();
  await db.drop();
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
  return { p50: q(0.5), p99: q(0.99) };
}

/** `--only postgres:1` runs that row only (and no latency), e.g. to profile one configuration. */
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
/** `--latency-only` skips the throughput rows. */
const latencyOnly = argv.includes('--latency-only');
const rows: string[] = [];
for (const [dialect, workers] of (
  [
    ['sqlite', 1],
    ['postgres', 1],
    ['postgres', 2],
  ] as const
).filter(([d, w]) => !latencyOnly && (only === undefined || only === `${d}:${w}`))) {
  const { rate, cpuUsPerDelivery } = await throughput(dialect, workers);
  rows.push(
    `| ${dialect} | ${workers} | ${messages} | ${Math.round(rate)} | ${Math.round(cpuUsPerDelivery)} |`,
  );
  console.log(rows.at(-1));
}
console.log(
  '\n| database | workers | messages | deliveries/s | worker CPU µs/delivery |\n| --- | --- | --- | --- | --- |',
);
console.log(rows.join('\n'));
for (const dialect of only === undefined ? (['sqlite', 'postgres'] as const) : []) {
  for (const pollMs of [250, 20]) {
    const l = await latency(dialect, pollMs);
    console.log(
      `latency ${dialect} poll ${pollMs} ms: p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms`,
    );
  }
}
receiver.close();
