/**
 * CPU time per request of the gateway's full chain and of the bare Node proxy, for comparing code changes on a
 * busy machine (where req/s says more about the neighbours than about the code): a fixed number of requests per
 * measurement, the proxy's own CPU time (user + system, /proc) over exactly those requests, the rows interleaved
 * round by round (A, B, C, A, B, C, …) and the median of the rounds. Needs neither wrk nor nginx: the upstream is
 * bench/tiny-upstream.mjs, the client bench/load.mjs, both on CPU 0; every proxy under test on CPU 1.
 *
 *   npm run build && node --import tsx bench/cpu-per-request.ts --requests 20000 --rounds 5
 *   … --variant before=/tmp/a --variant after=.    # gateways built in other trees (their dist/ and bench/)
 *   … --limiter strict --credentials 1000000     # Redis strict counters; the 1M-credential database
 *   … --profile /tmp/profiles                     # --cpu-prof of each process, summarised for the measured runs,
 *                                                 # and each row's self time by function minus the bare proxy's
 *   … --alloc-profile /tmp/allocations            # bytes each gateway allocates per request, garbage included
 *
 * A variant is a directory holding `dist/` (the built code), `bench/gateway-server.mjs`, `bench/bare-proxy.mjs`,
 * `package.json` and `node_modules` (a link to this tree's will do): the gateway built from other sources, measured
 * beside another build. Without --variant, this tree. The bare proxy is the last variant's.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { summariseAllocations } from './allocation-summary.js';
import { summariseProfile } from './profile-summary.js';
import { BENCH_KEY_HEADER, BENCH_PREFIX, benchKey, seedBench } from './seed.store.js';

interface Args {
  requests: number;
  rounds: number;
  concurrency: number;
  credentials: number[];
  limiters: string[];
  variants: { name: string; root: string }[];
  bare: boolean;
  profile: string | null;
  allocProfile: string | null;
}

/** The thread id in a --cpu-prof file name (`CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`); 0: main thread */
function threadOf(file: string): number {
  return Number(file.split('.').at(-3));
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    requests: 20_000,
    rounds: 5,
    concurrency: 64,
    credentials: [],
    limiters: [],
    variants: [],
    bare: true,
    profile: null,
    allocProfile: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--requests') args.requests = Number(argv[++i]);
    else if (a === '--rounds') args.rounds = Number(argv[++i]);
    else if (a === '--concurrency') args.concurrency = Number(argv[++i]);
    else if (a === '--credentials') args.credentials.push(Number(argv[++i]));
    else if (a === '--limiter') args.limiters.push(argv[++i]!);
    else if (a === '--no-bare') args.bare = false;
    else if (a === '--profile') args.profile = resolve(argv[++i]!);
    else if (a === '--alloc-profile') args.allocProfile = resolve(argv[++i]!);
    else if (a === '--variant') {
      const [name, root] = argv[++i]!.split('=');
      args.variants.push({ name: name!, root: resolve(root!) });
    }
  }
  if (args.credentials.length === 0) args.credentials.push(1000);
  if (args.limiters.length === 0) args.limiters.push('memory');
  if (args.variants.length === 0) args.variants.push({ name: 'this tree', root: process.cwd() });
  return args;
}

const args = parseArgs(process.argv.slice(2));
const WORK = '/tmp/trellis-bench-cpu';
mkdirSync(WORK, { recursive: true });
if (args.allocProfile !== null) mkdirSync(args.allocProfile, { recursive: true });
const children: ChildProcess[] = [];
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Starts a process pinned to `cpu` and waits for a line starting with `ready` on its stdout. */
function startPinned(
  cpu: string,
  command: string[],
  cwd?: string,
): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn('taskset', ['-c', cpu, ...command], { stdio: ['pipe', 'pipe', 'inherit'], cwd });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command.join(' ')} did not start`)), 10 * 60_000);
    timer.unref();
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      if (line.startsWith('ready')) resolve({ child, line });
      else reject(new Error(`${command.join(' ')}: ${line}`));
    });
    child.once('exit', (code) => reject(new Error(`${command.join(' ')} exited with ${code}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** utime + stime of a process in clock ticks. */
