/**
 * The entry point of a gateway worker process forked by `startGatewayWorkers`: it says it is listening for
 * messages, waits for its configuration from the primary (never on the command line, where `ps` would show the
 * database URL), serves, and stops when the primary says so. Signals are the primary's business (the CLI).
 */
import { openStore } from '../store/index.js';
import { createGateway, type Gateway } from './gateway.js';
import type { WorkerReadyMessage, WorkerStartMessage } from './workers.js';

function typeOf(message: unknown): unknown {
  return typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined;
}

function isStart(message: unknown): message is WorkerStartMessage {
  return typeOf(message) === 'trellis:gateway:start';
}

async function serve(message: WorkerStartMessage): Promise<Gateway> {
  const { config, options } = message;
  const store = openStore(config.databaseUrl, { poolSize: 4 });
  const gateway = createGateway({ config, store, options });
  const address = await gateway.listen(config.gatewayPort, config.host);
  const ready: WorkerReadyMessage = { type: 'trellis:gateway:ready', port: address.port };
  process.send?.(ready);
  return gateway;
}

function main(): void {
  let running: Promise<Gateway> | null = null;
  process.on('message', (message: unknown) => {
    if (isStart(message) && running === null) {
      running = serve(message);
      running.catch((err: unknown) => {
        process.stderr.write(
          `gateway worker failed to start: ${err instanceof Error ? err.stack : String(err)}\n`,
        );
        process.exit(1);
      });
    } else if (typeOf(message) === 'trellis:gateway:stop') {
      void (running ?? Promise.resolve(null))
        .then((gateway) => gateway?.close())
        .finally(() => process.exit(0));
    }
  });
  // messages sent before this listener existed would be lost: ask for the configuration now
  process.send?.({ type: 'trellis:gateway:online' });
}

main();
