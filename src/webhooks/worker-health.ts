/**
 * What a worker process needs for endpoint health (issue 9): the throttle (each endpoint's rate and breaker,
 * shared through Redis when configured, else this process's memory) and the mailer that tells an owner their
 * endpoint was disabled. Composed by `composeWorkerRole` (src/cli/roles.ts).
 */
import { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Clock } from '../kernel/index.js';
import { type Mailer, createMailer } from '../mail/index.js';
import type { Executor } from '../store/index.js';
import { type EndpointThrottle, memoryThrottle, redisThrottle, sharedThrottle } from './endpoint-throttle.js';

export interface WorkerHealth {
  throttle: EndpointThrottle;
  mailer: Mailer;
  disableAfterMs: number;
  close(): Promise<void>;
}

/** How long the first use waits for the Redis connection before taking Redis as away. */
const connectWaitMs = 2000;

/**
 * Resolves once the client is ready, or has failed to connect (refused, unreachable), or after `connectWaitMs`,
 * whichever comes first.
 */
function connecting(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, connectWaitMs);
    timer.unref();
    function done() {
      clearTimeout(timer);
      redis.off('ready', done).off('error', done).off('end', done);
      resolve();
    }
    redis.once('ready', done).once('error', done).once('end', done);
  });
}

/**
 * The throttle, each call waiting first for `connected`. The client queues nothing while disconnected
 * (`enableOfflineQueue: false`, so that a Redis away fails a call at once rather than holding a round), so a call
 * made before the connection is up fails as if Redis were away: the worker's first round, made at start, logged
 * "Redis unavailable" on every start.
 */
function afterConnecting(throttle: EndpointThrottle, connected: Promise<void>): EndpointThrottle {
  return {
    blocked: async (...args) => connected.then(() => throttle.blocked(...args)),
    acquire: async (...args) => connected.then(() => throttle.acquire(...args)),
    report: async (...args) => connected.then(() => throttle.report(...args)),
    state: async (...args) => connected.then(() => throttle.state(...args)),
    close: () => throttle.close(),
  };
}

export function composeWorkerHealth(
  config: Pick<Config, 'redisUrl' | 'smtpUrl' | 'publicUrl' | 'webhookDisableAfterDays'>,
  db: Executor,
  clock: Clock,
  logger: { warn(data: object, message?: string): void },
): WorkerHealth {
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
    : null;
  redis?.on('error', () => {});
  let warnedAt = 0;
  const throttle = redis
    ? sharedThrottle(afterConnecting(redisThrottle(redis), connecting(redis)), memoryThrottle(), (err) => {
        if (Date.now() - warnedAt < 60_000) return;
        warnedAt = Date.now();
        logger.warn(
          { err: (err as Error).message },
          'worker: Redis unavailable; endpoint rates and breakers kept in this process meanwhile',
        );
      })
    : memoryThrottle();
  const mailer = createMailer({
    db,
    clock,
    smtpUrl: config.smtpUrl,
    from: `webhooks@${new URL(config.publicUrl).hostname}`,
    portalUrl: config.publicUrl,
  });
  return {
    throttle,
    mailer,
    disableAfterMs: config.webhookDisableAfterDays * 86_400_000,
    close: async () => {
      await mailer.settled();
      redis?.disconnect();
    },
  };
}
