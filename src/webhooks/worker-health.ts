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
    ? sharedThrottle(redisThrottle(redis), memoryThrottle(), (err) => {
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
