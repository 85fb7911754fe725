/**
 * Start-up time of `trellis start` (issue 14): from spawning the process to "Trellis is running." on its stdout,
 * on an empty database (migrations, the first admin, the demo) and on a populated one (100,000 credentials over
 * 1,000 applications, the demo, already migrated), with the built code (`bin/trellis.js` → dist/) and, for
 * comparison, with the sources under the tsx loader. Writes its section of docs/benchmarks.md.
 *
 *   npm run build && node --import tsx bench/startup.ts [--runs 5] [--no-write]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateToLatest, openStore } from '../src/store/index.js';
import { seedBench } from './seed.store.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg === -1 ? 5 : Math.max(1, Math.min(20, Number(process.argv[runsArg + 1]) || 5));
const WRITE = !process.argv.includes('--no-write');
const START = '<!-- startup: written by bench/startup.ts -->';
const END = '<!-- startup: end -->';
const root = join(import.meta.dirname, '..');

const commands = {
  built: [process.execPath, join(root, 'bin/trellis.js')],
  sources: [process.execPath, '--import', 'tsx', join(root, 'test/support/trellis-source.ts')],
};

/** Milliseconds from spawn to the "running" line; the process is stopped after. Bounded by 60 s. */
function timeStart(command: string[], databaseUrl: string): Promise<number> {
  const started = performance.now();
  const child = spawn(
    command[0]!,
    [
      ...command.slice(1),
      'start',
      '--gateway-port',
      '0',
      '--control-port',
      '0',
      '--database-url',
      databaseUrl,
    ],
    {
      cwd: root,
      env: { ...process.env, TRELLIS_DEMO_UPSTREAM_PORT: '0', TRELLIS_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no start within 60 s:\n${out}`));
    }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!out.includes('Trellis is running.')) return;
      const ms = performance.now() - started;
      clearTimeout(timer);
      child.once('exit', () => resolve(ms));
      child.kill('SIGTERM');
    });
    child.once('exit', (code) => {
      if (!out.includes('Trellis is running.')) {
        clearTimeout(timer);
        reject(new Error(`trellis start exited with ${code}:\n${out}`));
      }
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function populated(dir: string): Promise<string> {
  const url = `sqlite:${join(dir, 'populated.db')}`;
  const store = openStore(url);
  await migrateToLatest(store.db);
  await seedBench(store.db, { upstream: 'http://127.0.0.1:9', credentials: 100_000, limiterMode: 'batched' });
  await store.destroy();
  await timeStart(commands.built, url); // the first start adds the admin and the demo
  return url;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-startup-'));
  try {
    const full = await populated(dir);
    const rows: string[] = [];
    for (const [name, command] of Object.entries(commands)) {
      const empty: number[] = [];
      const seeded: number[] = [];
      // interleaved, so a noisy moment touches both databases alike
      for (let i = 0; i < RUNS; i++) {
        empty.push(await timeStart(command, `sqlite:${join(dir, `empty-${name}-${i}.db`)}`));
        seeded.push(await timeStart(command, full));
      }
      const fmt = (v: number[]) =>
        `${median(v).toFixed(0)} ms | ${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)} ms`;
      const label =
        name === 'built' ? 'built (`bin/trellis.js`, dist/)' : 'sources under tsx (before this change)';
      rows.push(`| ${label} | empty | ${fmt(empty)} |`, `| ${label} | populated | ${fmt(seeded)} |`);
    }
    const section = `${START}
## Start-up time

\`npm run build && node --import tsx bench/startup.ts --runs ${RUNS}\` on ${new Date().toISOString().slice(0, 10)}:
from spawning \`trellis start\` (SQLite file, demo on, ports 0) to "Trellis is running." on its stdout, median
of ${RUNS} runs interleaved. Empty: a new database (migrations, the first admin's argon2 hash, the demo seed).
Populated: 100,000 credentials over 1,000 applications plus the demo, already migrated (credentials are looked up on
demand, so their number does not weigh on the start).

| code | database | median | range |
| --- | --- | ---: | ---: |
${rows.join('\n')}
${END}`;
    console.log(section);
    if (WRITE) {
      const path = join(root, 'docs/benchmarks.md');
      const doc = readFileSync(path, 'utf8');
      const at = doc.indexOf(START);
      const next =
        at === -1
          ? `${doc.trimEnd()}\n\n${section}\n`
          : doc.slice(0, at) + section + doc.slice(doc.indexOf(END) + END.length);
      writeFileSync(path, next);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
