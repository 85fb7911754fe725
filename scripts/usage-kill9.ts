/**
 * Usage on kill -9, measured: a real gateway process (scripts/usage-kill9-gateway.ts) under bounded load on
 * 127.0.0.1 is killed with SIGKILL during the load; the calls it answered 2xx are compared with the calls recorded
 * in the database (the usage tables and the usage journal). `node --import tsx scripts/usage-kill9.ts [--rounds 5] [--ms 650] [--concurrency 32]
 * [--database postgres://…]` (default: a fresh SQLite file per round). TRELLIS_USAGE_FLUSH_MS is passed on to
 * the gateway. The figures go to docs/reliability.md, "Usage on kill -9".
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import { Agent, request } from 'undici';
import { benchKey } from '../bench/seed.store.js';
import { type Executor, openStore } from '../src/store/index.js';
import { JournalSums } from '../src/usage/usage-journal.js';

/** A flush under way when the process dies is lost with its batch: the time one flush may take, at most. */
export const FLUSH_ALLOWANCE_MS = 100;

const CHILD = fileURLToPath(new URL('./usage-kill9-gateway.ts', import.meta.url));

export interface KillableGateway {
  readonly url: string;
  readonly flushMs: number;
  readonly process: ChildProcess;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
}

/** Starts the gateway process on `databaseUrl`, in front of `upstream`. */
export async function startKillableGateway(
  databaseUrl: string,
  upstream: string,
  env: Record<string, string> = {},
): Promise<KillableGateway> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, upstream], {
    env: { ...process.env, TRELLIS_DATABASE_URL: databaseUrl, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const ready = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('ready '));
      if (line) resolve(line);
    });
    void exited.then(() => reject(new Error(`gateway process exited: ${stderr}`)));
  });
  const [, port, flushMs] = ready.trim().split(' ');
  return {
    url: `http://127.0.0.1:${port}`,
    flushMs: Number(flushMs),
    process: child,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Calls answered 200 by the bench service, as recorded in the database: in the usage tables and in the usage
 * journal rows no compaction has taken yet, read in one transaction (one snapshot: a compaction moving rows from
 * the journal to the tables meanwhile is seen before or after, never half).
 */
export async function recordedIn(db: Executor): Promise<number> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (tx) => {
      const { rows } = await sql<{ n: number | string | null }>`
        select sum(calls) as n from usage_calls where service_id = 'svc_bench' and status = 200`.execute(tx);
      const journal = await sql<{ body: string }>`select body from usage_journal`.execute(tx);
      const sums = new JournalSums();
      for (const { body } of journal.rows) sums.add(body);
      let inJournal = 0;
      for (const r of sums.callRows())
        if (r.service_id === 'svc_bench' && r.status === 200) inJournal += r.calls;
      return Number(rows[0]?.n ?? 0) + inJournal;
    });
}

/** {@link recordedIn} the database of `databaseUrl`. */
export async function recordedCalls(databaseUrl: string): Promise<number> {
  const store = openStore(databaseUrl);
  try {
    return await recordedIn(store.db);
  } finally {
    await store.destroy();
  }
}

/** A tiny upstream answering 200. */
export async function startTinyUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 });
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** One call through the gateway; resolves with the time it was answered 2xx, or null. */
export async function benchCall(url: string, dispatcher?: Agent): Promise<number | null> {
  const res = await request(`${url}/bench/items`, {
    headers: { 'X-User-Key': benchKey(0) },
    ...(dispatcher ? { dispatcher } : {}),
  });
  await res.body.text();
  return res.statusCode >= 200 && res.statusCode < 300 ? performance.now() : null;
}

export interface KillRound {
  answered: number;
  recorded: number;
  lost: number;
  /** Calls per second answered during the load. */
  rate: number;
  /**
   * Calls answered in the last flush interval (plus {@link FLUSH_ALLOWANCE_MS} for the flush under way) before
   * the kill: what the bound allows to be lost.
   */
  inLastInterval: number;
  /** Calls answered in the last `ms` before the kill. */
  inLastBound(ms: number): number;
}

/** Load for `ms` with `concurrency` loops, SIGKILL while it runs, then count. */
export async function killDuringLoad(
  gateway: KillableGateway,
  databaseUrl: string,
  ms: number,
  concurrency: number,
  /** Times of calls answered before the load (warm-up), counted as answered too. */
  earlier: readonly number[] = [],
): Promise<KillRound> {
  const agent = new Agent({ connections: concurrency, pipelining: 1 });
  const acks: number[] = [...earlier];
  let stop = false;
  const start = performance.now();
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stop) {
      const at = await benchCall(gateway.url, agent).catch(() => null);
      if (at !== null && !stop) acks.push(at);
    }
  });
  await new Promise((r) => setTimeout(r, ms));
  const killedAt = performance.now();
  stop = true;
  // answers that arrive after this instant are not counted as answered
  await gateway.kill();
  await Promise.all(loops);
  await agent.close().catch(() => {});
  const answered = acks.filter((t) => t <= killedAt).length;
  const recorded = await recordedCalls(databaseUrl);
  return {
    answered,
    recorded,
    lost: answered - recorded,
    rate: Math.round((answered - earlier.length) / ((killedAt - start) / 1000)),
    inLastInterval: acks.filter((t) => t <= killedAt && t > killedAt - gateway.flushMs - FLUSH_ALLOWANCE_MS)
      .length,
    inLastBound: (bound) => acks.filter((t) => t <= killedAt && t > killedAt - bound).length,
  };
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i === -1 ? fallback : process.argv[i + 1]!;
  };
  const rounds = Number(arg('rounds', '5'));
  const ms = Number(arg('ms', '650'));
  const concurrency = Number(arg('concurrency', '32'));
  const postgres = arg('database', '');
  const upstream = await startTinyUpstream();
  for (let r = 0; r < rounds; r++) {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-kill9-'));
    let databaseUrl = `sqlite:${join(dir, 'trellis.db')}`;
    let dropDb: (() => Promise<void>) | null = null;
    if (postgres) {
      const name = `trellis_kill9_${randomBytes(4).toString('hex')}`;
      const admin = openStore(postgres);
      await sql.raw(`create database ${name}`).execute(admin.db);
      await admin.destroy();
      const u = new URL(postgres);
      u.pathname = `/${name}`;
      databaseUrl = u.toString();
      dropDb = async () => {
        const a = openStore(postgres);
        await sql.raw(`drop database if exists ${name} with (force)`).execute(a.db);
        await a.destroy();
      };
    }
    const gateway = await startKillableGateway(databaseUrl, upstream.url);
    // warm up (credential cache, JIT) before the measured load; these calls count as answered too
    const warm: number[] = [];
    for (let i = 0; i < 50; i++) {
      const at = await benchCall(gateway.url);
      if (at !== null) warm.push(at);
    }
    const round = await killDuringLoad(gateway, databaseUrl, ms, concurrency, warm);
    process.stdout.write(
      `${JSON.stringify({ round: r + 1, flushMs: gateway.flushMs, ...round, lostPct: Number(((100 * round.lost) / round.answered).toFixed(2)), boundHolds: round.lost <= round.inLastInterval })}\n`,
    );
    await dropDb?.();
    rmSync(dir, { recursive: true, force: true });
  }
  upstream.server.close();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  void main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
