/**
 * N gateway processes on one host (`trellis start --workers N`), sharing the listening port through `node:cluster`.
 * The processes must count on shared counters, or a limit of L would let up to N × L through: with
 * `TRELLIS_REDIS_URL` they share Redis (across hosts too); without it the primary holds the counters of every worker
 * (`HostLimiter` over the cluster's IPC channels, in-memory counters started from recorded usage), so a single host
 * uses all its cores on the embedded defaults with exact limits. The database must be one every process can open
 * (PostgreSQL, or an SQLite file, not `:memory:`).
 * Each worker composes its gateway with `composeGatewayRole` (`roles.ts`), as `trellis start` does in one process.
 * Forking processes is the CLI's business, so this lives here rather than in `gateway/`.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.js';
import {
  type GatewayLogger,
  type GatewayOptions,
  MemoryLimiter,
  serveHostCounters,
  usageSeed,
} from '../gateway/index.js';
import type { Store } from '../store/index.js';

/** What the primary tells a worker process to run. */
export interface WorkerStartMessage {
  type: 'trellis:gateway:start';
  config: Config;
  options: GatewayOptions;
  /** Count through the primary (`HostLimiter`): there is no Redis to share counters in. */
  hostCounters: boolean;
}

export interface WorkerReadyMessage {
  type: 'trellis:gateway:ready';
  port: number;
}

export interface GatewayWorkers {
  /** The pids of the workers running now (a worker that died is replaced). */
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
  /**
   * The primary's store, from which the counters it holds for its workers (no Redis) start after a restart
   * (recorded usage). Without it they start from zero.
   */
  store?: Store;
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
  if (n > 1 && /^sqlite:(:memory:)?$/.test(config.databaseUrl)) {
    throw new Error(
      'Several gateway processes cannot share an in-memory SQLite database; use a file or PostgreSQL.',
    );
  }
  const entry = fileURLToPath(
    new URL(`./gateway-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
  );
  // the operating system spreads connections over the workers: cheaper than the primary handing them out
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({
    exec: entry,
    execArgv: entry.endsWith('.ts') ? ['--import', 'tsx'] : [],
    silent: false,
  });
  const log = startOptions.logger;
  const options = startOptions.options ?? {};
  // without Redis, this process holds the counters every worker counts on (they outlive a worker that dies)
  const hostCounters = config.redisUrl
    ? null
    : new MemoryLimiter(startOptions.store ? { seed: usageSeed(startOptions.store.db) } : {});
  const workers = new Set<Worker>();
  let closing = false;
  /**
   * A message to a worker that has just died fails (EPIPE, or "Channel closed" once its channel is known closed);
   * without a callback the failure is an 'error' event nobody listens to, an uncaught exception in the primary.
   * Its exit is what tells the primary, and the primary waits for that, or replaces it.
   */
  const ignoreSendError = (): void => {};

  /** Forks one worker; resolves with its port once it listens, rejects if it exits first. */
  const fork = (workerConfig: Config): { worker: Worker; ready: Promise<number> } => {
    const worker = cluster.fork();
    workers.add(worker);
    if (hostCounters) serveHostCounters(worker, hostCounters);
    const ready = new Promise<number>((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (isWorkerReady(message)) resolve(message.port);
        else if (
          typeof message === 'object' &&
          message !== null &&
          (message as { type?: unknown }).type === 'trellis:gateway:online'
        ) {
          const start: WorkerStartMessage = {
            type: 'trellis:gateway:start',
            config: workerConfig,
            options,
            hostCounters: hostCounters !== null,
          };
          worker.send(start, undefined, undefined, ignoreSendError);
        }
      });
      worker.once('exit', (code) => {
        workers.delete(worker);
        reject(new Error(`gateway worker ${worker.process.pid} exited with ${code}`));
      });
    });
    return { worker, ready };
  };

  const first = Array.from({ length: n }, () => fork(config));
  let port: number;
  try {
    port = (await Promise.all(first.map((w) => w.ready)))[0] ?? config.gatewayPort;
  } catch (err) {
    // a failed start leaves no process behind
    closing = true;
    for (const w of workers) w.kill('SIGKILL');
    throw err;
  }

  // A worker that dies (a crash, kill -9, out of memory) is replaced; the ones that live on keep serving meanwhile.
  // The replacement asks for the port exactly as the first workers did, so it shares the listening socket the
  // primary holds for them (asking for the resolved port instead would try to bind it a second time). A worker
  // that keeps dying is replaced more and more slowly, at most every 5 s. A worker that exits cleanly (status 0,
  // after a stop) is not replaced.
  const recentDeaths: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const watch = (worker: Worker): void => {
    worker.once('exit', (code, signal) => {
      if (closing) return;
      if (code === 0 && signal === null) {
        // a clean stop (the worker was told to stop, or got SIGTERM with its process group): not replaced
        log?.info({ pid: worker.process.pid }, 'gateway: worker stopped');
        return;
      }
      const now = Date.now();
      recentDeaths.push(now);
      while (recentDeaths.length > 0 && recentDeaths[0]! < now - 60_000) recentDeaths.shift();
      const delay = Math.min(5000, 250 * 2 ** (recentDeaths.length - 1));
      log?.error(
        { pid: worker.process.pid, code, signal, replaceInMs: delay },
        'gateway: worker exited; starting a new one',
      );
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (closing) return;
        const next = fork(config);
        watch(next.worker);
        next.ready.then(
          () => log?.info({ pid: next.worker.process.pid }, 'gateway: replacement worker listening'),
          () => {},
        );
      }, delay);
      timers.add(timer);
    });
  };
  for (const w of first) watch(w.worker);

  return {
    get pids() {
      return [...workers].map((w) => w.process.pid ?? 0);
    },
    port,
    async close(): Promise<void> {
      closing = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all(
        [...workers].map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              w.once('exit', () => resolve());
              setTimeout(() => w.kill('SIGKILL'), 15_000).unref();
              // a worker that died a moment ago (its exit not seen yet) cannot be told: it is gone already
              if (w.isConnected())
                w.send({ type: 'trellis:gateway:stop' }, undefined, undefined, ignoreSendError);
            }),
        ),
      );
    },
  };
}
