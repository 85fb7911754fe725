/**
 * The gateway benchmark (issues 3 and 14): an upstream, nginx as a one-worker reverse proxy, a bare Node proxy, the
 * Trellis gateway with the full chain (built code, dist/) and its peers — express-gateway with key-auth and
 * rate-limit, fast-gateway with a key check and rate limits — each loaded by wrk with the same settings, the same
 * upstream, keys and limits, side by side in one run. No measured process runs a TypeScript loader: the gateway
 * (bench/gateway-server.mjs) and the bare proxy (bench/bare-proxy.mjs) import dist/, and `npm run bench` builds it
 * first; only this driver runs under tsx (it seeds the databases before any gateway starts).
 *
 *   npm run bench                     # 10 s per measurement, 3 interleaved rounds
 *   npm run bench -- --seconds 5 --connections 64 --rounds 3 --no-write
 *   npm run bench -- --profile --seconds 10   # only: CPU profiles (--cpu-prof) of the full chain and the bare proxy
 *   npm run bench -- --insights --seconds 5   # only: the full chain with insights recording on vs off (issue 10)
 *   npm run bench -- --flush-thread           # only: the usage flush on its writer thread vs on the gateway's thread
 *
 * Pinning (2-core machine): wrk and the upstream share CPU 0; every proxy under test (nginx, the bare Node proxy,
 * each one-process Trellis gateway, each peer) runs on CPU 1, the same for every compared row. The two-worker
 * gateway floats over CPUs 0-1, which it then shares with wrk and the upstream. The one-connection latency rows are
 * measured twice: with
 * everything on CPU 0 (one request in flight needs no second CPU, and the figure is then the proxy's own work) and
 * with the usual placement (where each request crosses between the vCPUs four times).
 *
 * The machine is shared and noisy, so the compared rows run interleaved (A, B, C, A, B, C, …) for --rounds rounds,
 * each after its process was warmed up; tables give the median and the range, ratios the median of the per-round
 * ratios. Results go to docs/benchmarks.md unless --no-write (the hand-written notes after NOTES_MARK are kept).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { migrateToLatest, openStore } from '../src/store/index.js';
import { summariseProfile } from './profile-summary.js';
import { BENCH_KEY_HEADER, BENCH_PREFIX, benchKey, seedBench } from './seed.store.js';

interface Args {
  seconds: number;
  connections: number;
  rounds: number;
  write: boolean;
  profile: boolean;
  insights: boolean;
  flushThread: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seconds: 10,
    connections: 64,
    rounds: 3,
    write: true,
    profile: false,
    insights: false,
    flushThread: false,
  };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seconds') args.seconds = Number(argv[++i]);
    else if (argv[i] === '--connections') args.connections = Number(argv[++i]);
    else if (argv[i] === '--rounds') args.rounds = Math.max(1, Math.min(20, Number(argv[++i]) || 1));
    else if (argv[i] === '--no-write') args.write = false;
    else if (argv[i] === '--profile') args.profile = true;
    else if (argv[i] === '--insights') args.insights = true;
    else if (argv[i] === '--flush-thread') args.flushThread = true;
  }
  return args;
}

/** Everything after this line of docs/benchmarks.md is written by hand and kept when the tables are rewritten. */
const NOTES_MARK = '<!-- notes: kept by bench/run.ts -->';
const WARMUP_SECONDS = 5;

