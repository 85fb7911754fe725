/**
 * A worker in a process of its own on PostgreSQL, without Redis, is woken by the `pg_notify` every outbox write
 * commits with, instead of waiting for its poll; and when its listening connection is killed it reconnects and is
 * woken again (issue 9, src/webhooks/pg-wake.ts). PostgreSQL only: on SQLite the one process wakes its worker.
 */
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/access/index.js';
import { composeWorkerRole, type WorkerRole } from '../../src/cli/roles.js';
import { loadConfig } from '../../src/config/index.js';
import { OUTBOX_CHANNEL, systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createEndpoint } from '../../src/webhooks/index.js';
import type { TestStore } from '../support/stores.js';
import {
  type HooksHarness,
  type Receiver,
  keySecret,
  ok,
  payMePartner,
  startHooks,
  startReceiver,
} from './harness.js';

/** So slow that only the notification can explain a delivery inside the test's timeout. */
const pollMs = 60_000;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a worker on PostgreSQL without Redis', () => {
  let h: HooksHarness;
  let store: TestStore;
  let receiver: Receiver;
  let role: WorkerRole;
  let admin: pg.Client;
  let endpointId = '';
  const logLines: string[] = [];

  /** The backend pid of the worker's listening session, once it listens. */
  async function listenerPid(other?: number): Promise<number> {
    for (;;) {
      const { rows } = await admin.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = current_database() and query = $1 and pid <> $2`,
        [`LISTEN ${OUTBOX_CHANNEL}`, other ?? 0],
      );
      if (rows[0]) return rows[0].pid;
      await pause(20);
    }
  }

  const accountsReceived = () => receiver.received.filter((r) => r.payload.type === 'account.created').length;

  /** Waits until `arrived()`; fails if it has not within a sixth of the poll since `since`. */
  async function awaitDelivery(since: number, arrived: () => boolean): Promise<void> {
    while (!arrived()) {
      expect(Date.now() - since, 'delivered long before the 60 s poll').toBeLessThan(pollMs / 6);
      await pause(10);
    }
  }

  async function createAndAwaitDelivery(name: string): Promise<void> {
    const before = accountsReceived();
    await createAccount({ db: store.db, clock: systemClock }, systemActor, { name });
    await awaitDelivery(Date.now(), () => accountsReceived() > before);
  }

  beforeAll(async () => {
    // the management API without the in-process wake trellis start adds: only the notification wakes the worker
    h = await startHooks('postgres');
    store = h.store;
    admin = new pg.Client({ connectionString: store.url });
    await admin.connect();
    receiver = await startReceiver(systemClock);
    const config = loadConfig(
      {},
      { databaseUrl: store.url, oauthKeySecret: keySecret, outboundAllowHosts: ['127.0.0.1'] },
    );
    role = await composeWorkerRole({
      config,
      store,
      logger: pino({ level: 'info' }, { write: (line: string) => logLines.push(line) }),
      options: { pollMs },
    });
    const endpoint = await createEndpoint(
      { db: store.db, clock: systemClock, sealer: createSealer(keySecret), allowHosts: ['127.0.0.1'] },
      systemActor,
      { url: receiver.url, eventTypes: ['account.created'] },
    );
    receiver.secrets.push(endpoint.secret);
    endpointId = endpoint.id;
    role.worker.start();
  });
  afterAll(async () => {
    await role.close();
    await admin.end();
    await receiver.close();
    await h.close();
  });

  it('delivers a created account at once, not after its 60 s poll', { timeout: 20_000 }, async () => {
    await listenerPid();
    // let the rounds of the start and of the first connect end, so the worker waits on its poll
    await pause(300);
    await createAndAwaitDelivery('Woken');
  });

  it('reconnects after its listening connection is killed, logs that once, and is woken again', {
    timeout: 20_000,
  }, async () => {
    const first = await listenerPid();
    await admin.query('select pg_terminate_backend($1)', [first]);
    await listenerPid(first);
    await pause(300);
    await createAndAwaitDelivery('Woken again');
    const lost = logLines.filter((l) => l.includes('lost its LISTEN connection'));
    expect(lost).toHaveLength(1);
    expect(logLines.filter((l) => l.includes('listens for outbox writes again'))).toHaveLength(1);
  });

  it('delivers a published event at once, not after its 60 s poll', { timeout: 20_000 }, async () => {
    // a receiver of its own: the harness's receiver verifies with one endpoint's secret
    const partner = await startReceiver(systemClock);
    try {
      const { appId, secret } = await payMePartner(h, partner.url);
      partner.secrets.push(secret);
      // the rounds the set-up's own events woke end first
      await pause(300);
      await ok(h, 'POST', '/events', {
        type: 'paymentrequest.paid',
        applicationId: appId,
        payload: { n: 1 },
      });
      await awaitDelivery(Date.now(), () =>
        partner.received.some((r) => r.payload.type === 'paymentrequest.paid'),
      );
    } finally {
      await partner.close();
    }
  });
  it('delivers a test message and a replay at once, not after its 60 s poll', {
    timeout: 20_000,
  }, async () => {
    const tests = () => receiver.received.filter((r) => r.payload.type === 'webhook_endpoint.test');
    await pause(300);
    const sent = await ok(h, 'POST', `/webhooks/endpoints/${endpointId}/test`);
    await awaitDelivery(Date.now(), () => tests().length === 1);
    expect(tests()[0]!.headers['webhook-id']).toBe(sent.messageId);
    await pause(300);
    await ok(h, 'POST', `/webhooks/endpoints/${endpointId}/messages/${sent.messageId}/replay`);
    await awaitDelivery(Date.now(), () => tests().length === 2);
    expect(tests()[1]!.headers['webhook-id']).toBe(sent.messageId);
  });
});
