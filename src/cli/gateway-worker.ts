/**
 * The entry point of a gateway worker process forked by `startGatewayWorkers` (`trellis start --workers N`): it
 * says it is listening for messages, waits for its configuration from the primary (never on the command line,
 * where `ps` would show the database URL), composes its gateway exactly as `trellis start` does in one process
 * (`composeGatewayRole`: token verifier, logger), serves, and stops when the primary says so. Signals are the
 * primary's business.
 */
import type { Logger } from 'pino';
import { HostLimiter } from '../gateway/index.js';
import type { WorkerReadyMessage, WorkerStartMessage } from './gateway-workers.js';
import { composeGatewayRole, createProcessLogger, type GatewayRole, openRoleStore } from './roles.js';

function typeOf(message: unknown): unknown {
  return typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined;
}

function isStart(message: unknown): message is WorkerStartMessage {
  return typeOf(message) === 'trellis:gateway:start';
}

interface Serving {
  role: GatewayRole;
  stop(): Promise<void>;
}

async function serve(message: WorkerStartMessage, logger: Logger): Promise<Serving> {
  const { config, options } = message;
  const store = openRoleStore(config, logger, 4);
  // no Redis: count on the counters the primary holds for every worker of this host
  const limiter = message.hostCounters ? hostLimiter(logger) : undefined;
  try {
    const role = await composeGatewayRole({
      config,
      store,
      logger,
      options,
      ...(limiter && { limiter }),
    });
    const address = await role.gateway.listen(config.gatewayPort, config.host);
    logger.info({ port: address.port }, 'gateway: worker listening');
    const ready: WorkerReadyMessage = { type: 'trellis:gateway:ready', port: address.port };
    process.send?.(ready);
    return {
      role,
      stop: async () => {
        try {
          await role.close();
        } finally {
          await store.destroy();
        }
      },
    };
  } catch (err) {
    await store.destroy().catch(() => {});
    throw err;
  }
}

function hostLimiter(logger: Logger): HostLimiter {
  let lastLogged = 0;
  return new HostLimiter({
    channel: {
      send: (message) => process.send?.(message) ?? false,
      on: (event, listener) => process.on(event, listener),
      off: (event, listener) => process.off(event, listener),
      get connected() {
        return process.connected;
      },
    },
    onFailure: (failure) => {
      // at most one line every 5 s, as the Redis limiter's failures
      if (Date.now() - lastLogged < 5000) return;
      lastLogged = Date.now();
      logger.error(
        { err: failure.error, failureMode: failure.failureMode },
        'gateway: host counters unavailable',
      );
    },
  });
}

function main(): void {
  let running: Promise<Serving> | null = null;
  let logger: Logger | null = null;
  process.on('message', (message: unknown) => {
    if (isStart(message) && running === null) {
      const log = createProcessLogger(message.config, 'gateway');
      logger = log;
      running = serve(message, log);
      running.catch((err: unknown) => {
        log.fatal({ err }, 'gateway: worker failed to start');
        process.exit(1);
      });
    } else if (typeOf(message) === 'trellis:gateway:stop') {
      stop();
    }
  });
  // The primary orders the stop, but a signal sent to the whole process group (systemd's default, Ctrl-C in a
  // terminal) reaches the workers too: stop the same way — requests in flight finish, usage is flushed — instead
  // of dying on the default handler with the last flush interval's usage.
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void (running ?? Promise.resolve(null))
      .then((serving) => serving?.stop())
      .catch((err: unknown) => logger?.error({ err }, 'gateway: worker did not stop cleanly'))
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // messages sent before this listener existed would be lost: ask for the configuration now
  process.send?.({ type: 'trellis:gateway:online' });
}

main();
