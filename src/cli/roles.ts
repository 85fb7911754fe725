/**
 * Each process role composed in one place. `trellis start` (everything in one process) and the gateway worker
 * processes of `--workers N` build their gateway here, so every gateway process has the same parts: the store
 * (reporting lost connections to the log), the OAuth token verifier for `oauth2` services, and the JSON logger.
 * The control server (management API, portal, console, OAuth) is composed here too.
 * So is the worker (webhook delivery from the outbox, and the insights: detectors and quota alerts once a round),
 * run by `trellis worker` and in-process by `trellis start`.
 */
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/index.js';
import type { ControlApp } from '../control/index.js';
import type { Change } from '../events/index.js';
import {
  CHANGES_CHANNEL,
  createGateway,
  type Gateway,
  type GatewayOptions,
  type Limiter,
} from '../gateway/index.js';
import { type Clock, systemClock } from '../kernel/index.js';
import { issuerOf, OAuthTokenVerifier } from '../oauth/index.js';
import { openStore, type Store } from '../store/index.js';
import type { InsightsJob } from '../insights/index.js';
import type { MailNotifier } from '../mail/index.js';
import type { WebhookWorker, WebhookWorkerOptions } from '../webhooks/index.js';

export type RoleName = 'trellis' | 'gateway' | 'worker';

/**
 * The process's logger: JSON lines on stdout at `TRELLIS_LOG_LEVEL` (the control server's fastify logs the same
 * way), each line naming the role and the pid.
 */
export function createProcessLogger(config: Config, role: RoleName): Logger {
  return pino({ level: config.logLevel, base: { role, pid: process.pid } });
}

/** The store of a process: lost database connections are logged through the process's logger. */
export function openRoleStore(config: Config, logger: Logger, poolSize?: number): Store {
  return openStore(config.databaseUrl, {
    logger,
    queryTimeoutMs: config.databaseQueryTimeoutMs,
    ...(poolSize !== undefined && { poolSize }),
  });
}

export interface GatewayRoleDeps {
  config: Config;
  store: Store;
  logger: Logger;
  clock?: Clock;
  options?: GatewayOptions;
  /** The counters to count on; by default Redis when configured, else this process's memory. */
  limiter?: Limiter;
  /** More metrics served on the gateway's `/__trellis/metrics` (`trellis start`: the in-process worker's). */
  metrics?: Registry;
}

export interface GatewayRole {
  gateway: Gateway;
  /** Stops the gateway (requests in flight finish, usage is flushed), then the token verifier. */
  close(): Promise<void>;
}

/**
 * A gateway as every Trellis process runs it: OAuth 2.0 tokens of `oauth2` services checked locally against the
 * signing keys in the store, logs through the process's logger.
 * @example const role = await composeGatewayRole({ config, store, logger }); await role.gateway.listen(8080)
 */
