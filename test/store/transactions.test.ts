/**
 * Transactions of several processes on one database (`trellis start --workers N`, `trellis apply` while
 * `trellis start` runs, the usage writer thread): each process reads then writes in its transactions, as every
 * operation does, and none may fail. On a SQLite file a transaction that read and then found another process
 * writing was refused at once (SQLITE_BUSY: `busy_timeout` cannot help a transaction whose snapshot is older than
 * the lock it asks for); SQLite transactions now begin IMMEDIATE and queue for the write lock instead.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Store, migrateToLatest, openStore } from '../../src/store/index.js';
import { dialects, freshDatabaseUrl } from '../support/stores.js';
import { nextMessage } from '../support/child-message.js';

const childEntry = join(import.meta.dirname, 'transactions-child.ts');
const PROCESSES = 3;
const CHANGES = 150;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

async function writerProcess(url: string): Promise<ChildProcess> {
  const child = fork(childEntry, {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, TRELLIS_DATABASE_URL: url },
    stdio: 'inherit',
  });
  children.push(child);
  await nextMessage(child, 'test:ready', 60_000);
  return child;
}

describe.each(dialects)('transactions of several processes at once (%s)', { timeout: 120_000 }, (dialect) => {
  let url = '';
  let drop: () => Promise<void> = async () => {};
  let dir: string | null = null;
  let store: Store;
  beforeAll(async () => {
    if (dialect === 'sqlite') {
      // several connections need a file between them
      dir = mkdtempSync(join(tmpdir(), 'trellis-transactions-'));
      url = `sqlite:${join(dir, 'db.sqlite')}`;
    } else ({ url, drop } = await freshDatabaseUrl('postgres'));
    store = openStore(url, { poolSize: 2 });
    await migrateToLatest(store.db);
  });
  afterAll(async () => {
    await store?.destroy();
    await drop();
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  });

  it('each reading then writing: none fails, every change is written', async () => {
    const writers = await Promise.all(Array.from({ length: PROCESSES }, () => writerProcess(url)));
    const ran = await Promise.all(
      writers.map((child, p) => {
        const answer = nextMessage<{ failures: string[] }>(child, 'test:ran', 60_000);
        child.send({ type: 'test:run', n: CHANGES, tag: `p${p}` });
        return answer;
      }),
    );
    expect(ran.flatMap((r) => r.failures)).toEqual([]);
    const { written } = await store.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('written'))
      .where('type', '=', 'test.counted')
      .executeTakeFirstOrThrow();
    expect(Number(written)).toBe(PROCESSES * CHANGES);
  });
});

describe('SQLite transactions and the write lock', () => {
  let dir = '';
  let store: Store;
  /** another connection to the file, which waits for no lock */
  let other: SqliteDatabase.Database;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-write-lock-'));
    const file = join(dir, 'db.sqlite');
    store = openStore(`sqlite:${file}`);
    await migrateToLatest(store.db);
    other = new SqliteDatabase(file, { timeout: 0 });
  });
  afterAll(async () => {
    other?.close();
    await store?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What another connection's `BEGIN IMMEDIATE` meets: the code it fails with, or 'free'. */
  function writeLock(): string {
    try {
      other.exec('begin immediate; rollback');
      return 'free';
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  }

  it('a transaction holds the write lock from its start, before it reads or writes', async () => {
    await store.db.transaction().execute(async () => {
      expect(writeLock()).toBe('SQLITE_BUSY');
    });
    expect(writeLock()).toBe('free');
  });

  it('a read-only transaction reads a snapshot and leaves the lock to writers', async () => {
    await store.db
      .transaction()
      .setAccessMode('read only')
      .execute(async (tx) => {
        await sql`select count(*) from events`.execute(tx);
        expect(writeLock()).toBe('free');
      });
  });
});
