// A Trellis gateway for the bench, in its own process, running the BUILT code (dist/, `npm run build`) as
// `trellis start` does — no TypeScript loader: `node bench/gateway-server.mjs <json>`.
// Options: { port, upstream, db, limiter: 'memory'|'batched'|'strict', workers, redisUrl, redisPrefix, allocProfile }.
// The database is seeded beforehand by bench/run.ts (bench/seed.store.ts); this process only migrates (a no-op then)
// and serves.
// One process: composeGatewayRole, as `trellis start`. Several: startGatewayWorkers, as `trellis start --workers N`
// (without Redis the primary holds the counters of its workers). Prints `ready <port> <pids>` once it listens.
import { composeGatewayRole, createProcessLogger } from '../dist/cli/roles.js';
import { startGatewayWorkers } from '../dist/cli/gateway-workers.js';
import { loadConfig } from '../dist/config/index.js';
import { migrateToLatest, openStore } from '../dist/store/index.js';

const o = JSON.parse(process.argv[2] ?? '{}');
// `allocProfile: <file>`: every allocation sampled (garbage included) from here to SIGTERM, written to <file>
// (bench/cpu-per-request.ts --alloc-profile; bench/allocation-summary.ts reads it)
const allocations = o.allocProfile ? await sampleAllocations() : null;

async function sampleAllocations() {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(o.allocProfile, JSON.stringify(profile));
  };
}
const stopSampling = () => (allocations ? allocations() : Promise.resolve());
const config = loadConfig(
  {},
  {
    databaseUrl: `sqlite:${o.db}`,
    redisUrl: o.limiter === 'memory' ? '' : (o.redisUrl ?? 'redis://127.0.0.1:6379'),
    gatewayPort: o.port,
    host: '127.0.0.1',
    logLevel: 'warn',
    // usage flush (250 ms) and compaction (5 s) at their defaults, as `trellis start` has them
    // `insights: false` turns the gateway's insights recording off (the on / off rows of issue 10)
    insightsRecording: o.insights !== false,
    // `flushThread: false` writes the SQLite usage flush on the gateway's own thread (bench --flush-thread)
    usageFlushThread: o.flushThread !== false,
  },
);
const options = { redisKeyPrefix: o.redisPrefix };
const store = openStore(config.databaseUrl);
await migrateToLatest(store.db);
const logger = createProcessLogger(config, 'gateway');

if ((o.workers ?? 1) > 1) {
  // the store stays open in the primary: the counters it holds for its workers start from recorded usage
  const workers = await startGatewayWorkers(o.workers, { config, logger, options, store });
  process.stdout.write(`ready ${workers.port} ${[process.pid, ...workers.pids].join(',')}\n`);
  process.on('SIGTERM', () => {
    stopSampling()
      .then(() => workers.close())
      .then(() => store.destroy())
      .finally(() => process.exit(0));
  });
} else {
  const role = await composeGatewayRole({ config, store, logger, options });
  const address = await role.gateway.listen(o.port, '127.0.0.1');
  process.stdout.write(`ready ${address.port} ${process.pid}\n`);
  process.on('SIGTERM', () => {
    stopSampling()
      .then(() => role.close())
      .then(() => store.destroy())
      .finally(() => process.exit(0));
  });
}
