/**
 * The worker's endpoint health with Redis (issue 9): its Redis client queues nothing while disconnected, so it
 * must be connected before the first round asks it; a worker started with Redis up says nothing about Redis
 * being away, one pointed where nothing listens still says so.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/kernel/index.js';
import { composeWorkerHealth } from '../../src/webhooks/worker-health.js';
import { type TestStore, freshStore } from '../support/stores.js';
import { recordingLogger } from './harness.js';

/** A port on 127.0.0.1 nothing listens on (taken, then given back). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('worker health with Redis', () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore('sqlite');
  });
  afterAll(() => store.cleanup());

  function health(redisUrl: string) {
    const logger = recordingLogger();
    const composed = composeWorkerHealth(
      { redisUrl, smtpUrl: '', publicUrl: 'http://localhost:3000', webhookDisableAfterDays: 5 },
      store.db,
      systemClock,
      logger,
    );
    return { composed, logger };
  }

  const unavailable = (lines: { message: string }[]) =>
    lines.filter((l) => l.message.includes('unavailable'));

  it('started with Redis up, the first round uses Redis and logs nothing about it being away', async () => {
    const { composed, logger } = health('redis://127.0.0.1:6379');
    try {
      // what the worker's first round does, at once after start
      const now = Date.now();
      expect(await composed.throttle.blocked(now)).toEqual([]);
      const grant = await composed.throttle.acquire(`wep_health_${now}`, 10, 3, now);
      expect(grant.granted).toBe(3);
      await composed.throttle.report(`wep_health_${now}`, true, now);
      expect(unavailable(logger.lines)).toEqual([]);
    } finally {
      await composed.close();
    }
  });

  it('pointed where nothing listens, it says Redis is unavailable and goes on in memory', async () => {
    const { composed, logger } = health(`redis://127.0.0.1:${await closedPort()}`);
    try {
      const now = Date.now();
      expect(await composed.throttle.blocked(now)).toEqual([]);
      expect((await composed.throttle.acquire('wep_nowhere', 10, 3, now)).granted).toBe(3);
      expect(unavailable(logger.lines)).toHaveLength(1);
    } finally {
      await composed.close();
    }
  });
});
