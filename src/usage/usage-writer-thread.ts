/**
 * The usage writer's thread (see `threadWriter` in usage-writer.ts): its own connection to the SQLite file, one
 * write at a time in the order they arrive, each answered with its id and, when it failed, the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { sql } from 'kysely';
import { openStore } from '../store/index.js';
import { addCertificationCalls } from './certification-calls.js';
import { addUsage, markCredentialsUsed } from './usage.store.js';
import type { WriterAnswer, WriterRequest } from './usage-writer.js';

const port = parentPort;
if (port === null) throw new Error('usage-writer-thread runs as a worker thread');
const store = openStore((workerData as { databaseUrl: string }).databaseUrl);

async function run(request: WriterRequest): Promise<void> {
  switch (request.op) {
    case 'addUsage':
      return addUsage(store.db, request.metricRows, request.callRows, request.patterns);
    case 'markCredentialsUsed':
      return markCredentialsUsed(store.db, request.used);
    case 'addCertificationCalls':
      return addCertificationCalls(store.db, request.rows);
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
      await run(request);
      answer = { id: request.id };
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
