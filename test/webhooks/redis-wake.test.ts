/**
 * A worker in a process of its own, with Redis configured, is woken by the change notification every commit
 * publishes (the one gateways listen to), instead of waiting for its poll (issue 9).
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/access/index.js';
import { composeWorkerRole, type WorkerRole } from '../../src/cli/roles.js';
import { loadConfig } from '../../src/config/index.js';
import { systemActor } from '../../src/events/index.js';
import { publishChange } from '../../src/gateway/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createEndpoint } from '../../src/webhooks/index.js';
import { type TestStore, freshStore } from '../support/stores.js';
import { type Receiver, keySecret, startReceiver } from './harness.js';

describe('a worker with Redis', () => {
  let store: TestStore;
  let receiver: Receiver;
  let role: WorkerRole;
  const publisher = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
  beforeAll(async () => {
    store = await freshStore('postgres');
    receiver = await startReceiver(systemClock);
    const config = loadConfig(
      {},
      {
        databaseUrl: store.url,
        redisUrl: 'redis://127.0.0.1:6379',
        oauthKeySecret: keySecret,
        outboundAllowHosts: ['127.0.0.1'],
      },
    );
    // a poll so slow that only the notification can explain a quick delivery
    role = await composeWorkerRole({
      config,
      store,
      logger: pino({ level: 'silent' }),
      options: { pollMs: 60_000 },
    });
    const endpoint = await createEndpoint(
      { db: store.db, clock: systemClock, sealer: createSealer(keySecret), allowHosts: ['127.0.0.1'] },
      systemActor,
      { url: receiver.url, eventTypes: ['account.created'] },
    );
    receiver.secrets.push(endpoint.secret);
    role.worker.start();
    await publisher.connect();
  });
  afterAll(async () => {
    await role.close();
    publisher.disconnect();
    await receiver.close();
    await store.cleanup();
  });

  it('delivers within a second of the notification, not after its 60 s poll', async () => {
    // let the first round (and its idle wait) begin, and the subscription settle
    await new Promise((r) => setTimeout(r, 300));
    await createAccount({ db: store.db, clock: systemClock }, systemActor, { name: 'Woken' });
    const published = Date.now();
    await publishChange(publisher);
    while (!receiver.received.some((r) => r.payload.type === 'account.created')) {
      expect(Date.now() - published, 'delivered within a second').toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 10));
    }
  });
});
