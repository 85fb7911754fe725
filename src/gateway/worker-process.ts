/**
 * The entry point of a gateway worker process forked by `startGatewayWorkers`: it waits for its configuration
 * from the primary, serves, and stops when the primary says so. Signals are the primary's business (the CLI).
 */
import type { Config } from '../config/index.js';
import { systemClock } from '../kernel/index.js';
import { OAuthTokenVerifier, issuerOf } from '../oauth/index.js';
import { openStore } from '../store/index.js';
import { createGateway, type Gateway } from './gateway.js';
import type { WorkerReadyMessage, WorkerStartMessage } from './workers.js';

function isStart(message: unknown): message is WorkerStartMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'trellis:gateway:start'
  );
}

let gateway: Gateway | null = null;

process.on('message', (message: unknown) => {
  if (isStart(message)) {
    void run(message.config, message).catch((err: unknown) => {
      process.stderr.write(
        `gateway worker failed to start: ${err instanceof Error ? err.stack : String(err)}\n`,
      );
      process.exit(1);
    });
  } else if (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'trellis:gateway:stop'
  ) {
    void (gateway?.close() ?? Promise.resolve()).finally(() => process.exit(0));
  }
});

async function run(config: Config, message: WorkerStartMessage): Promise<void> {
  const store = openStore(config.databaseUrl, { poolSize: 4 });
  const tokenVerifier = await OAuthTokenVerifier.create({
    db: store.db,
    clock: systemClock,
    issuer: issuerOf(config.publicUrl),
  });
  gateway = createGateway({ config, store, tokenVerifier, options: message.options });
  const address = await gateway.listen(config.gatewayPort, config.host);
  const ready: WorkerReadyMessage = { type: 'trellis:gateway:ready', port: address.port };
  process.send?.(ready);
}
