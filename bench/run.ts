/**
 * The gateway benchmark (issue 3): an upstream, nginx as a one-worker reverse proxy, a bare Node proxy and the
 * Trellis gateway with the full chain, each loaded by wrk with the same settings, side by side in one run.
 *
 *   npm run bench                     # 10 s per measurement
 *   npm run bench -- --seconds 5 --connections 64 --no-write
 *
 * Pinning (2-core machine): wrk and the upstream share CPU 0; the proxy under test has CPU 1 to itself
 * (the two-worker run gets both CPUs, which it then shares with wrk and the upstream).
 * Results go to docs/benchmarks.md unless --no-write.
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
  write: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seconds: 10, connections: 64, write: true };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seconds') args.seconds = Number(argv[++i]);
    else if (argv[i] === '--connections') args.connections = Number(argv[++i]);
    else if (argv[i] === '--no-write') args.write = false;
  }
  return args;
}

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
  options: { connections: number; seconds: number; header?: string; script?: string },
): WrkResult {
  const cmd = ['-c', '0', 'wrk', '-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--latency'];
  if (options.header) cmd.push('-H', options.header);
  if (options.script) cmd.push('-s', options.script);
  cmd.push(url);
  const out = spawnSync('taskset', cmd, { encoding: 'utf8' }).stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const p50 = /\n\s+50%\s+(\S+)/.exec(out)?.[1] ?? '';
  const p99 = /\n\s+99%\s+(\S+)/.exec(out)?.[1] ?? '';
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = socketErrors ? socketErrors.slice(1).reduce((s, v) => s + Number(v), 0) : 0;
  return { rps, p50us: toMicros(p50), p99us: toMicros(p99), non2xx, errors };
}

/** Warms up, then measures. */
function measure(
  url: string,
  options: { connections?: number; header?: string; script?: string } = {},
): WrkResult {
  const connections = options.connections ?? args.connections;
  // 5 s: enough for V8 to optimize the hot path and for pools to fill
  wrk(url, { ...options, connections, seconds: 5 });
  return wrk(url, { ...options, connections, seconds: args.seconds });
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
        db: join(WORK, `creds-${options.credentials}.db`),
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
const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : 'n/a');

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

  const rows: { name: string; r: WrkResult; note?: string }[] = [];
  const log = (name: string, r: WrkResult, note?: string) => {
    rows.push({ name, r, note });
    console.log(
      `${name.padEnd(44)} ${fmt(r.rps).padStart(8)} req/s  p50 ${us(r.p50us).padStart(9)}  p99 ${us(r.p99us).padStart(9)}${r.non2xx || r.errors ? `  non-2xx ${r.non2xx} errors ${r.errors}` : ''}${note ? `  ${note}` : ''}`,
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
    `wrk -t1 -c${args.connections} -d${args.seconds}s (after a 5 s warm-up); wrk + upstream on CPU 0, proxy on CPU 1\n`,
  );

  const direct = measure(`${upstream}${BENCH_PREFIX}/items`);
  log('upstream direct (reference)', direct);

  let nginxResult: WrkResult | null = null;
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
    nginxResult = measure(`http://127.0.0.1:${port}${BENCH_PREFIX}/items`);
    log('nginx reverse proxy, 1 worker', nginxResult);
    await stop(nginx);
  }

  const barePort = await freePort();
  const bare = await startPinned('1', [...node, 'bench/bare-proxy.ts', String(barePort), upstream]);
  const bareUrl = `http://127.0.0.1:${barePort}${BENCH_PREFIX}/items`;
  const bareResult = measure(bareUrl);
  log('bare Node proxy (node:http + undici)', bareResult);

  const mem = await gateway({ upstream, credentials: 1000, limiter: 'memory' });
  const memResult = measure(mem.url, { header });
  log('Trellis full chain, in-memory counters', memResult);
  const oneConnBare = measure(bareUrl, { connections: 1 });
  const oneConnGateway = measure(mem.url, { connections: 1, header });
  const oneConnDirect = measure(`${upstream}${BENCH_PREFIX}/items`, { connections: 1 });
  log('1 connection: upstream direct', oneConnDirect);
  log('1 connection: bare Node proxy', oneConnBare);
  log('1 connection: Trellis full chain', oneConnGateway);
  const keys1k = keyScript(
    'keys-1k',
    Array.from({ length: 1000 }, (_, i) => benchKey(i)),
  );
  const creds1k = measure(mem.url, { script: keys1k });
  const rss1k = rssMb(mem.pids);
  log('1,000 credentials (1,000 keys in rotation)', creds1k, `RSS ${rss1k} MB`);
  await stop(mem.child);

  let batched: WrkResult | null = null;
  let strict: WrkResult | null = null;
  let twoWorkers: WrkResult | null = null;
  if (redis) {
    const b = await gateway({ upstream, credentials: 1000, limiter: 'batched' });
    batched = measure(b.url, { header });
    log('Trellis, Redis batched', batched);
    await stop(b.child);
    const s = await gateway({ upstream, credentials: 1000, limiter: 'strict' });
    strict = measure(s.url, { header });
    log('Trellis, Redis strict', strict);
    await stop(s.child);
    const w = await gateway({ upstream, credentials: 1000, limiter: 'batched', workers: 2, cpu: '0,1' });
    twoWorkers = measure(w.url, { header });
    log('Trellis, 2 workers (Redis batched, CPUs 0-1)', twoWorkers);
    await stop(w.child);
  }

  console.log('\nseeding / opening the 1,000,000-credential database (first run takes a while)…');
  const million = await gateway({ upstream, credentials: 1_000_000, limiter: 'memory' });
  const sample = Array.from({ length: 1000 }, (_, i) => benchKey((i * 997_331) % 1_000_000));
  const creds1m = measure(million.url, { script: keyScript('keys-1m', sample) });
  const rss1m = rssMb(million.pids);
  log('1,000,000 credentials (1,000 keys in rotation)', creds1m, `RSS ${rss1m} MB`);
  await stop(million.child);
  await stop(bare.child);

  const addedP50 = oneConnGateway.p50us - oneConnDirect.p50us;
  const targets: [string, string, string, boolean | null][] = [
    [
      'full chain / bare Node proxy',
      '≥ 0.90',
      ratio(memResult.rps, bareResult.rps),
      memResult.rps >= 0.9 * bareResult.rps,
    ],
    [
      'Redis batched / in-memory',
      '≥ 0.90',
      batched ? ratio(batched.rps, memResult.rps) : 'n/a',
      batched ? batched.rps >= 0.9 * memResult.rps : null,
    ],
    [
      'Redis strict / in-memory',
      '≥ 0.75',
      strict ? ratio(strict.rps, memResult.rps) : 'n/a',
      strict ? strict.rps >= 0.75 * memResult.rps : null,
    ],
    [
      '2 workers / 1 worker (batched)',
      '≥ 1.50',
      twoWorkers && batched ? ratio(twoWorkers.rps, batched.rps) : 'n/a',
      twoWorkers && batched ? twoWorkers.rps >= 1.5 * batched.rps : null,
    ],
    ['added p50 latency at 1 connection', '≤ 150 µs', us(addedP50), addedP50 <= 150],
    [
      '1M / 1k credentials req/s',
      '≥ 0.95',
      ratio(creds1m.rps, creds1k.rps),
      creds1m.rps >= 0.95 * creds1k.rps,
    ],
  ];
  console.log('\ntargets');
  for (const [name, target, value, ok] of targets)
    console.log(
      `  ${name.padEnd(36)} ${value.padStart(8)}  target ${target.padEnd(9)} ${ok === null ? 'not measured' : ok ? 'met' : 'NOT met'}`,
    );
  if (nginxResult)
    console.log(
      `  full chain / nginx: ${ratio(memResult.rps, nginxResult.rps)}; bare Node / nginx: ${ratio(bareResult.rps, nginxResult.rps)}`,
    );

  if (args.write) {
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    const md = `# Gateway benchmarks

Produced by \`npm run bench -- --seconds ${args.seconds} --connections ${args.connections}\` (bench/run.ts) on
${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}.

Setup: wrk 1 thread, ${args.connections} connections, ${args.seconds} s per row after a 5 s warm-up, 127.0.0.1 only.
wrk and the upstream (nginx returning a 11-byte JSON body) are pinned to CPU 0, the proxy under test to CPU 1
(the two-worker row uses both CPUs, shared with wrk and the upstream). The Trellis rows run the full chain:
user key in a header (SHA-256, credential cache), a mapping rule, two limits (minute, month) checked and
counted, rate-limit headers, secret token and forwarded headers, usage recorded and flushed to SQLite every
second. The bare Node proxy is node:http plus the gateway's own undici relay with no policy, so the first ratio
is the cost of the policies. Redis is the host's shared redis-server (not pinned).

| setup | req/s | p50 | p99 | note |
| --- | ---: | ---: | ---: | --- |
${rows.map(({ name, r, note }) => `| ${name} | ${fmt(r.rps)} | ${us(r.p50us)} | ${us(r.p99us)} | ${[note, r.non2xx || r.errors ? `non-2xx ${r.non2xx}, socket errors ${r.errors}` : ''].filter(Boolean).join('; ')} |`).join('\n')}

## Against the targets of issue 3

| measure | result | target | |
| --- | ---: | --- | --- |
${targets.map(([name, target, value, ok]) => `| ${name} | ${value} | ${target} | ${ok === null ? 'not measured' : ok ? 'met' : '**not met**'} |`).join('\n')}
${nginxResult ? `\nFor scale: full chain / nginx = ${ratio(memResult.rps, nginxResult.rps)}, bare Node proxy / nginx = ${ratio(bareResult.rps, nginxResult.rps)}.\n` : ''}
Gateway memory (RSS after the run): ${rss1k} MB with 1,000 credentials, ${rss1m} MB with 1,000,000 (credentials
are looked up on demand and cached, never loaded whole).
`;
    mkdirSync('docs', { recursive: true });
    writeFileSync('docs/benchmarks.md', md);
    console.log('\nwrote docs/benchmarks.md');
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const child of children) await stop(child);
  });
