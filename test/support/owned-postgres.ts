/**
 * A PostgreSQL server the test owns (initdb in a temporary directory, its own port below 32768), so a test can
 * stop and start the database under running processes. PostgreSQL refuses to run as root: when the tests run as
 * root, the server runs as the `postgres` user (`runuser`).
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error(`No PostgreSQL server binaries under ${root}.`);
  return join(root, versions[0]!, 'bin');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function freeLowPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await portFree(port)) return port;
  }
  throw new Error('No free port below 32768 for a test PostgreSQL.');
}

export interface OwnedPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/trellis` */
  url: string;
  port: number;
  /** Stops the server (`pg_ctl stop -m fast`: every connection is closed). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Terminates every backend connected to the `trellis` database; resolves with how many. */
  terminateAll(): Promise<number>;
  /**
   * Freezes the server (SIGSTOP to the postmaster and its children): connections stay open and nothing answers,
   * as when the database host hangs or the network between drops packets. `thaw()` lets it go on.
   */
  freeze(): void;
  thaw(): void;
  /** Stops the server and removes its files. */
  destroy(): Promise<void>;
}

/** initdb + start (about a second). */
export async function startOwnedPostgres(): Promise<OwnedPostgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-pg-'));
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
    chmodSync(dir, 0o700);
  }
  const exec = (file: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, file), ...args]) : run(join(bin, file), args);
  const data = join(dir, 'data');
  await exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freeLowPort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const start = async () => {
    await exec('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
  };
  const stop = async () => {
    await exec('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
  };
  await start();
  const admin = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const query = async (sql: string, params: unknown[] = []) => {
    const client = new pg.Client({ connectionString: admin });
    client.on('error', () => {});
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end();
    }
  };
  await query('create database trellis');
  /** The server's processes: the postmaster (first line of postmaster.pid) and its children. */
  const processes = (): number[] => {
    const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const children = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so read after the last ')'
          const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
        } catch {
          return false;
        }
      })
      .map(Number);
    return [postmaster, ...children];
  };
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of processes()) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone meanwhile
      }
    }
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/trellis`,
    port,
    stop,
    start,
    terminateAll: async () =>
      (
        await query(
          'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
          ['trellis'],
        )
      ).rowCount ?? 0,
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    destroy: async () => {
      signal('SIGCONT');
      await stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
