/**
 * Consumer webhooks (issue 9): how fast the provider can publish, and how long an event takes to reach the
 * partner's endpoint. Not a test. On SQLite and PostgreSQL (fresh databases):
 *   - publishes/s through `publishEvent` (schema check, the event and its message in one transaction, an
 *     Idempotency-Key each), one request at a time and 8 at once, one subscribed endpoint;
 *   - publish-to-receipt latency (p50/p99) at low load, the worker in-process and woken by the publish, as in
 *     `trellis start`, delivering to a local receiver.
 * Run: node --import tsx bench/consumer-publish.ts [--publishes 2000] [--latency-events 100]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createAccount, createApplication } from '../src/access/index.js';
import { createPlan, createService } from '../src/catalog/index.js';
import { systemActor } from '../src/events/index.js';
import { systemClock } from '../src/kernel/index.js';
import { createSealer } from '../src/oauth/index.js';
import { createOutboundClient } from '../src/outbound/index.js';
import {
  createConsumerEndpoint,
  createWebhookWorker,
  declareEventType,
  publishEvent,
} from '../src/webhooks/index.js';
import { freshStore } from '../test/support/stores.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const publishes = arg('publishes', 2000);
const latencyEvents = arg('latency-events', 100);

async function run(dialect: 'sqlite' | 'postgres') {
  const store = await freshStore(dialect);
  const clock = systemClock;
  const deps = { db: store.db, clock };
  const arrived = new Map<string, number>();
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = (JSON.parse(Buffer.concat(chunks).toString()) as { eventId: string }).eventId;
      arrived.set(id, performance.now());
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

  const service = await createService(deps, systemActor, {
    name: 'PayMe',
    systemName: 'payme',
    upstreamProduction: 'https://pay.test',
  });
  const plan = await createPlan(deps, systemActor, service.id, { name: 'Free', systemName: 'free' });
  const account = await createAccount(deps, systemActor, { name: 'Merchant' });
  const app = await createApplication(deps, systemActor, {
    accountId: account.id,
    serviceId: service.id,
    planId: plan.id,
    name: 'Shop',
  });
  await declareEventType(deps, systemActor, service.id, {
    name: 'paymentrequest.paid',
    description: 'Paid.',
    schema: {
      type: 'object',
      required: ['paymentRequestId', 'amount', 'currency'],
      properties: {
        paymentRequestId: { type: 'string' },
        amount: { type: 'integer', minimum: 1 },
        currency: { type: 'string', pattern: '^[A-Z]{3}$' },
      },
    },
    example: { paymentRequestId: 'pr_1', amount: 1, currency: 'HKD' },
  });
  const sealer = createSealer('bench key secret');
  await createConsumerEndpoint({ ...deps, sealer, allowHosts: ['127.0.0.1'] }, systemActor, app.id, {
    url,
    eventTypes: ['paymentrequest.paid'],
  });
  let n = 0;
  const publishOne = (d = deps) =>
    publishEvent(
      d,
      {
        type: 'paymentrequest.paid',
        applicationId: app.id,
        payload: { paymentRequestId: `pr_${++n}`, amount: 100, currency: 'HKD' },
      },
      `bench-${n}`,
    );

  // throughput: no worker running, so publishing alone is measured
  let started = performance.now();
  for (let i = 0; i < publishes; i++) await publishOne();
  const serial = publishes / ((performance.now() - started) / 1000);
  started = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = 0; i < publishes / 8; i++) await publishOne();
    }),
  );
  const concurrent = publishes / ((performance.now() - started) / 1000);
  await store.db.deleteFrom('webhook_messages' as never).execute();

  // latency: the worker in-process, woken by each publish (as trellis start wires it)
  const outbound = createOutboundClient({ allowHosts: ['127.0.0.1'] });
  const worker = createWebhookWorker({ db: store.db, clock, sealer, sender: outbound });
  worker.start();
  const woken = { ...deps, onCommitted: () => worker.nudge() };
  const latencies: number[] = [];
  for (let i = 0; i < latencyEvents; i++) {
    const at = performance.now();
    const { event } = await publishOne(woken);
    const deadline = Date.now() + 30_000;
    while (!arrived.has(event.id) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    latencies.push((arrived.get(event.id) ?? Number.NaN) - at);
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!;
  await worker.stop();
  await outbound.close();
  receiver.close();
  await store.cleanup();
  console.log(
    `${dialect.padEnd(8)} publishes/s: ${serial.toFixed(0)} one at a time, ${concurrent.toFixed(0)} 8 at once; ` +
      `publish→receipt p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms (${latencyEvents} events)`,
  );
}

await run('sqlite');
await run('postgres');
