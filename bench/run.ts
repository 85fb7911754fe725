/**
 * The gateway benchmark (issue 3): an upstream, nginx as a one-worker reverse proxy, a bare Node proxy and the
 * Trellis gateway with the full chain, each loaded by wrk with the same settings, side by side in one run.
 *
 *   npm run bench                     # 10 s per measurement, 3 interleaved rounds
 *   npm run bench -- --seconds 5 --connections 64 --rounds 3 --no-write
 *
 * Pinning (2-core machine): wrk and the upstream share CPU 0; every proxy under test (nginx, the bare Node proxy,
 * each Trellis gateway) runs on CPU 1, the same for every compared row. The two-worker gateway floats over CPUs
 * 0-1, which it then shares with wrk and the upstream. The one-connection latency rows are measured twice: with
 * everything on CPU 0 (one request in flight needs no second CPU, and the figure is then the proxy's own work) and
 * with the usual placement (where each request crosses between the vCPUs four times).
 *
 * The machine is shared and noisy, so the compared rows run interleaved (A, B, C, A, B, C, …) for --rounds rounds,
 * each after its process was warmed up; tables give the median and the range, ratios the median of the per-round
 * ratios. Results go to docs/benchmarks.md unless --no-write (the hand-written notes after NOTES_MARK are kept).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { BENCH_KEY_HEADER, BENCH_PREFIX, benchKey } from './seed.store.js';

interface Args {
  seconds: number;
  connections: number;
  rounds: number;
  write: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seconds: 10, connections: 64, rounds: 3, write: true };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seconds') args.seconds = Number(argv[++i]);
    else if (argv[i] === '--connections') args.connections = Number(argv[++i]);
    else if (argv[i] === '--rounds') args.rounds = Math.max(1, Math.min(20, Number(argv[++i]) || 1));
    else if (argv[i] === '--no-write') args.write = false;
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

const node = [process.execPath, '--import', 'tsx'];

async function gateway(options: {
  upstream: string;
  credentials: number;
  limiter: string;
  workers?: number;
  cpu?: string;
}) {
  const port = await freePort();
  const started = await startPinned(
    options.cpu ?? '1',
    [
      ...node,
      'bench/gateway-server.ts',
      JSON.stringify({
        port,
        upstream: options.upstream,
        // strict keeps its own copy: the seed writes the service's limiter mode, and gateways run side by side
        db: join(WORK, `creds-${options.credentials}${options.limiter === 'strict' ? '-strict' : ''}.db`),
        credentials: options.credentials,
        limiter: options.limiter,
        workers: options.workers ?? 1,
        redisPrefix: `trellis-bench:${randomBytes(4).toString('hex')}:`,
      }),
    ],
    15 * 60_000,
  );
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

async function main(): Promise<void> {
  const missing = ['nginx', 'wrk', 'taskset', 'redis-cli'].filter((t) => !has(t));
  if (missing.includes('wrk') || missing.includes('taskset')) {
    console.error(
      `bench: missing ${missing.join(', ')}. Install them: apt-get install -y nginx wrk util-linux redis-server`,
    );
    process.exit(2);
  }
  const redis =
    !missing.includes('redis-cli') &&
    spawnSync('redis-cli', ['ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG';
  if (missing.includes('nginx'))
    console.error('bench: nginx is missing (apt-get install -y nginx); its rows are skipped.');
  if (!redis) console.error('bench: no Redis on 127.0.0.1:6379; the Redis rows are skipped.');

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
  const bare = await startPinned('1', [...node, 'bench/bare-proxy.ts', String(barePort), upstream]);
  const bareUrl = `http://127.0.0.1:${barePort}${BENCH_PREFIX}/items`;
  const mem = await gateway({ upstream, credentials: 1000, limiter: 'memory' });
  const b = redis ? await gateway({ upstream, credentials: 1000, limiter: 'batched' }) : null;
  const s = redis ? await gateway({ upstream, credentials: 1000, limiter: 'strict' }) : null;
  const w = redis
    ? await gateway({ upstream, credentials: 1000, limiter: 'batched', workers: 2, cpu: '0,1' })
    : null;

  // full chain vs bare proxy, and the Redis modes and the second worker against in-memory / one worker
  const mainTargets: Target[] = [
    { url: bareUrl, pids: bare.pids },
    { url: mem.url, header, pids: mem.pids },
  ];
  if (b && s && w)
    mainTargets.push(
      { url: b.url, header, pids: b.pids },
      { url: s.url, header, pids: s.pids },
      { url: w.url, header, pids: w.pids },
    );
  const [bareRuns, memRuns, batchedRuns, strictRuns, twoRuns] = measureInterleaved(mainTargets);
  log('bare Node proxy (node:http + undici)', bareRuns!);
  log('Trellis full chain, in-memory counters', memRuns!);
  if (batchedRuns && strictRuns && twoRuns) {
    log('Trellis, Redis batched', batchedRuns);
    log('Trellis, Redis strict', strictRuns);
    log('Trellis, 2 workers (Redis batched, CPUs 0-1)', twoRuns);
  }
  await Promise.all([b, s, w].map((g) => (g ? stop(g.child) : Promise.resolve())));

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
  const keys1k = keyScript(
    'keys-1k',
    Array.from({ length: 1000 }, (_, i) => benchKey(i)),
  );
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
  const batchedRatio = batchedRuns ? ratios(batchedRuns, memRuns!) : null;
  const strictRatio = strictRuns ? ratios(strictRuns, memRuns!) : null;
  const workersRatio = twoRuns && batchedRuns ? ratios(twoRuns, batchedRuns) : null;
  const addedSame = p50Of(sameGateway!) - p50Of(sameDirect!);
  const addedCross = p50Of(crossGateway!) - p50Of(crossDirect!);
  const credsRatio = ratios(creds1m!, creds1k!);
  type Target3 = [string, string, string, string, boolean | null];
  const targets: Target3[] = [
    [
      'full chain / bare Node proxy',
      '≥ 0.90',
      two(fullChain.median),
      range(fullChain.each, two),
      fullChain.median >= 0.9,
    ],
    [
      'Redis batched / in-memory',
      '≥ 0.90',
      batchedRatio ? two(batchedRatio.median) : 'n/a',
      batchedRatio ? range(batchedRatio.each, two) : '',
      batchedRatio ? batchedRatio.median >= 0.9 : null,
    ],
    [
      'Redis strict / in-memory',
      '≥ 0.75',
      strictRatio ? two(strictRatio.median) : 'n/a',
      strictRatio ? range(strictRatio.each, two) : '',
      strictRatio ? strictRatio.median >= 0.75 : null,
    ],
    [
      '2 workers / 1 worker (batched)',
      '≥ 1.50',
      workersRatio ? two(workersRatio.median) : 'n/a',
      workersRatio ? range(workersRatio.each, two) : '',
      workersRatio ? workersRatio.median >= 1.5 : null,
    ],
    ['added p50 latency at 1 connection (all on CPU 0)', '≤ 150 µs', us(addedSame), '', addedSame <= 150],
    ['added p50 latency at 1 connection (proxy on CPU 1)', '≤ 150 µs', us(addedCross), '', addedCross <= 150],
    [
      '1M / 1k credentials req/s',
      '≥ 0.95',
      two(credsRatio.median),
      range(credsRatio.each, two),
      credsRatio.median >= 0.95,
    ],
  ];
  console.log('\ntargets (median of the per-round ratios, range in brackets)');
  for (const [name, target, value, spread, ok] of targets)
    console.log(
      `  ${name.padEnd(50)} ${value.padStart(8)} ${spread ? `[${spread}]` : ''}  target ${target.padEnd(9)} ${ok === null ? 'not measured' : ok ? 'met' : 'NOT met'}`,
    );
  const vsNginx = nginxRuns
    ? `full chain / nginx = ${two(rpsOf(memRuns!) / rpsOf(nginxRuns))}, bare Node proxy / nginx = ${two(rpsOf(bareRuns!) / rpsOf(nginxRuns))}`
    : '';
  if (vsNginx) console.log(`  ${vsNginx}`);
  const cpuLine = `CPU time per request (user + system, median of the rounds): bare Node proxy ${cpuOf(bareRuns!).toFixed(1)} µs, full chain ${cpuOf(memRuns!).toFixed(1)} µs (bare / full chain ${two(cpuOf(bareRuns!) / cpuOf(memRuns!))})${strictRuns ? `, Redis strict ${cpuOf(strictRuns).toFixed(1)} µs` : ''}${twoRuns ? `, 2 workers ${cpuOf(twoRuns).toFixed(1)} µs` : ''}`;
  console.log(`  ${cpuLine}`);

  if (args.write) {
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    const command = `npm run bench -- --seconds ${args.seconds} --connections ${args.connections} --rounds ${args.rounds}`;
    let notes = '';
    try {
      const old = readFileSync('docs/benchmarks.md', 'utf8');
      const at = old.indexOf(NOTES_MARK);
      if (at !== -1) notes = old.slice(at);
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
CPUs 0-1, shared with wrk and the upstream. Redis is the host's shared redis-server (not pinned). The Trellis rows
run the full chain: user key in a header (SHA-256, credential cache), a mapping rule, two limits (minute, month)
checked and counted, rate-limit headers, secret token and forwarded headers, usage recorded and flushed to SQLite
every second, Prometheus metrics. The bare Node proxy is node:http plus the gateway's own undici relay with no
policy (one pass over the request headers), so the first ratio is the cost of the policies. Both run under the
tsx loader.

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

## Against the targets of issue 3

| measure | result | per round | target | |
| --- | ---: | ---: | --- | --- |
${targets.map(([name, target, value, spread, ok]) => `| ${name} | ${value} | ${spread} | ${target} | ${ok === null ? 'not measured' : ok ? 'met' : '**not met**'} |`).join('\n')}

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
