/**
 * The database away between a delivery and its settlement (issue 9): the worker keeps the settlements it could
 * not write and writes them, in order, once the database answers, so a message is not delivered again when its
 * lease ends; and a worker whose rounds keep failing says so once, then once in a while, then once when it
 * recovers. The outage is simulated on both dialects (queries refused as a stopping PostgreSQL refuses them);
 * test/webhooks/settlement-outage.test.ts stops a real PostgreSQL.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Clock, ManualClock, systemClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { type OutboundClient, createOutboundClient } from '../../src/outbound/index.js';
import {
  type WebhookWorker,
  type WebhookWorkerOptions,
  createWebhookWorker,
} from '../../src/webhooks/index.js';
import { dialects } from '../support/stores.js';
import {
  type HooksHarness,
  type Receiver,
  keySecret,
  ok,
  recordingLogger,
  simulatedOutage,
  startHooks,
  startReceiver,
} from './harness.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, condition: () => boolean | Promise<boolean>, withinMs: number) {
  const end = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`not within ${withinMs} ms: ${what}`);
    await pause(20);
  }
}

describe.each(dialects)('settlements while the database is away (%s)', (dialect) => {
  let h: HooksHarness;
  let outbound: OutboundClient;
  const receivers: Receiver[] = [];
  const workers: WebhookWorker[] = [];
  beforeAll(async () => {
    h = await startHooks(dialect);
    outbound = createOutboundClient({ allowHosts: ['127.0.0.1'], timeoutMs: 5000 });
  });
  afterAll(async () => {
    await outbound.close();
    await h.close();
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
    const list = (await h.call('GET', '/webhooks/endpoints?limit=200')).json().data as { id: string }[];
    for (const e of list) await h.call('DELETE', `/webhooks/endpoints/${e.id}`);
    for (const r of receivers.splice(0)) await r.close();
  });

  /** A receiver on the worker's clock with an endpoint for `account.created`. */
  async function endpoint(clock: Clock) {
    const receiver = await startReceiver(clock);
    receivers.push(receiver);
    const created = await ok(h, 'POST', '/webhooks/endpoints', {
      url: receiver.url,
      eventTypes: ['account.created'],
    });
    receiver.secrets.push(created.secret!);
    return { receiver, id: created.id! };
  }

  function worker(clock: Clock, options: WebhookWorkerOptions) {
    const outage = simulatedOutage(h.store.db);
    const logger = recordingLogger();
    const w = createWebhookWorker({
      db: outage.db,
      clock,
      sealer: createSealer(keySecret),
      sender: outbound,
      logger,
      options: { random: () => 0, ...options },
    });
    workers.push(w);
    return { worker: w, outage, logger };
  }

  async function accounts(n: number) {
    for (let i = 0; i < n; i++) await ok(h, 'POST', '/accounts', { name: `Outage ${i}` });
  }

  const ids = (r: Receiver) => r.received.map((x) => String(x.headers['webhook-id']));
  const pending = async () =>
    ((await h.call('GET', '/webhooks/queue')).json() as { pending: number }).pending;

  it('a running worker writes the settlements the database refused once it answers: every message arrives once', {
    timeout: 30_000,
  }, async () => {
    const { receiver, id } = await endpoint(systemClock);
    await accounts(40);
    // a short lease, so that a message left leased would be delivered again within the test
    const {
      worker: w,
      outage,
      logger,
    } = worker(systemClock, {
      leaseMs: 5000,
      deliveryBatch: 8,
      pollMs: 20,
    });
    outage.fail = 'settlements';
    w.start();
    await until('a settlement refused', () => outage.failures > 0, 10_000);
    await pause(1000);
    outage.fail = 'none';
    await until('every message settled', async () => (await pending()) === 0, 15_000);
    // past the lease of the batches that were refused: none is sent again
    await pause(5500);
    expect(receiver.received).toHaveLength(40);
    expect(new Set(ids(receiver)).size).toBe(40);
    const messages = (await ok(h, 'GET', `/webhooks/endpoints/${id}/messages?limit=100`)) as unknown as {
      data: { state: string; attempts: number; attemptLog: unknown[] }[];
    };
    expect(messages.data).toHaveLength(40);
    for (const m of messages.data) {
      expect(m.state).toBe('succeeded');
      expect(m.attempts).toBe(1);
      expect(m.attemptLog).toHaveLength(1);
    }
    const said = logger.lines.map((l) => l.message);
    expect(said.filter((m) => m.includes('keeping them'))).toHaveLength(1);
    expect(said.filter((m) => m.includes('waited for the database'))).toHaveLength(1);
    expect(said.filter((m) => m.includes('before their lease'))).toHaveLength(0);
  });

  it('a round whose settlement was refused fails; the next round writes it first, and nothing is sent twice', async () => {
    const { receiver } = await endpoint(h.clock);
    await accounts(3);
    const { worker: w, outage } = worker(h.clock, {});
    outage.fail = 'settlements';
    await expect(w.tick()).rejects.toThrow(/terminating connection/);
    expect(receiver.received).toHaveLength(3);
    outage.fail = 'none';
    expect((await w.tick()).attempts).toBe(0);
    expect(await pending()).toBe(0);
    h.clock.advance(120_000);
    expect((await w.tick()).attempts).toBe(0);
    expect(receiver.received).toHaveLength(3);
  });

  it('a settlement still refused when its lease ends is dropped with one line, and the message is sent again', async () => {
    const { receiver } = await endpoint(h.clock);
    await accounts(2);
    const { worker: w, outage, logger } = worker(h.clock, { leaseMs: 60_000 });
    outage.fail = 'settlements';
    await expect(w.tick()).rejects.toThrow(/terminating connection/);
    h.clock.advance(60_001);
    outage.fail = 'none';
    // at least once: the lease has ended, so the message is due and delivered again, with the same webhook-id
    expect((await w.tick()).attempts).toBe(2);
    expect(receiver.received).toHaveLength(4);
    expect(new Set(ids(receiver)).size).toBe(2);
    const dropped = logger.lines.filter((l) => l.message.includes('before their lease'));
    expect(dropped).toHaveLength(1);
    expect(dropped[0]!.data).toMatchObject({ messages: 2 });
    expect(await pending()).toBe(0);
  });

  it('rounds failing while the database is away: the first is logged, then one line per 30 s, then the recovery', {
    timeout: 30_000,
  }, async () => {
    const clock = new ManualClock(Date.now());
    const { worker: w, outage, logger } = worker(clock, { pollMs: 5 });
    outage.fail = 'all';
    w.start();
    await until('20 failed rounds', () => outage.failures >= 20, 10_000);
    clock.advance(30_000);
    const before = outage.failures;
    await until('10 more failed rounds', () => outage.failures >= before + 10, 10_000);
    outage.fail = 'none';
    await until(
      'the recovery logged',
      () => logger.lines.some((l) => l.message.includes('succeed again')),
      10_000,
    );
    await w.stop();
    const said = logger.lines.map((l) => l.message);
    expect(said.filter((m) => m.includes('a worker round failed'))).toHaveLength(1);
    const still = logger.lines.filter((l) => l.message.includes('still failing'));
    expect(still).toHaveLength(1);
    expect((still[0]!.data as { rounds: number }).rounds).toBeGreaterThanOrEqual(19);
    expect(said.filter((m) => m.includes('succeed again'))).toHaveLength(1);
    expect(logger.lines).toHaveLength(3);
  });
});
