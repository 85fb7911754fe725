/**
 * A webhook worker process for the kill -9 test: the real clock, a short lease, small batches, the guarded
 * outbound client with loopback allowed. Reads TRELLIS_DATABASE_URL and the key secret from its environment.
 */
import { systemClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createOutboundClient } from '../../src/outbound/index.js';
import { openStore } from '../../src/store/index.js';
import { createWebhookWorker } from '../../src/webhooks/index.js';

const store = openStore(process.env.TRELLIS_DATABASE_URL ?? '', { poolSize: 4 });
const worker = createWebhookWorker({
  db: store.db,
  clock: systemClock,
  sealer: createSealer(process.env.TRELLIS_OAUTH_KEY_SECRET ?? ''),
  sender: createOutboundClient({ allowHosts: ['127.0.0.1'], timeoutMs: 2000 }),
  options: { leaseMs: 1500, pollMs: 20, fanOutBatch: 20, deliveryBatch: 8 },
});
worker.start();
process.send?.({ type: 'started', workerId: worker.workerId });