const args = parseArgs(process.argv.slice(2));
const WORK = '/tmp/trellis-bench';
mkdirSync(WORK, { recursive: true });
const children: ChildProcess[] = [];

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a process pinned to `cpu` and waits for `ready <port> <pids>` on its stdout. */
function startPinned(
  cpu: string,
  command: string[],
  timeoutMs = 60_000,
): Promise<{ child: ChildProcess; pids: number[] }> {
  const child = spawn('taskset', ['-c', cpu, ...command], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command.join(' ')} did not start`)), timeoutMs);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+) ([\d,]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, pids: m[2]!.split(',').map(Number) });
      }
    });
    child.once('exit', (code) => reject(new Error(`${command.join(' ')} exited with ${code}`)));
  });
}

/**
 * The Redis of the Redis rows: a redis-server of the bench's own, pinned to CPU 0 beside wrk and the upstream — a
 * service the gateway calls, as it calls the upstream, so its work is not charged to the gateway's CPU (in
 * production it runs on a host of its own). Without redis-server, the host's Redis on 6379 (not pinned); null
 * when there is none.
 */
async function startRedis(): Promise<string | null> {
  if (has('redis-server')) {
    const port = await freePort();
    const child = spawn(
      'taskset',
      [
        '-c',
        '0',
        'redis-server',
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    );
    children.push(child);
    for (let i = 0; i < 100; i++) {
      const ping = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim();
      if (ping === 'PONG') return `redis://127.0.0.1:${port}`;
      await new Promise((r) => setTimeout(r, 50));
    }
    await stop(child);
  }
  const host = spawnSync('redis-cli', ['ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG';
  return host ? 'redis://127.0.0.1:6379' : null;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

function nginxConf(dir: string, body: string): string {
  mkdirSync(dir, { recursive: true });
  const conf = `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000000;
  ${body}
}`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  return join(dir, 'nginx.conf');
}

/** nginx does not print `ready`; wait until its port answers. */
async function startNginx(cpu: string, conf: string, port: number): Promise<ChildProcess> {
  const child = spawn('taskset', ['-c', cpu, 'nginx', '-c', conf, '-e', '/dev/stderr'], { stdio: 'inherit' });
  children.push(child);
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.arrayBuffer().then(() => true),
      () => false,
    );
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('nginx did not start');
}

interface WrkResult {
  rps: number;
  requests: number;
  /** CPU time (user + system) the proxy's processes spent per request during the run, when their pids are known. */
  cpuUsPerRequest: number;
  p50us: number;
  p99us: number;
  non2xx: number;
  errors: number;
}

function toMicros(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v : m[2] === 'ms' ? v * 1000 : v * 1_000_000;
}

function wrk(
  url: string,
  options: { connections: number; seconds: number; header?: string; script?: string; cpu?: string },
): WrkResult {
  const cmd = [
    '-c',
    options.cpu ?? '0',
    'wrk',
    '-t1',
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    '--latency',
  ];
  if (options.header) cmd.push('-H', options.header);
  if (options.script) cmd.push('-s', options.script);
  cmd.push(url);
  const out = spawnSync('taskset', cmd, { encoding: 'utf8' }).stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const p50 = /\n\s+50%\s+(\S+)/.exec(out)?.[1] ?? '';
  const p99 = /\n\s+99%\s+(\S+)/.exec(out)?.[1] ?? '';
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = socketErrors ? socketErrors.slice(1).reduce((s, v) => s + Number(v), 0) : 0;
  return {
    rps,
    requests,
    cpuUsPerRequest: Number.NaN,
    p50us: toMicros(p50),
    p99us: toMicros(p99),
    non2xx,
    errors,
  };
}

/** A target under load: a URL and how wrk calls it. */
interface Target {
  url: string;
  /** Processes whose CPU time is charged to the row. */
  pids?: number[];
  connections?: number;
  header?: string;
  script?: string;
  cpu?: string;
}

const wrkOptions = (t: Target, seconds: number) => ({
  connections: t.connections ?? args.connections,
  seconds,
  header: t.header,
  script: t.script,
  cpu: t.cpu,
});

/** Warms every target up (V8 optimizes the hot path, pools fill), then measures them interleaved, round by round. */
function measureInterleaved(targets: Target[]): WrkResult[][] {
  for (const t of targets) wrk(t.url, wrkOptions(t, WARMUP_SECONDS));
  const results: WrkResult[][] = targets.map(() => []);
  for (let round = 0; round < args.rounds; round++)
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      const before = cpuTicks(t.pids ?? []);
      const r = wrk(t.url, wrkOptions(t, args.seconds));
      if (t.pids && r.requests > 0)
        r.cpuUsPerRequest = ((cpuTicks(t.pids) - before) * 1e6) / CLOCK_TICKS / r.requests;
      results[i]!.push(r);
    }
  return results;
}

/** USER_HZ of /proc/<pid>/stat (100 on Linux everywhere but exotic builds). */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of the processes, in clock ticks. */
function cpuTicks(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // the command name is in parentheses and may hold spaces: count fields after it
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks;
}

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A row of the table: the median of its rounds, with the range of req/s. */
interface Row {
  name: string;
  runs: WrkResult[];
  note?: string;
}

const rpsOf = (runs: WrkResult[]) => median(runs.map((r) => r.rps));
const p50Of = (runs: WrkResult[]) => median(runs.map((r) => r.p50us));
const cpuOf = (runs: WrkResult[]) => median(runs.map((r) => r.cpuUsPerRequest));

/** Per-round ratios a[i] / b[i] (the rounds ran next to each other in time) and their median. */
function ratios(a: WrkResult[], b: WrkResult[], of: (r: WrkResult) => number = (r) => r.rps) {
  const each = a.map((r, i) => (b[i] && of(b[i]!) > 0 ? of(r) / of(b[i]!) : Number.NaN));
  return { each, median: median(each) };
}

function rssMb(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return Math.round(kb / 1024);
}

function keyScript(name: string, keys: string[]): string {
  const file = join(WORK, `${name}.lua`);
  writeFileSync(
    file,
    `local keys = {${keys.map((k) => `"${k}"`).join(',')}}
math.randomseed(42)
request = function()
  return wrk.format(nil, nil, { ["${BENCH_KEY_HEADER}"] = keys[math.random(#keys)] })
end
`,
  );
  return file;
}

/** Every measured process runs plain Node: the built code (dist/) and .mjs files, no TypeScript loader. */
const node = [process.execPath];

