/** A webhook worker process for bench/webhooks.ts (real clock, loopback allowed); settings from the environment. */
import { systemClock } from '../src/kernel/index.js';
import { createSealer } from '../src/oauth/index.js';
import { createOutboundClient } from '../src/outbound/index.js';
import { openStore } from '../src/store/index.js';
import { createWebhookWorker } from '../src/webhooks/index.js';
import { listenForOutboxWrites } from '../src/webhooks/pg-wake.js';

const store = openStore(process.env.TRELLIS_DATABASE_URL ?? '', { poolSize: 10 });
const worker = createWebhookWorker({
  db: store.db,
  clock: systemClock,
  sealer: createSealer(process.env.TRELLIS_OAUTH_KEY_SECRET ?? ''),
  sender: createOutboundClient({ allowHosts: ['127.0.0.1'] }),
  options: {
    pollMs: Number(process.env.BENCH_POLL_MS ?? 250),
    ...(process.env.BENCH_DELIVERY_BATCH && { deliveryBatch: Number(process.env.BENCH_DELIVERY_BATCH) }),
  },
});
// as `trellis worker` on PostgreSQL without Redis: woken by the outbox writes' pg_notify (BENCH_LISTEN=0: poll only)
if (process.env.TRELLIS_DATABASE_URL?.startsWith('postgres') && process.env.BENCH_LISTEN !== '0') {
  const wake = listenForOutboxWrites({
    url: process.env.TRELLIS_DATABASE_URL,
    onNotify: () => worker.nudge(),
    logger: { warn: () => {}, info: () => {} },
  });
  await wake.ready;
}
process.on('message', (m: unknown) => {
  const type = (m as { type?: string }).type;
  if (type === 'go') worker.start();
  // stops after the round in progress, then says so
  if (type === 'pause')
    void worker.stop().then(() => process.send?.({ type: 'paused', cpu: process.cpuUsage() }));
});
process.send?.({ type: 'ready' });
// a profiled worker (--cpu-prof) writes its profile on a normal exit
process.on('SIGTERM', () => process.exit(0));
