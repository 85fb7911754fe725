/**
 * A Trellis gateway for the bench, in its own process: `node --import tsx bench/gateway-server.ts <json>`.
 * Options: { port, upstream, db, credentials, limiter: 'memory'|'batched'|'strict', workers, redisPrefix }.
 * Prints `ready <port>` once it listens.
 */
import { loadConfig } from '../src/config/index.js';
import { createGateway, startGatewayWorkers } from '../src/gateway/index.js';
import { migrateToLatest, openStore } from '../src/store/index.js';
import { seedBench } from './seed.store.js';

interface Options {
  port: number;
  upstream: string;
  db: string;
  credentials: number;
  limiter: 'memory' | 'batched' | 'strict';
  workers: number;
  redisPrefix: string;
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as Options;
  const redisUrl = o.limiter === 'memory' ? '' : 'redis://127.0.0.1:6379';
  const config = loadConfig(
    {},
    {
      databaseUrl: `sqlite:${o.db}`,
      redisUrl,
      gatewayPort: o.port,
      host: '127.0.0.1',
      logLevel: 'warn',
      usageFlushMs: 1000,
    },
  );
  const store = openStore(config.databaseUrl);
  await migrateToLatest(store.db);
  await seedBench(store.db, {
    upstream: o.upstream,
    credentials: o.credentials,
    limiterMode: o.limiter === 'strict' ? 'strict' : 'batched',
  });
  if (o.workers > 1) {
    await store.destroy();
    const workers = await startGatewayWorkers(o.workers, {
      config,
      options: { redisKeyPrefix: o.redisPrefix },
    });
    process.stdout.write(`ready ${workers.port} ${workers.pids.join(',')}\n`);
    process.on('SIGTERM', () => void workers.close().finally(() => process.exit(0)));
    return;
  }
  const gateway = createGateway({ config, store, options: { redisKeyPrefix: o.redisPrefix } });
  const address = await gateway.listen(o.port, '127.0.0.1');
  process.stdout.write(`ready ${address.port} ${process.pid}\n`);
  process.on(
    'SIGTERM',
    () =>
      void gateway
        .close()
        .then(() => store.destroy())
        .finally(() => process.exit(0)),
  );
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