/** Seeds (once; a seeded file is reused between runs) the database a gateway opens, before it starts. */
async function seedDatabase(
  file: string,
  upstream: string,
  credentials: number,
  limiter: string,
): Promise<void> {
  const store = openStore(`sqlite:${file}`);
  try {
    await migrateToLatest(store.db);
    await seedBench(store.db, {
      upstream,
      credentials,
      limiterMode: limiter === 'strict' ? 'strict' : 'batched',
    });
  } finally {
    await store.destroy();
  }
}

async function gateway(options: {
  upstream: string;
  credentials: number;
  limiter: string;
  workers?: number;
  cpu?: string;
  /** Node flags before the script (`--cpu-prof …`). */
  flags?: string[];
  /** TRELLIS_INSIGHTS_RECORDING (default true): route, status class and latency sums and call patterns. */
  insights?: boolean;
  /** TRELLIS_USAGE_FLUSH_THREAD (default true): the SQLite flush on its writer thread. */
  flushThread?: boolean;
  /** The Redis of the batched and strict rows (see startRedis). */
  redisUrl?: string;
}) {
  const port = await freePort();
  // strict keeps its own copy: the seed writes the service's limiter mode, and gateways run side by side; the
  // two-worker gateway too (its primary's counters start from the usage recorded in it); the gateway without
  // insights too, so the two compared gateways do not flush into one SQLite file
  const suffix =
    options.limiter === 'strict'
      ? '-strict'
      : (options.workers ?? 1) > 1
        ? '-workers'
        : options.insights === false
          ? '-no-insights'
          : options.flushThread === false
            ? '-flush-main'
            : '';
  const db = join(WORK, `creds-${options.credentials}${suffix}.db`);
  await seedDatabase(db, options.upstream, options.credentials, options.limiter);
  const started = await startPinned(
    options.cpu ?? '1',
    [
      ...node,
      ...(options.flags ?? []),
      'bench/gateway-server.mjs',
      JSON.stringify({
        port,
        upstream: options.upstream,
        db,
        limiter: options.limiter,
        workers: options.workers ?? 1,
        insights: options.insights ?? true,
        flushThread: options.flushThread ?? true,
        redisPrefix: `trellis-bench:${randomBytes(4).toString('hex')}:`,
        redisUrl: options.redisUrl,
      }),
    ],
    15 * 60_000,
  );
  return { ...started, url: `http://127.0.0.1:${port}${BENCH_PREFIX}/items` };
}

/** The 1,000 keys of the compared rows and the application each belongs to (as seeded: key i → application i). */
const peerKeys = Array.from({ length: 1000 }, (_, i) => benchKey(i));
/** express-gateway's key-auth reads `keyId:keySecret`: its key i is the bench key i, a colon and this secret. */
const EG_SECRET = 'bench-secret';

/** express-gateway: its configuration directory written here (bench/peers/express-gateway.mjs reads it). */
async function expressGateway(upstream: string) {
  const port = await freePort();
  const dir = join(WORK, 'express-gateway');
  mkdirSync(join(dir, 'models'), { recursive: true });
  const models = join('node_modules', 'express-gateway', 'lib', 'config', 'models');
  for (const file of readdirSync(models)) copyFileSync(join(models, file), join(dir, 'models', file));
  // the same limits as the Trellis plan (per consumer here, per application there), never reached
  const limit = (name: string, windowMs: number, max: number) => ({
    'rate-limit': [
      {
        action: {
          // express-gateway's template, evaluated per request; the name keeps the two limits' counters apart (both
          // policies share one store and key prefix)
          rateLimitBy: `${name}:$\{consumer.id}`,
          windowMs,
          max,
          // express-rate-limit 2 delays every call after the first by 1 s unless told not to
          delayAfter: 0,
          delayMs: 0,
        },
      },
    ],
  });
  writeFileSync(
    join(dir, 'gateway.config.json'),
    JSON.stringify({
      http: { port },
      apiEndpoints: { bench: { host: '*', paths: [`${BENCH_PREFIX}/*`] } },
      serviceEndpoints: { upstream: { url: upstream } },
      policies: ['key-auth', 'rate-limit', 'proxy'],
      pipelines: {
        bench: {
          apiEndpoints: ['bench'],
          policies: [
            {
              'key-auth': [
                {
                  action: {
                    apiKeyHeader: BENCH_KEY_HEADER,
                    disableHeadersScheme: true,
                    disableQueryParam: true,
                  },
                },
              ],
            },
            limit('minute', 60_000, 1_000_000_000),
            limit('month', 30 * 24 * 3600_000, 1_000_000_000_000),
            { proxy: [{ action: { serviceEndpoint: 'upstream', stripPath: true } }] },
          ],
        },
      },
    }),
  );
  writeFileSync(
    join(dir, 'system.config.json'),
    JSON.stringify({
      db: { redis: { emulate: true, namespace: 'EG' } },
      crypto: { cipherKey: 'bench', algorithm: 'aes256', saltRounds: 10 },
      session: { secret: 'bench', resave: false, saveUninitialized: false },
      accessTokens: { timeToExpiry: 7200000 },
      refreshTokens: { timeToExpiry: 7200000 },
      authorizationCodes: { timeToExpiry: 300000 },
    }),
  );
  writeFileSync(join(dir, 'keys.json'), JSON.stringify(peerKeys.map((k) => [k, EG_SECRET])));
  const started = await startPinned('1', [
    ...node,
    'bench/peers/express-gateway.mjs',
    JSON.stringify({ dir }),
  ]);
  return {
    ...started,
    url: `http://127.0.0.1:${port}${BENCH_PREFIX}/items`,
    header: `${BENCH_KEY_HEADER}: ${benchKey(0)}:${EG_SECRET}`,
  };
}

