/**
 * Where the usage recorder's flushes go. On PostgreSQL, and on an in-memory SQLite database, the writes run on the
 * store's own connection: PostgreSQL's work is on the server, and a test database has no file another connection
 * could open. On a SQLite file they run on a worker thread with a connection of its own (`threadWriter`):
 * better-sqlite3 is synchronous, so a flush of a thousand applications' rows (10–15 ms) on the gateway's thread
 * would hold every request behind it, and in the benchmark it was the largest cost Trellis adds per request
 * (docs/benchmarks.md).
 * SQLite's WAL lets the two connections share the file; a write waits for the other's (busy_timeout).
 */
import { Worker } from 'node:worker_threads';
import { type Executor, sqliteFile } from '../store/index.js';
import type { PatternBatch } from './call-patterns.js';
import { type CertificationCallRow, addCertificationCalls } from './certification-calls.js';
import {
  type JournalCompaction,
  addPatterns,
  appendUsageJournal,
  compactUsageJournal,
} from './usage.store.js';

export interface UsageWriter {
  /** Appends a flush's sums to the usage journal (usage-journal.ts). */
  appendJournal(body: string, writtenAt: string): Promise<void>;
  /** Moves up to `maxEntries` journal rows into the usage tables. */
  compactJournal(maxEntries: number): Promise<JournalCompaction>;
  /** Adds the insights sums to their tables (directly: they do not go through the journal). */
  addPatterns(patterns: PatternBatch): Promise<void>;
  addCertificationCalls(rows: readonly CertificationCallRow[]): Promise<void>;
  /** Settles once the writer can write (or has failed to start: its writes then fail, and are retried). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** Writes on the given connection (PostgreSQL, in-memory SQLite, a transaction in tests). */
export function databaseWriter(db: Executor): UsageWriter {
  return {
    appendJournal: (body, writtenAt) => appendUsageJournal(db, body, writtenAt),
    compactJournal: (maxEntries) => compactUsageJournal(db, maxEntries),
    addPatterns: (patterns) => addPatterns(db, patterns),
    addCertificationCalls: (rows) => addCertificationCalls(db, rows),
    ready: async () => {},
    close: async () => {},
  };
}

/** A message to the writer thread, and its answer. */
export type WriterRequest =
  | { id: number; op: 'appendJournal'; body: string; writtenAt: string }
  | { id: number; op: 'compactJournal'; maxEntries: number }
  | { id: number; op: 'addPatterns'; patterns: PatternBatch }
  | { id: number; op: 'addCertificationCalls'; rows: readonly CertificationCallRow[] };
/** `id` 0 says the thread has loaded and opened its connection. */
export interface WriterAnswer {
  id: number;
  /** what the write returned (a compaction's counts) */
  result?: unknown;
  error?: { message: string; code?: string };
}
type Payload<R> = R extends WriterRequest ? Omit<R, 'id'> : never;

/** The thread's script: the built JavaScript beside this file, or the TypeScript source started under tsx. */
function threadScript(): { url: URL; script?: string } {
  if (!import.meta.url.endsWith('.ts')) return { url: new URL('./usage-writer-thread.js', import.meta.url) };
  return {
    url: new URL('./source-thread.mjs', import.meta.url),
    script: new URL('./usage-writer-thread.ts', import.meta.url).href,
  };
}

/**
 * Writes on a worker thread holding its own connection to the SQLite file of `databaseUrl`. A write fails (and the
 * recorder keeps its rows for the next flush) when the thread reports an error or dies; the next write starts a new
 * thread. The thread starts with the writer and keeps the process alive only while it loads or writes.
 */
export function threadWriter(databaseUrl: string): UsageWriter {
  let worker: Worker | null = null;
  let nextId = 1;
  const pending = new Map<number, { resolve: (result: unknown) => void; reject: (err: Error) => void }>();

  const failAll = (err: Error) => {
    for (const { reject } of pending.values()) reject(err);
    pending.clear();
  };
  let started: () => void = () => {};
  let ready = Promise.resolve();
  const start = (): Worker => {
    const { url, script } = threadScript();
    const w = new Worker(url, { workerData: { databaseUrl, script } });
    ready = new Promise<void>((resolve) => {
      started = resolve;
    });
    w.on('message', (answer: WriterAnswer) => {
      if (answer.id === 0) {
        if (pending.size === 0) w.unref();
        return started();
      }
      const waiting = pending.get(answer.id);
      if (waiting === undefined) return;
      pending.delete(answer.id);
      if (pending.size === 0) w.unref();
      if (answer.error === undefined) waiting.resolve(answer.result);
      else waiting.reject(Object.assign(new Error(answer.error.message), { code: answer.error.code }));
    });
    w.on('error', (err) => {
      if (worker === w) worker = null;
      started();
      failAll(err);
    });
    w.on('exit', (code) => {
      if (worker === w) worker = null;
      started();
      failAll(new Error(`usage writer thread ended (exit code ${code})`));
    });
    // referenced until it has loaded: a process waiting for `ready()` has nothing else to keep it alive
    return w;
  };
  const send = <T = void>(request: Payload<WriterRequest>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      worker ??= start();
      const id = nextId++;
      pending.set(id, { resolve: resolve as (result: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ ...request, id });
    });

  // started now, not at the first flush: loading the thread's modules takes a while, and the first flush would wait
  worker = start();
  return {
    appendJournal: (body, writtenAt) => send({ op: 'appendJournal', body, writtenAt }),
    compactJournal: (maxEntries) => send<JournalCompaction>({ op: 'compactJournal', maxEntries }),
    addPatterns: (patterns) => send({ op: 'addPatterns', patterns }),
    addCertificationCalls: (rows) =>
      rows.length === 0 ? Promise.resolve() : send({ op: 'addCertificationCalls', rows }),
    ready: () => ready,
    async close() {
      const w = worker;
      worker = null;
      if (w !== null) await w.terminate();
    },
  };
}

/** The writer for a store: a thread for a SQLite file, the store's connection otherwise. */
export function usageWriterFor(db: Executor, databaseUrl: string, useThread: boolean): UsageWriter {
  return useThread && sqliteFile(databaseUrl) ? threadWriter(databaseUrl) : databaseWriter(db);
}
