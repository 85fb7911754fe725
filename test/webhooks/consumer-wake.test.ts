/**
 * A publish wakes the worker even when it lands while a round is running (issue 9: publish-to-receipt latency).
 * The nudge arrives during a round that finds nothing due; the worker must run another round at once instead of
 * sleeping its poll (here 60 s). Driven by a clock that nudges from inside the round, so the timing is exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../src/access/index.js';
import { adminApiModules } from '../../src/cli/compose.js';
import { buildControlApp } from '../../src/control/index.js';
import { systemActor } from '../../src/events/index.js';
import type { Clock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createOutboundClient } from '../../src/outbound/index.js';
import { type WebhookWorker, createWebhookWorker } from '../../src/webhooks/index.js';
import {
  type HooksHarness,
  type Receiver,
  keySecret,
  ok,
  payMePartner,
  startHooks,
  startReceiver,
} from './harness.js';

describe('a nudge during a round', () => {
  let h: HooksHarness;
  let receiver: Receiver;
  let worker: WebhookWorker | undefined;
  const outbound = createOutboundClient({ allowHosts: ['127.0.0.1'], timeoutMs: 10_000 });
  beforeAll(async () => {
    h = await startHooks('sqlite');
    receiver = await startReceiver(h.clock);
  });
  afterAll(async () => {
    await worker?.stop();
    await receiver.close();
    await outbound.close();
    await h.close();
  });

  it('is not lost: the message published meanwhile is delivered without waiting for the poll', async () => {
    const { appId, secret } = await payMePartner(h, receiver.url);
    receiver.secrets.push(secret);
    // the message is due at T; the worker's round runs at T - 1 s and finds nothing due
    const due = h.clock.now();
    await ok(h, 'POST', '/events', { type: 'paymentrequest.paid', applicationId: appId, payload: { n: 1 } });
    h.clock.set(due - 1000);
    let armed = false;
    const clock: Clock = {
      now() {
        const t = h.clock.now();
        if (armed) {
          // inside the round, before its claim: the publish's commit nudges now, then time reaches T
          armed = false;
          worker?.nudge();
          h.clock.set(due + 1);
        }
        return t;
      },
    };
    worker = createWebhookWorker({
      db: h.store.db,
      clock,
      sealer: createSealer(keySecret),
      sender: outbound,
      options: { pollMs: 60_000, random: () => 0 },
    });
    await worker.tick(); // the outbox's own events, fanned out to no one
    armed = true;
    worker.start();
    const deadline = Date.now() + 20_000;
    while (receiver.received.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(receiver.received.map((r) => r.payload.type)).toEqual(['paymentrequest.paid']);
  });

  it('is what a publish through the management API sends, once its event and messages are committed', async () => {
    // the control app as trellis start wires it: every commit nudges the in-process worker
    const nudges: number[] = [];
    const app = await buildControlApp(
      {
        config: h.config,
        store: h.store,
        clock: h.clock,
        onCommitted: () => {
          nudges.push(Date.now());
        },
      },
      { adminApi: adminApiModules },
    );
    await app.ready();
    try {
      const token = (
        await createAdminToken({ db: h.store.db, clock: h.clock }, systemActor, {
          name: 'p',
          scope: 'read_write',
        })
      ).token;
      const apps = (await h.call('GET', '/webhooks/consumer-endpoints')).json().data as {
        applicationId: string;
      }[];
      const publish = () =>
        app.inject({
          method: 'POST',
          url: '/admin/api/events',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'idempotency-key': 'wake-2',
          },
          payload: JSON.stringify({
            type: 'paymentrequest.paid',
            applicationId: apps[0]!.applicationId,
            payload: { n: 2 },
          }),
        });
      const before = nudges.length;
      expect((await publish()).statusCode).toBe(201);
      expect(nudges.length).toBe(before + 1);
      // a repeat makes nothing new and wakes no one
      expect((await publish()).statusCode).toBe(200);
      expect(nudges.length).toBe(before + 1);
    } finally {
      await app.close();
    }
  });
});
