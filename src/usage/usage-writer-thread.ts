/**
 * The usage writer's thread (see `threadWriter` in usage-writer.ts): its own connection to the SQLite file, one
 * write at a time in the order they arrive, each answered with its id and, when it failed, the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { sql } from 'kysely';
import { openStore } from '../store/index.js';
import { databaseWriter, type WriterAnswer, type WriterRequest } from './usage-writer.js';

const port = parentPort;
if (port === null) throw new Error('usage-writer-thread runs as a worker thread');
const store = openStore((workerData as { databaseUrl: string }).databaseUrl);
/** The thread writes as a writer on the store's connection does, on a connection of its own. */
const writer = databaseWriter(store.db);

function run(request: WriterRequest): Promise<unknown> {
  switch (request.op) {
    case 'appendJournal':
      return writer.appendJournal(request.body, request.writtenAt);
    case 'compactJournal':
      return writer.compactJournal(request.maxEntries);
    case 'addPatterns':
      return writer.addPatterns(request.patterns);
    case 'addCertificationCalls':
      return writer.addCertificationCalls(request.rows);
  }
}

// ready once the connection is open (a failure here shows again, as the error of the first write)
let queue: Promise<void> = sql`select 1`
  .execute(store.db)
  .then(
    () => {},
    () => {},
  )
  .finally(() => port.postMessage({ id: 0 } satisfies WriterAnswer));
port.on('message', (request: WriterRequest) => {
  queue = queue.then(async () => {
    let answer: WriterAnswer;
    try {
      const result = await run(request);
      answer = result === undefined ? { id: request.id } : { id: request.id, result };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      answer = {
        id: request.id,
        error: {
          message: err instanceof Error ? err.message : String(err),
          ...(typeof code === 'string' && { code }),
        },
      };
    }
    port.postMessage(answer);
  });
});
