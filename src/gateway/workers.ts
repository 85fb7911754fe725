/**
 * N gateway processes on one host (`trellis start --workers N`), sharing the listening port through `node:cluster`.
 * Counters must then live in Redis: with in-memory counters each process would count on its own and a limit of
 * L would let up to N × L through, so `startGatewayWorkers` refuses N > 1 without `config.redisUrl` unless told
 * otherwise. The database must be one every process can open (PostgreSQL, or an SQLite file, not `:memory:`).
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.js';
import type { GatewayOptions } from './gateway.js';
import type { GatewayLogger } from './logger.js';

/** What the primary tells a worker process to run. */
export interface WorkerStartMessage {
  type: 'trellis:gateway:start';
  config: Config;
  options: GatewayOptions;
}

export interface WorkerReadyMessage {
  type: 'trellis:gateway:ready';
  port: number;
}

export interface GatewayWorkers {
  /** The workers' pids. */
  readonly pids: number[];
  /** The port the workers share (resolved when `config.gatewayPort` is 0). */
  readonly port: number;
  /** Asks every worker to finish its requests and flush its usage, then waits for them to exit. */
  close(): Promise<void>;
}

export interface StartWorkersOptions {
  config: Config;
  logger?: GatewayLogger;
  options?: GatewayOptions;
  /** Allow N > 1 with in-memory counters (each process then enforces limits on its own). */
  allowPerProcessLimits?: boolean;
}

export function isWorkerReady(message: unknown): message is WorkerReadyMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'trellis:gateway:ready'
  );
}

/**
 * Forks `n` gateway processes that listen on `config.gatewayPort`. Call it from the primary process only.
 * @example const workers = await startGatewayWorkers(2, { config }); … await workers.close();
 */
export async function startGatewayWorkers(
  n: number,
  startOptions: StartWorkersOptions,
): Promise<GatewayWorkers> {
  const { config } = startOptions;
  if (n > 1 && !config.redisUrl && !startOptions.allowPerProcessLimits) {
    throw new Error(
      `${n} gateway processes need shared counters: set TRELLIS_REDIS_URL, or limits would be enforced per process (up to ${n}× each limit).`,
    );
  }
  if (n > 1 && /^sqlite:(:memory:)?$/.test(config.databaseUrl)) {
    throw new Error(
      'Several gateway processes cannot share an in-memory SQLite database; use a file or PostgreSQL.',
    );
  }
  const entry = fileURLToPath(
    new URL(`./worker-process${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
  );
  // the operating system spreads connections over the workers: cheaper than the primary handing them out
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({
    exec: entry,
    execArgv: entry.endsWith('.ts') ? ['--import', 'tsx'] : [],
    silent: false,
  });
  const workers: Worker[] = [];
  const ready: Promise<number>[] = [];
  for (let i = 0; i < n; i++) {
    const worker = cluster.fork();
    workers.push(worker);
    ready.push(
      new Promise<number>((resolve, reject) => {
        worker.on('message', (message: unknown) => {
          if (isWorkerReady(message)) resolve(message.port);
          else if (
            typeof message === 'object' &&
            message !== null &&
            (message as { type?: unknown }).type === 'trellis:gateway:online'
          ) {
            const start: WorkerStartMessage = {
              type: 'trellis:gateway:start',
              config,
              options: startOptions.options ?? {},
            };
            worker.send(start);
          }
        });
        worker.once('exit', (code) =>
          reject(new Error(`gateway worker ${worker.process.pid} exited with ${code}`)),
        );
      }),
    );
  }
  const ports = await Promise.all(ready);
  let closing = false;
  for (const worker of workers) {
    worker.on('exit', (code, signal) => {
      if (!closing)
        startOptions.logger?.error({ pid: worker.process.pid, code, signal }, 'gateway: worker exited');
    });
  }
  return {
    pids: workers.map((w) => w.process.pid ?? 0),
    port: ports[0] ?? config.gatewayPort,
    async close(): Promise<void> {
      closing = true;
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              w.once('exit', () => resolve());
              w.send({ type: 'trellis:gateway:stop' });
              setTimeout(() => w.kill('SIGKILL'), 15_000).unref();
            }),
        ),
      );
    },
  };
}
