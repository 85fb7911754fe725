// Starts a worker thread's TypeScript source under tsx (tests, and running from the sources): Node 20 applies
// neither `--import tsx` in a worker's execArgv nor the parent's loader to a worker whose script is `.ts`. The
// built package runs the compiled `.js` directly and never loads this file.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.script);
