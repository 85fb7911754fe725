/**
 * A gateway in a process of its own, configured like `trellis start` from the environment (so the usage flush
 * interval is the default unless TRELLIS_USAGE_FLUSH_MS says otherwise), for the usage-on-kill-9 measurement
 * (`scripts/usage-kill9.ts`) and its test. `node --import tsx scripts/usage-kill9-gateway.ts <upstream url>`.
 * Seeds the bench service (GET /bench/items, key `benchKey(0)` in X-User-Key) and prints
 * `ready <port> <usageFlushMs>` once it listens.
 */
import { loadConfig } from '../src/config/index.js';
import { createGateway } from '../src/gateway/index.js';
import { migrateToLatest, openStore } from '../src/store/index.js';
import { seedBench } from '../bench/seed.store.js';

async function main(): Promise<void> {
  const upstream = process.argv[2];
  if (!upstream) throw new Error('usage: usage-kill9-gateway.ts <upstream url>');
  const config = loadConfig(process.env, { host: '127.0.0.1', redisUrl: '', logLevel: 'warn' });
  const store = openStore(config.databaseUrl);
  await migrateToLatest(store.db);
  await seedBench(store.db, { upstream, credentials: 1, limiterMode: 'batched' });
  const gateway = createGateway({ config, store });
  const address = await gateway.listen(0, '127.0.0.1');
  process.stdout.write(`ready ${address.port} ${config.usageFlushMs}\n`);
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