/** fast-gateway with a key check and two rate limits (bench/peers/fast-gateway.mjs). */
async function fastGateway(upstream: string) {
  const port = await freePort();
  const keys = join(WORK, 'fast-gateway-keys.json');
  writeFileSync(keys, JSON.stringify(peerKeys.map((k, i) => [k, `app_bench${i}`])));
  const started = await startPinned('1', [
    ...node,
    'bench/peers/fast-gateway.mjs',
    JSON.stringify({ port, upstream, keys, header: BENCH_KEY_HEADER, prefix: BENCH_PREFIX }),
  ]);
  return { ...started, url: `http://127.0.0.1:${port}${BENCH_PREFIX}/items` };
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const us = (n: number) => (Number.isFinite(n) ? `${Math.round(n)} µs` : 'n/a');
const two = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const range = (values: number[], f: (n: number) => string) =>
  values.length > 1 ? `${f(Math.min(...values))}–${f(Math.max(...values))}` : '';

/** Moves a running process and all its threads to other CPUs (the one-connection rows). */
function repin(pids: number[], cpu: string): void {
  for (const pid of pids) spawnSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' });
}

/**
 * `--profile`: the full chain and the bare proxy under the same load (warm-up, then --seconds) with `--cpu-prof`,
 * then the self time of each summed by area and function, in % of busy time and µs per request.
 */
async function profile(upstream: string, header: string): Promise<void> {
  const dir = join(WORK, `profiles-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const flags = (name: string) => ['--cpu-prof', `--cpu-prof-dir=${join(dir, name)}`];
  const barePort = await freePort();
  const bare = await startPinned('1', [
    ...node,
    ...flags('bare'),
    'bench/bare-proxy.mjs',
    String(barePort),
    upstream,
  ]);
  const mem = await gateway({ upstream, credentials: 1000, limiter: 'memory', flags: flags('gateway') });
  const served = new Map<string, { requests: number; fromUs: number; toUs: number }>();
  const nowUs = () => Number(process.hrtime.bigint() / 1000n);
  for (const [name, target] of [
    ['bare', { url: `http://127.0.0.1:${barePort}${BENCH_PREFIX}/items`, pids: bare.pids }],
    ['gateway', { url: mem.url, header, pids: mem.pids }],
  ] as const) {
    wrk(target.url, wrkOptions(target, WARMUP_SECONDS));
    const before = cpuTicks(target.pids);
    const fromUs = nowUs();
    const r = wrk(target.url, wrkOptions(target, args.seconds));
    const toUs = nowUs();
    const cpu = ((cpuTicks(target.pids) - before) * 1e6) / CLOCK_TICKS / r.requests;
    console.log(
      `${name}: ${fmt(r.rps)} req/s, CPU ${cpu.toFixed(1)} µs/req under load${r.non2xx + r.errors ? `, non-2xx/errors ${r.non2xx + r.errors}` : ''}`,
    );
    served.set(name, { requests: r.requests, fromUs, toUs });
  }
  await stop(bare.child);
  await stop(mem.child);
  const summaries = new Map<string, ReturnType<typeof summariseProfile>>();
  for (const name of ['bare', 'gateway']) {
    const files = existsSync(join(dir, name)) ? readdirSync(join(dir, name)) : [];
    if (files.length !== 1) {
      console.error(`bench: expected one profile for ${name} in ${join(dir, name)}, found ${files.length}`);
      continue;
    }
    // only the samples of the measured run (not the start, not the warm-up): µs per request of its requests
    const run = served.get(name)!;
    const summary = summariseProfile(join(dir, name, files[0]!), run.requests, 25, run);
    summaries.set(name, summary);
    console.log(`\n${summary.text}`);
  }
  const g = summaries.get('gateway');
  const b = summaries.get('bare');
  if (!g || !b) return;
  // where the full chain's extra microseconds go: self time per request, gateway minus bare proxy
  const perRequest = (s: typeof g, name: string) => s.busyUs / served.get(name)!.requests;
  console.log(
    `\nfull chain − bare proxy: ${(perRequest(g, 'gateway') - perRequest(b, 'bare')).toFixed(1)} µs of busy CPU per request`,
  );
  for (const kind of ['areas', 'functions'] as const) {
    const base = new Map(b[kind].map((x) => [x.name, x.us / served.get('bare')!.requests]));
    const diffs = g[kind]
      .map((x) => ({ name: x.name, us: x.us / served.get('gateway')!.requests - (base.get(x.name) ?? 0) }))
      .sort((x, y) => y.us - x.us)
      .slice(0, 20);
    console.log(`by ${kind === 'areas' ? 'area' : 'function'} (µs per request, gateway − bare):`);
    for (const d of diffs) console.log(`  ${d.us.toFixed(2).padStart(6)}  ${d.name}`);
  }
}