export async function composeGatewayRole(deps: GatewayRoleDeps): Promise<GatewayRole> {
  const { config, store, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const tokenVerifier = await OAuthTokenVerifier.create({
    db: store.db,
    clock,
    issuer: issuerOf(config.publicUrl),
    logger,
    // external JWKS are fetched through the guarded outbound client; these hosts may be non-public
    outboundAllowHosts: config.outboundAllowHosts,
  });
  const gateway = createGateway({
    config,
    store,
    clock,
    logger,
    tokenVerifier,
    ...(deps.options && { options: deps.options }),
    ...(deps.limiter && { limiter: deps.limiter }),
  });
  for (const { name } of deps.metrics?.getMetricsAsArray() ?? []) {
    const metric = deps.metrics?.getSingleMetric(name);
    if (metric) gateway.metrics.registry.registerMetric(metric);
  }
  return {
    gateway,
    close: async () => {
      try {
        await gateway.close();
      } finally {
        tokenVerifier.close();
      }
    },
  };
}

export interface ControlRoleDeps {
  config: Config;
  store: Store;
  clock?: Clock;
  /** Called after each change commits (`trellis start` publishes it on Redis for the gateways). */
  onCommitted?: (changes: Change[]) => void;
}

/**
 * The control server as every Trellis process runs it: the management API with every module's routes, the
 * portal, the console and the OAuth server, logging JSON lines at `TRELLIS_LOG_LEVEL`.
 * @example const control = await composeControlRole({ config, store }); await control.listen({ port: 3000 })
 */
export async function composeControlRole(deps: ControlRoleDeps): Promise<ControlApp> {
  const { config, store } = deps;
  // loaded when asked for: gateway worker processes import this file and need none of it
  const [{ buildControlApp }, { adminApiModules, controlModules }, mail] = await Promise.all([
    import('../control/index.js'),
    import('./compose.js'),
    import('../mail/index.js'),
  ]);
  const clock = deps.clock ?? systemClock;
  // the mails a partner expects when an application is approved, changes plan or its go-live is decided,
  // whichever face made the change (issue 13)
  const notices = composeMailNotices(mail, config, store, clock, (err) =>
    app.log.error({ err }, 'mail: a notification could not be written to the outbox'),
  );
  const app = await buildControlApp(
    {
      config,
      store,
      clock,
      onCommitted: (changes) => {
        deps.onCommitted?.(changes);
        notices.notifier.notify(changes);
      },
    },
    { adminApi: adminApiModules, modules: controlModules, logger: { level: config.logLevel } },
  );
  app.addHook('onClose', notices.close);
  return app;
}

/** The mail notifier of a process, with the mailer it writes through (`TRELLIS_SMTP_URL`, else the outbox). */
function composeMailNotices(
  mail: typeof import('../mail/index.js'),
  config: Config,
  store: Store,
  clock: Clock,
  onError: (err: unknown) => void,
): { notifier: MailNotifier; close: () => Promise<void> } {
  const mailer = mail.createMailer({
    db: store.db,
    clock,
    smtpUrl: config.smtpUrl,
    from: `portal@${new URL(config.publicUrl).hostname}`,
    portalUrl: config.publicUrl,
  });
  const notifier = mail.createMailNotifier({ db: store.db, mailer, portalUrl: config.publicUrl, onError });
  return {
    notifier,
    close: async () => {
      await notifier.settled();
      await mailer.settled();
    },
  };
}

export interface WorkerRoleDeps {
  config: Config;
  store: Store;
  logger: Logger;
  clock?: Clock;
  options?: WebhookWorkerOptions;
  /** Serve the metrics on this port (0: a free one the system picks); default TRELLIS_WORKER_METRICS_PORT, where 0 serves none. */
  metricsPort?: number;
}

export interface WorkerRole {
  worker: WebhookWorker;
  /** The webhook queue's Prometheus metrics (depth and age read from the database when scraped). */
  metrics: Registry;
  /** The port of the metrics listener, when there is one. */
  metricsPort: number | null;
  /** The insight detectors and quota alerts, one worker a round (null when TRELLIS_INSIGHTS_INTERVAL_MS is 0). */
  insights: InsightsJob | null;
  /** Starts the webhook worker and the insights job. */
  start(): void;
  /** Stops the worker after the round in progress, then its outbound client. */
  close(): Promise<void>;
}

/**
 * The worker as every Trellis process runs it: webhook deliveries through the guarded outbound client (public
 * addresses only, unless TRELLIS_OUTBOUND_ALLOW_HOSTS names the host; no redirects; 15 s per delivery, answers
 * past 64 KiB refused, 1 KiB kept), endpoint secrets opened with TRELLIS_OAUTH_KEY_SECRET; and the insights
 * (detectors and quota alerts, mails through TRELLIS_SMTP_URL) every TRELLIS_INSIGHTS_INTERVAL_MS, one worker a
 * round however many share the database. Not started: call `start()`.
 * @example const role = await composeWorkerRole({ config, store, logger }); role.start()
 */
export async function composeWorkerRole(deps: WorkerRoleDeps): Promise<WorkerRole> {
  const { config, store, logger } = deps;
  // loaded when asked for, like the control role: gateway worker processes need none of it
  const [
    { createWebhookWorker },
    { createSealer },
    { createOutboundClient },
    { InsightsJob },
    { createMailer },
    { CertificationJob },
  ] = await Promise.all([
    import('../webhooks/index.js'),
    import('../oauth/index.js'),
    import('../outbound/index.js'),
    import('../insights/index.js'),
    import('../mail/index.js'),
    import('../golive/index.js'),
  ]);
  const clock = deps.clock ?? systemClock;
  const outbound = createOutboundClient({
    allowHosts: config.outboundAllowHosts,
    connectTimeoutMs: 5000,
    timeoutMs: 15_000,
    maxBytes: 65_536,
  });
  const { composeWorkerHealth } = await import('../webhooks/worker-health.js');
  const { createWebhookMetrics, serveMetrics } = await import('../webhooks/webhook-metrics.js');
  const metrics = createWebhookMetrics({ db: store.db, clock });
  const health = composeWorkerHealth(config, store.db, deps.clock ?? systemClock, logger);
  const worker = createWebhookWorker({
    db: store.db,
    clock,
    sealer: createSealer(config.oauthKeySecret),
    sender: outbound,
    logger,
    throttle: health.throttle,
    mailer: health.mailer,
    onAttempt: metrics.attempt,
    options: { disableAfterMs: health.disableAfterMs, ...deps.options },
  });
  // with Redis, the notification every committed change publishes wakes the worker at once (else it polls)
  const subscriber = config.redisUrl ? new Redis(config.redisUrl, { maxRetriesPerRequest: null }) : null;
  if (subscriber) {
    subscriber.on('error', () => {});
    subscriber.on('message', () => worker.nudge());
    subscriber.subscribe(CHANGES_CHANNEL).catch((err: unknown) => {
      logger.warn(
        { err: (err as Error).message },
        'worker: cannot subscribe to change notifications; polling only',
      );
    });
  }
  // on PostgreSQL without Redis, the pg_notify every outbox write commits with wakes it (src/webhooks/pg-wake.ts)
  const pgWake =
    !subscriber && store.dialect === 'postgres'
      ? (await import('../webhooks/pg-wake.js')).listenForOutboxWrites({
          url: config.databaseUrl,
          onNotify: () => worker.nudge(),
          logger,
        })
      : null;
  const mailer =
    config.insightsIntervalMs > 0
      ? createMailer({
          db: store.db,
          clock,
          smtpUrl: config.smtpUrl,
          from: `portal@${new URL(config.publicUrl).hostname}`,
        })
      : null;
  // the events a run writes (insight.detected, quota.level_reached …) wake the webhook worker at once
  const insights = mailer
    ? new InsightsJob(
        { db: store.db, clock, mailer, portalUrl: config.publicUrl, onCommitted: () => worker.nudge() },
        { intervalMs: config.insightsIntervalMs, holder: worker.workerId, logger },
      )
    : null;
  // certification runs end once they saw their calls or their window closed (issue 11)
  // a passed run may approve a go-live request: its mail goes out like the provider's decision's (issue 13)
  const notices = composeMailNotices(await import('../mail/index.js'), config, store, clock, (err) =>
    logger.error({ err }, 'mail: a notification could not be written to the outbox'),
  );
  const certification = new CertificationJob(
    { db: store.db, clock, onCommitted: (changes) => notices.notifier.notify(changes) },
    logger,
  );
  const listenOn = deps.metricsPort ?? (config.workerMetricsPort > 0 ? config.workerMetricsPort : null);
  const listener = listenOn === null ? null : await serveMetrics(metrics.registry, listenOn, config.host);
  return {
    worker,
    metrics: metrics.registry,
    metricsPort: listener?.port ?? null,
    insights,
    start: () => {
      worker.start();
      insights?.start();
      certification.start();
    },
    close: async () => {
      try {
        await insights?.close();
        await certification.close();
        await worker.stop();
      } finally {
        subscriber?.disconnect();
        await pgWake?.close();
        await health.close();
        await mailer?.settled();
        await notices.close();
        await outbound.close();
        await listener?.close();
      }
    },
  };
}