function cpuTicks(pid: number, thread?: number): number {
  const stat = readFileSync(
    thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`,
    'utf8',
  );
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A proxy under load, with its client. */
interface Row {
  name: string;
  pid: number;
  child: ChildProcess;
  client: { child: ChildProcess; run(n: number): Promise<{ bad: number; ms: number }> };
  cpuUs: number[];
  /** of which the main thread (the rest: the usage writer's thread, V8's and libuv's) */
  mainUs: number[];
  ms: number[];
  profileDir: string | null;
  /** The gateway's allocation profile (`--alloc-profile`), written when it stops. */
  allocFile?: string;
  windows: { fromUs: number; toUs: number; requests: number }[];
}

async function startClient(url: string, keysFile: string | null) {
  const { child } = await startPinned('0', [
    process.execPath,
    'bench/load.mjs',
    JSON.stringify({
      url,
      header: keysFile ? BENCH_KEY_HEADER : undefined,
      keysFile,
      concurrency: args.concurrency,
    }),
  ]);
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  return {
    child,
    run(n: number) {
      return new Promise<{ bad: number; ms: number }>((resolve) => {
        waiting.push((line) => {
          const [, , bad, ms] = line.split(' ');
          resolve({ bad: Number(bad), ms: Number(ms) });
        });
        child.stdin!.write(`run ${n}\n`);
      });
    },
  };
}

/** A database for one variant's gateway, migrated by that variant's own code (its migrations may differ). */
async function seeded(root: string, credentials: number, limiter: string, upstream: string): Promise<string> {
  const tag = root.replace(/[^a-z0-9]+/gi, '_');
  const file = join(WORK, `creds-${credentials}-${limiter === 'strict' ? 'strict' : 'local'}-${tag}.db`);
  const { migrateToLatest, openStore } = (await import(
    pathToFileURL(join(root, 'dist/store/index.js')).href
  )) as typeof import('../src/store/index.js');
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
  return file;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function main(): Promise<void> {
  const up = await startPinned('0', [process.execPath, 'bench/tiny-upstream.mjs']);
  const upstream = `http://127.0.0.1:${up.line.split(' ')[1]}`;
  const keysFile = join(WORK, 'keys.txt');
  writeFileSync(keysFile, Array.from({ length: 1000 }, (_, i) => benchKey(i)).join('\n'));
  const flags = (name: string): { flags: string[]; dir: string | null } => {
    if (args.profile === null) return { flags: [], dir: null };
    const dir = join(args.profile, name.replace(/[^a-z0-9-]+/gi, '_'));
    return { flags: ['--cpu-prof', `--cpu-prof-dir=${dir}`], dir };
  };

  const rows: Row[] = [];
  if (args.bare) {
    const f = flags('bare');
    const root = args.variants[args.variants.length - 1]!.root;
    const port = 0;
    const { child, line } = await startPinned(
      '1',
      [process.execPath, ...f.flags, 'bench/bare-proxy.mjs', String(port), upstream],
      root,
    );
    const bound = Number(line.split(' ')[1]);
    const client = await startClient(`http://127.0.0.1:${bound}${BENCH_PREFIX}/items`, null);
    rows.push({
      name: 'bare Node proxy',
      pid: Number(line.split(' ')[2]),
      child,
      client,
      cpuUs: [],
      mainUs: [],
      ms: [],
      profileDir: f.dir,
      windows: [],
    });
  }
  for (const credentials of args.credentials)
    for (const limiter of args.limiters) {
      for (const v of args.variants) {
        const db = await seeded(v.root, credentials, limiter, upstream);
        const name = `${v.name}: full chain, ${limiter}, ${credentials.toLocaleString('en')} credentials`;
        const f = flags(name);
        const allocFile =
          args.allocProfile === null
            ? undefined
            : join(args.allocProfile, `${name.replace(/[^a-z0-9-]+/gi, '_')}.heapprofile`);
        const o = {
          port: 0,
          upstream,
          db,
          limiter,
          workers: 1,
          redisPrefix: `trellis-bench-cpu:${randomBytes(4).toString('hex')}:`,
          allocProfile: allocFile,
        };
        const { child, line } = await startPinned(
          '1',
          [process.execPath, ...f.flags, 'bench/gateway-server.mjs', JSON.stringify(o)],
          v.root,
        );
        const [, port, pid] = line.split(' ');
        const client = await startClient(`http://127.0.0.1:${port}${BENCH_PREFIX}/items`, keysFile);
        rows.push({
          name,
          pid: Number(pid),
          child,
          client,
          cpuUs: [],
          mainUs: [],
          ms: [],
          profileDir: f.dir,
          allocFile,
          windows: [],
        });
      }
    }

  // warm-up: V8 optimises the hot path, pools and caches fill
  for (const row of rows) await row.client.run(args.requests);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  for (let round = 0; round < args.rounds; round++)
    for (const row of rows) {
      const before = cpuTicks(row.pid);
      const mainBefore = cpuTicks(row.pid, row.pid);
      const fromUs = nowUs();
      const r = await row.client.run(args.requests);
      const toUs = nowUs();
      row.cpuUs.push(((cpuTicks(row.pid) - before) * 1e6) / CLOCK_TICKS / args.requests);
      row.mainUs.push(((cpuTicks(row.pid, row.pid) - mainBefore) * 1e6) / CLOCK_TICKS / args.requests);
      row.ms.push(r.ms);
      row.windows.push({ fromUs, toUs, requests: args.requests });
      if (r.bad > 0) console.error(`${row.name}: ${r.bad} responses not 2xx`);
    }
  console.log(
    `${args.requests} requests per measurement, ${args.concurrency} connections, ${args.rounds} interleaved rounds; load average before ${load}, after ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  const bare = args.bare ? median(rows[0]!.cpuUs) : Number.NaN;
  for (const row of rows) {
    const cpu = median(row.cpuUs);
    const rps = median(row.ms.map((ms) => (args.requests * 1000) / ms));
    console.log(
      `${row.name.padEnd(58)} CPU ${cpu.toFixed(1).padStart(6)} µs/req (main thread ${median(row.mainUs).toFixed(1)})  [${row.cpuUs.map((c) => c.toFixed(1)).join(', ')}]  ${Math.round(rps)} req/s${args.bare && row !== rows[0] ? `  bare/this ${(bare / cpu).toFixed(2)}` : ''}`,
    );
  }
  for (const row of rows) {
    await row.client.child.stdin!.end('quit\n');
    await stop(row.child);
  }
  await stop(up.child);
  for (const row of rows) {
    if (row.allocFile === undefined) continue;
    // the whole life of the process: the warm-up and every measured round
    console.log(`\n${row.name}, allocations over its warm-up and rounds:`);
    console.log(summariseAllocations(row.allocFile, args.requests * (args.rounds + 1)));
  }
  if (args.profile === null) return;
  /** µs per request by function, over the measured rounds: to set each row beside the bare proxy */
  const perFunction = new Map<Row, Map<string, number>>();
  for (const row of rows) {
    const dir = row.profileDir!;
    // one profile per thread: the main thread's (thread id 0 in the file name) and the usage writer thread's,
    // whose functions are named with a "[thread N]" prefix
    const files = (existsSync(dir) ? readdirSync(dir) : []).filter((f) => f.endsWith('.cpuprofile'));
    if (!files.some((f) => threadOf(f) === 0)) {
      console.error(`${row.name}: no main-thread profile in ${dir}`);
      continue;
    }
    // the measured rounds only: the sum over their windows
    let requests = 0;
    const fns = new Map<string, number>();
    const areas = new Map<string, number>();
    let busy = 0;
    for (const w of row.windows) requests += w.requests;
    for (const file of files) {
      const thread = threadOf(file);
      const tag = thread === 0 ? '' : `[thread ${thread}] `;
      for (const w of row.windows) {
        const s = summariseProfile(join(dir, file), w.requests, 1000, w);
        busy += s.busyUs;
        for (const f of s.functions) fns.set(tag + f.name, (fns.get(tag + f.name) ?? 0) + f.us);
        for (const a of s.areas) areas.set(tag + a.name, (areas.get(tag + a.name) ?? 0) + a.us);
      }
    }
    perFunction.set(row, new Map([...fns].map(([name, us]) => [name, us / requests])));
    console.log(`\n${row.name}: ${(busy / requests).toFixed(1)} µs of busy CPU per request in the profile`);
    for (const [title, m] of [
      ['by area', areas],
      ['by function', fns],
    ] as const) {
      console.log(`  ${title}:`);
      for (const [name, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, 30))
        console.log(
          `    ${(us / requests).toFixed(2).padStart(6)} µs  ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${name}`,
        );
    }
  }
  // where a row's extra microseconds over the bare proxy go, function by function (self time)
  const bareFns = args.bare ? perFunction.get(rows[0]!) : undefined;
  if (bareFns === undefined) return;
  for (const row of rows.slice(1)) {
    const fns = perFunction.get(row);
    if (fns === undefined) continue;
    const names = new Set([...fns.keys(), ...bareFns.keys()]);
    const diff = [...names].map((name) => [name, (fns.get(name) ?? 0) - (bareFns.get(name) ?? 0)] as const);
    console.log(`\n${row.name} − bare Node proxy, by function (µs per request):`);
    for (const [name, us] of diff.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, 40))
      console.log(`    ${(us >= 0 ? '+' : '') + us.toFixed(2).padStart(5)} µs  ${name}`);
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    process.exit();
  });