async function main(): Promise<void> {
  const missing = ['nginx', 'wrk', 'taskset', 'redis-cli'].filter((t) => !has(t));
  if (missing.includes('wrk') || missing.includes('taskset')) {
    console.error(
      `bench: missing ${missing.join(', ')}. Install them: apt-get install -y nginx wrk util-linux redis-server`,
    );
    process.exit(2);
  }
  const redisUrl = missing.includes('redis-cli') ? null : await startRedis();
  if (missing.includes('nginx'))
    console.error('bench: nginx is missing (apt-get install -y nginx); its rows are skipped.');
  if (redisUrl === null)
    console.error(
      'bench: no redis-server to start and no Redis on 127.0.0.1:6379; the Redis rows are skipped.',
    );

  const rows: Row[] = [];
  const log = (name: string, runs: WrkResult[], note?: string) => {
    rows.push({ name, runs, note });
    const bad = runs.reduce((s, r) => s + r.non2xx + r.errors, 0);
    console.log(
      `${name.padEnd(52)} ${fmt(rpsOf(runs)).padStart(8)} req/s  p50 ${us(p50Of(runs)).padStart(9)}  p99 ${us(median(runs.map((r) => r.p99us))).padStart(9)}  [${runs.map((r) => fmt(r.rps)).join(', ')}]${Number.isFinite(cpuOf(runs)) ? `  CPU ${cpuOf(runs).toFixed(1)} µs/req` : ''}${bad ? `  non-2xx/errors ${bad}` : ''}${note ? `  ${note}` : ''}`,
    );
  };

  // the upstream: nginx answering a small JSON body (cheap, so it is not the bottleneck); Node otherwise
  const upstreamPort = await freePort();
  if (!missing.includes('nginx')) {
    await startNginx(
      '0',
      nginxConf(
        join(WORK, 'upstream'),
        `server { listen 127.0.0.1:${upstreamPort}; location / { default_type application/json; return 200 '{"ok":true}'; } }`,
      ),
      upstreamPort,
    );
  } else {
    await startPinned('0', [
      ...node,
      '-e',
      `require('node:http').createServer((q,s)=>s.end('{"ok":true}')).listen(${upstreamPort},'127.0.0.1',()=>console.log('ready ${upstreamPort} '+process.pid))`,
    ]);
  }
  const upstream = `http://127.0.0.1:${upstreamPort}`;
  const header = `${BENCH_KEY_HEADER}: ${benchKey(0)}`;
  console.log(
    `wrk -t1 -c${args.connections} -d${args.seconds}s, ${args.rounds} interleaved rounds after a ${WARMUP_SECONDS} s warm-up each; wrk + upstream on CPU 0, proxies on CPU 1\n`,
  );

  if (args.profile) {
    await profile(upstream, header);
    return;
  }
  // the paired modes: the full chain against itself with one setting changed, interleaved, nothing else
  const paired = async (
    label: string,
    a: { name: string; options: Partial<Parameters<typeof gateway>[0]> },
    b: { name: string; options: Partial<Parameters<typeof gateway>[0]> },
    target = '',
  ) => {
    const ga = await gateway({ upstream, credentials: 1000, limiter: 'memory', ...a.options });
    const gb = await gateway({ upstream, credentials: 1000, limiter: 'memory', ...b.options });
    const [aRuns, bRuns] = measureInterleaved([
      { url: ga.url, header, pids: ga.pids },
      { url: gb.url, header, pids: gb.pids },
    ]);
    log(`Trellis full chain, ${a.name}`, aRuns!);
    log(`Trellis full chain, ${b.name}`, bRuns!);
    const r = ratios(aRuns!, bRuns!);
    console.log(
      `\n${label} req/s: ${two(r.median)} [${range(r.each, two)}]${target}; CPU per request ${cpuOf(aRuns!).toFixed(1)} µs against ${cpuOf(bRuns!).toFixed(1)} µs`,
    );
  };
  if (args.insights) {
    // only the two rows of issue 10: what the insights recording costs the full chain
    await paired(
      'insights on / off',
      { name: 'insights recording on', options: {} },
      { name: 'insights recording off', options: { insights: false } },
      ' (target ≥ 0.97)',
    );
    return;
  }
  if (args.flushThread) {
    // only: where the SQLite usage flush runs (both processes on CPU 1, so the thread shares the gateway's core)
    await paired(
      "writer thread / gateway's thread",
      { name: 'usage flush on its writer thread', options: {} },
      { name: "usage flush on the gateway's thread", options: { flushThread: false } },
    );
    return;
  }

  const [direct] = measureInterleaved([{ url: `${upstream}${BENCH_PREFIX}/items` }]);
  log('upstream direct (reference)', direct!);

  let nginxRuns: WrkResult[] | null = null;
  if (!missing.includes('nginx')) {
    const port = await freePort();
    const nginx = await startNginx(
      '1',
      nginxConf(
        join(WORK, 'proxy'),
        `upstream backend { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
      ),
      port,
    );
    nginxRuns = measureInterleaved([{ url: `http://127.0.0.1:${port}${BENCH_PREFIX}/items` }])[0]!;
    log('nginx reverse proxy, 1 worker', nginxRuns);
    await stop(nginx);
  }

  // every process of the compared rows runs for the whole time; only the one under load does any work
  const barePort = await freePort();
  const bare = await startPinned('1', [...node, 'bench/bare-proxy.mjs', String(barePort), upstream]);
  const bareUrl = `http://127.0.0.1:${barePort}${BENCH_PREFIX}/items`;
  const mem = await gateway({ upstream, credentials: 1000, limiter: 'memory' });
  const noInsights = await gateway({ upstream, credentials: 1000, limiter: 'memory', insights: false });
  const b = redisUrl ? await gateway({ upstream, credentials: 1000, limiter: 'batched', redisUrl }) : null;
  const s = redisUrl ? await gateway({ upstream, credentials: 1000, limiter: 'strict', redisUrl }) : null;
  // `trellis start --workers 2` on the embedded defaults: no Redis, the primary holds the counters
  const w = await gateway({ upstream, credentials: 1000, limiter: 'memory', workers: 2, cpu: '0,1' });
  const eg = await expressGateway(upstream);
  const fg = await fastGateway(upstream);

  // full chain vs bare proxy and the peers, the Redis modes and the second process against in-memory
  const main: { name: string; target: Target }[] = [
    { name: 'bare Node proxy (node:http + undici)', target: { url: bareUrl, pids: bare.pids } },
    { name: 'Trellis full chain, in-memory counters', target: { url: mem.url, header, pids: mem.pids } },
    {
      name: 'Trellis full chain, insights recording off',
      target: { url: noInsights.url, header, pids: noInsights.pids },
    },
    {
      name: 'express-gateway 1.16 (key-auth, 2 × rate-limit)',
      target: { url: eg.url, header: eg.header, pids: eg.pids },
    },
    {
      name: 'fast-gateway 3.4 (key check, 2 × express-rate-limit)',
      target: { url: fg.url, header, pids: fg.pids },
    },
    {
      name: 'Trellis, 2 workers, embedded (host counters, CPUs 0-1)',
      target: { url: w.url, header, pids: w.pids },
    },
  ];
  if (b && s)
    main.push(
      { name: 'Trellis, Redis batched', target: { url: b.url, header, pids: b.pids } },
      { name: 'Trellis, Redis strict', target: { url: s.url, header, pids: s.pids } },
    );
  const measured = measureInterleaved(main.map((m) => m.target));
  for (const [i, m] of main.entries()) log(m.name, measured[i]!);
  const [bareRuns, memRuns, noInsightsRuns, egRuns, fgRuns, twoRuns, batchedRuns, strictRuns] = measured;
  await Promise.all([noInsights, b, s, w, eg, fg].map((g) => (g ? stop(g.child) : Promise.resolve())));

  // one connection in flight, usual placement (proxy on CPU 1: four hops between the vCPUs per request)
  const oneConn = (t: Target): Target => ({ ...t, connections: 1 });
  const [crossDirect, crossBare, crossGateway] = measureInterleaved([
    oneConn({ url: `${upstream}${BENCH_PREFIX}/items` }),
    oneConn({ url: bareUrl }),
    oneConn({ url: mem.url, header }),
  ]);
  // one connection in flight, everything on CPU 0: no cross-CPU wake-ups, the proxy's own latency
  repin([...bare.pids, ...mem.pids], '0');
  const [sameDirect, sameBare, sameGateway] = measureInterleaved([
    oneConn({ url: `${upstream}${BENCH_PREFIX}/items` }),
    oneConn({ url: bareUrl }),
    oneConn({ url: mem.url, header }),
  ]);
  repin([...bare.pids, ...mem.pids], '1');
  log('1 connection, all on CPU 0: upstream direct', sameDirect!);
  log('1 connection, all on CPU 0: bare Node proxy', sameBare!);
  log('1 connection, all on CPU 0: Trellis full chain', sameGateway!);
  log('1 connection, proxy on CPU 1: upstream direct', crossDirect!);
  log('1 connection, proxy on CPU 1: bare Node proxy', crossBare!);
  log('1 connection, proxy on CPU 1: Trellis full chain', crossGateway!);
  await stop(bare.child);

  console.log('\nseeding / opening the 1,000,000-credential database (first run takes a while)…');
  const million = await gateway({ upstream, credentials: 1_000_000, limiter: 'memory' });
  const keys1k = keyScript('keys-1k', peerKeys);
  const sample = Array.from({ length: 1000 }, (_, i) => benchKey((i * 997_331) % 1_000_000));
  const [creds1k, creds1m] = measureInterleaved([
    { url: mem.url, script: keys1k },
    { url: million.url, script: keyScript('keys-1m', sample) },
  ]);
  const rss1k = rssMb(mem.pids);
  const rss1m = rssMb(million.pids);
  log('1,000 credentials (1,000 keys in rotation)', creds1k!, `RSS ${rss1k} MB`);
  log('1,000,000 credentials (1,000 keys in rotation)', creds1m!, `RSS ${rss1m} MB`);
  await stop(million.child);
  await stop(mem.child);

  const fullChain = ratios(memRuns!, bareRuns!);
  const insightsCost = ratios(memRuns!, noInsightsRuns!);
  const vsEg = ratios(memRuns!, egRuns!);
  const vsFg = ratios(memRuns!, fgRuns!);
  const batchedRatio = batchedRuns ? ratios(batchedRuns, memRuns!) : null;
  const strictRatio = strictRuns ? ratios(strictRuns, memRuns!) : null;
  const workersRatio = ratios(twoRuns!, memRuns!);
  const addedSame = p50Of(sameGateway!) - p50Of(sameDirect!);
  const addedCross = p50Of(crossGateway!) - p50Of(crossDirect!);
  const credsRatio = ratios(creds1m!, creds1k!);
  /** name, target, value, per-round range, met (null: not measured; 'info': no target, shown for what it says). */
  type TargetRow = [string, string, string, string, boolean | null | 'info'];
  const ratioRow = (
    name: string,
    target: string,
    r: { each: number[]; median: number } | null,
    met: (m: number) => boolean | 'info',
  ): TargetRow => [
    name,
    target,
    r ? two(r.median) : 'n/a',
    r ? range(r.each, two) : '',
    r ? met(r.median) : null,
  ];
  const targets: TargetRow[] = [
    ratioRow('full chain / bare Node proxy', '≥ 0.90', fullChain, (m) => m >= 0.9),
    ratioRow('full chain / express-gateway', '≥ 5.00', vsEg, (m) => m >= 5),
    ratioRow('full chain / fast-gateway', '> 1.00', vsFg, (m) => m > 1),
    ratioRow('Redis batched / in-memory', '≥ 0.90', batchedRatio, (m) => m >= 0.9),
    ratioRow('Redis strict / in-memory', '≥ 0.80', strictRatio, (m) => m >= 0.8),
    ratioRow('1M / 1k credentials req/s', '≥ 0.95', credsRatio, (m) => m >= 0.95),
    ratioRow('insights recording on / off (issue 10)', '≥ 0.97', insightsCost, (m) => m >= 0.97),
    ratioRow(
      '2 workers, embedded / 1 worker, in-memory',
      'what the second process adds',
      workersRatio,
      () => 'info',
    ),
    ['added p50 latency at 1 connection (all on CPU 0)', '≤ 150 µs', us(addedSame), '', addedSame <= 150],
    ['added p50 latency at 1 connection (proxy on CPU 1)', '≤ 150 µs', us(addedCross), '', addedCross <= 150],
  ];
  const verdict = (ok: TargetRow[4], bold: boolean) =>
    ok === null ? 'not measured' : ok === 'info' ? '' : ok ? 'met' : bold ? '**not met**' : 'NOT met';
  console.log('\ntargets (median of the per-round ratios, range in brackets)');
  for (const [name, target, value, spread, ok] of targets)
    console.log(
      `  ${name.padEnd(50)} ${value.padStart(8)} ${spread ? `[${spread}]` : ''}  target ${target.padEnd(9)} ${verdict(ok, false)}`,
    );
  const vsNginx = nginxRuns
    ? `full chain / nginx = ${two(rpsOf(memRuns!) / rpsOf(nginxRuns))}, bare Node proxy / nginx = ${two(rpsOf(bareRuns!) / rpsOf(nginxRuns))}`
    : '';
  if (vsNginx) console.log(`  ${vsNginx}`);
  const cpuLine = `CPU time per request (user + system, median of the rounds): bare Node proxy ${cpuOf(bareRuns!).toFixed(1)} µs, full chain ${cpuOf(memRuns!).toFixed(1)} µs (bare / full chain ${two(cpuOf(bareRuns!) / cpuOf(memRuns!))}), express-gateway ${cpuOf(egRuns!).toFixed(1)} µs, fast-gateway ${cpuOf(fgRuns!).toFixed(1)} µs${strictRuns ? `, Redis strict ${cpuOf(strictRuns).toFixed(1)} µs` : ''}, 2 workers (both workers and the primary) ${cpuOf(twoRuns!).toFixed(1)} µs`;
  console.log(`  ${cpuLine}`);

  if (args.write) {
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    const command = `npm run bench -- --seconds ${args.seconds} --connections ${args.connections} --rounds ${args.rounds}`;
    let notes = '';
    try {
      const old = readFileSync('docs/benchmarks.md', 'utf8');
      const at = old.indexOf(NOTES_MARK);
      if (at !== -1) notes = old.slice(at);
      // the start-up section bench/startup.ts writes (appended at the end, so among the notes) is kept wherever it is
      const startup = /<!-- startup: written by bench\/startup\.ts -->[\s\S]*?<!-- startup: end -->/.exec(
        old,
      );
      if (startup && !notes.includes(startup[0])) notes = `${notes || `${NOTES_MARK}\n`}\n${startup[0]}\n`;
    } catch {
      // first run
    }
    const md = `# Gateway benchmarks

Produced by \`${command}\` (bench/run.ts) on
${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}, load average
before the run ${loadBefore}.

Setup: wrk 1 thread, ${args.connections} connections, 127.0.0.1 only. Every process is warmed up for ${WARMUP_SECONDS} s, then the compared
rows run **interleaved** (A, B, C, A, B, C, …) for ${args.rounds} rounds of ${args.seconds} s; a row gives the median req/s, p50 and p99 of
its rounds and the range of req/s, a ratio is the median of the per-round ratios (rounds next to each other in time).
Pinning: wrk and the upstream (nginx returning an 11-byte JSON body) on CPU 0; nginx-as-proxy, the bare Node proxy
and every one-process Trellis gateway on CPU 1, the same for every compared row; the two-worker gateway floats over
CPUs 0-1, shared with wrk and the upstream. Redis, a redis-server of the bench's own, is on CPU 0. The Trellis rows
run the built code (\`npm run bench\` runs \`npm run build\` first; no TypeScript loader in any measured process),
composed as \`trellis start\` composes it, with the full chain: user key in a header (SHA-256, credential cache), a
mapping rule, two limits (minute, month) checked and counted, rate-limit headers, secret token and forwarded
headers, usage recorded and flushed to SQLite at the defaults (the journal every 250 ms, the tables every 5 s),
Prometheus metrics. The two-worker row is \`trellis start --workers 2\` on the embedded defaults: no Redis, the
cluster primary holds the counters of both workers (its CPU time is counted in the row). The bare Node proxy is node:http plus the gateway's own undici relay
with no policy (one pass over the request headers), so the first ratio is the cost of the policies.
The peers get the same upstream, keys (1,000, one per application) and limits (per minute and per month, counted
per application, never reached): **express-gateway** 1.16.11 (its last release) with its key-auth policy (the key
in the same header; its keys are \`keyId:keySecret\`, so its key i is the bench key i, a colon and a secret) and
two rate-limit policies keyed by consumer, in-process emulated Redis (its default), http-proxy with keep-alive;
**fast-gateway** 3.4.7 (5.x does not install from the registry here: it needs a fast-proxy-lite release that is
not there) on restana with a key check (the same header, a \`Map\` of the same keys) and two express-rate-limit 8
middlewares (per minute; the "month" one with the longest window its memory store accepts, ≈ 24.9 days), draft-8
RateLimit headers.

| setup | req/s (median) | range | p50 | p99 | proxy CPU per request | note |
| --- | ---: | ---: | ---: | ---: | ---: | --- |
${rows
  .map(({ name, runs, note }) => {
    const bad = runs.reduce((sum, r) => sum + r.non2xx + r.errors, 0);
    return `| ${name} | ${fmt(rpsOf(runs))} | ${range(
      runs.map((r) => r.rps),
      fmt,
    )} | ${us(p50Of(runs))} | ${us(median(runs.map((r) => r.p99us)))} | ${Number.isFinite(cpuOf(runs)) ? `${cpuOf(runs).toFixed(1)} µs` : ''} | ${[
      note,
      bad ? `non-2xx or socket errors: ${bad}` : '',
    ]
      .filter(Boolean)
      .join('; ')} |`;
  })
  .join('\n')}

## Against the targets of issues 3 and 14

| measure | result | per round | target | |
| --- | ---: | ---: | --- | --- |
${targets.map(([name, target, value, spread, ok]) => `| ${name} | ${value} | ${spread} | ${target} | ${verdict(ok, true)} |`).join('\n')}

${cpuLine}.
${vsNginx ? `\nFor scale: ${vsNginx}.\n` : ''}
Gateway memory (RSS after the run): ${rss1k} MB with 1,000 credentials, ${rss1m} MB with 1,000,000 (credentials
are looked up on demand and cached, never loaded whole).

${notes || `${NOTES_MARK}\n`}`;
    mkdirSync('docs', { recursive: true });
    writeFileSync('docs/benchmarks.md', md);
    console.log('\nwrote docs/benchmarks.md');
  }
}

const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const child of children) await stop(child);
  });
