/**
 * The gateway application: a hand-written `node:http` server (this is the hot path; no framework) around the
 * pipeline, the snapshot holder and the change feed. Built by a factory; only the CLI starts it.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { latestChangeSeq } from '../events/index.js';
import { type Clock, clientAddress, compileTrustedProxies, systemClock } from '../kernel/index.js';
import type { Store } from '../store/index.js';
import { type UsageSink, UsageRecorder, usageWriterFor } from '../usage/index.js';
import type { ChangeFeedEntry } from '../events/index.js';
import { CertifyingRuns } from './certification-faults.js';
import { ChangeFeed, type ChangeActions } from './change-feed.js';
import { CredentialCache, databaseCredentialSource, type CredentialSource } from './credential-cache.js';
import { GatewayMetrics } from './gateway-metrics.js';
import type { Limiter, LimiterFailure } from './limiter/limiter.js';
import { MemoryLimiter } from './limiter/memory-limiter.js';
import { WindowCalendar } from './limiter/periods.js';
import { RedisLimiter } from './limiter/redis-limiter.js';
import { usageSeed } from './limiter/usage-seed.js';
import { type GatewayLogger, createFallbackLogger, errorFields } from './logger.js';
import type { TokenVerifier } from './phases/authenticate.js';
import { handle, type PipelineDeps } from './pipeline.js';
import { UpstreamProxy } from './proxy.js';
import { RequestBodies } from './request-body.js';
import { RequestContext } from './request-context.js';
import { type Snapshot, compileSnapshot } from './snapshot.js';
import { loadCatalog } from './snapshot.store.js';

/** Tuning a deployment rarely changes; tests shorten the timeouts. */
export interface GatewayOptions {
  /** Time to connect to an upstream before 502. Default 5 s. */
  connectTimeoutMs?: number;
  /** Time to wait for an upstream's headers (and between body chunks) before 504. Default 30 s. */
  responseTimeoutMs?: number;
  /** Connections per upstream origin. Default 512. */
  upstreamConnections?: number;
  /** How long a call waits for a connection of a full upstream pool before 503. Default: the setting. */
  upstreamQueueTimeoutMs?: number;
  /** Declared bodies up to this are read whole before the upstream call. Default: the setting (64 KiB). */
  bufferedBodyBytes?: number;
  /** A request body that sends nothing for this long is refused with 408. Default: the setting (10 s). */
  bodyIdleTimeoutMs?: number;
  /** Streamed (larger or chunked) uploads one application may have in flight. Default: the setting (32). */
  uploadsPerApplication?: number;
  /** Prefix of Redis counter keys (several installs or tests on one Redis). Default `trellis:rl:`. */
  redisKeyPrefix?: string;
  /** How often `batched` counters sync with Redis. Default 100 ms. */
  limiterSyncIntervalMs?: number;
  /** How long `listen` waits for Redis to connect before serving anyway. Default 2 s. */
  redisReadyTimeoutMs?: number;
  /** Credentials kept in the cache. Default 200,000. */
  credentialCacheSize?: number;
  /**
   * How long a cached credential is trusted without the change feed saying anything; older ones are looked up
   * again on their next use (served meanwhile, and while the database is away). Default
   * `config.credentialMaxAgeMs` (`TRELLIS_GATEWAY_CREDENTIAL_MAX_AGE_MS`, 60 s).
   */
  credentialMaxAgeMs?: number;
  /** How long a credential lookup may wait for the database before the call is answered 503. Default 3 s. */
  lookupTimeoutMs?: number;
  /** How long one read (or apply) of the change feed may take before it is retried at the next poll. Default 10 s. */
  feedTimeoutMs?: number;
}

export interface GatewayDeps {
  config: Config;
  store: Store;
  clock?: Clock;
  logger?: GatewayLogger;
  /** Counters; default: Redis when `config.redisUrl` is set, else in memory. */
  limiter?: Limiter;
  /** Usage destination; default: a `UsageRecorder` on the store, flushed every `config.usageFlushMs`. */
  usage?: UsageSink;
  /** Validates OAuth 2.0 tokens of `oauth2` services; without one they answer `credentials_invalid`. */
  tokenVerifier?: TokenVerifier;
  /** Where credential cache misses are answered; default the store. */
  credentialSource?: CredentialSource;
  options?: GatewayOptions;
}

export interface Gateway {
  readonly server: Server;
  /** Loads the snapshot, then listens. Resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Stops accepting, finishes requests in flight, flushes usage and counters. */
  close(): Promise<void>;
  /** Reads the change feed now (tests and operators; it also runs on a timer and on notifications). */
  refresh(): Promise<void>;
  /** The compiled snapshot in use. */
  snapshot(): Snapshot;
  readonly metrics: GatewayMetrics;
}

const INTERNAL_PREFIX = '/__trellis/';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function hostOf(header: string | undefined): string {
  if (!header) return '';
  const h = header.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

/**
 * The path of an absolute-form request target (RFC 9112 §3.2.2) as sent, for the route phase to normalise; any
 * other form (`*`, garbage) is returned as is, and refused there (`path_invalid`).
 */
function absoluteFormPath(target: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(target);
  if (scheme === null) return target;
  const slash = target.indexOf('/', scheme[0].length);
  return slash === -1 ? '/' : target.slice(slash);
}

function redisReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    }
    redis.once('ready', done);
  });
}

/**
 * Builds a gateway.
 * @example
 * const gateway = createGateway({ config, store });
 * await gateway.listen(config.gatewayPort, config.host);
 */
export function createGateway(deps: GatewayDeps): Gateway {
  const { config, store } = deps;
  // null without trusted proxies: the client address is then the socket's, as cheap as before
  const trustedProxies = compileTrustedProxies(config.trustedProxies);
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? createFallbackLogger();
  const options = deps.options ?? {};
  const redisConnections: Redis[] = [];
  const redisFor = (purpose: string): Redis => {
    const redis = new Redis(config.redisUrl, {
      lazyConnect: false,
      // fail fast instead of queueing when Redis is away: the service's failure mode decides what happens
      enableOfflineQueue: purpose === 'subscriber',
      maxRetriesPerRequest: 1,
      commandTimeout: purpose === 'subscriber' ? undefined : 1000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(100 * times, 2000),
      // the limiter's commands of concurrent requests (strict: one script per request) share one write and one
      // round trip per event-loop turn instead of a write each
      enableAutoPipelining: purpose === 'limiter',
    });
    let reported = false;
    redis.on('error', (err: unknown) => {
      if (!reported) logger.warn({ purpose, ...errorFields(err) }, 'gateway: Redis unreachable');
      reported = true;
    });
    redis.on('ready', () => {
      if (reported) logger.info({ purpose }, 'gateway: Redis reachable again');
      reported = false;
    });
    redisConnections.push(redis);
    return redis;
  };

  let lastLimiterLog = 0;
  const onLimiterFailure = (f: LimiterFailure) => {
    metrics.limiterFailure(f.mode, f.failureMode);
    const now = clock.now();
    if (now - lastLimiterLog > 5000) {
      lastLimiterLog = now;
      logger.warn(
        { mode: f.mode, failureMode: f.failureMode, ...errorFields(f.error) },
        f.failureMode === 'open'
          ? 'gateway: shared counters unreachable; failing open on local counts'
          : 'gateway: shared counters unreachable; failing closed (503)',
      );
    }
  };
  const limiterRedis = deps.limiter === undefined && config.redisUrl ? redisFor('limiter') : null;
  const limiter =
    deps.limiter ??
    (limiterRedis
      ? new RedisLimiter({
          redis: limiterRedis,
          keyPrefix: options.redisKeyPrefix,
          syncIntervalMs: options.limiterSyncIntervalMs,
          onFailure: onLimiterFailure,
        })
      : new MemoryLimiter({
          // counters count on from the usage recorded before a restart (docs/gateway.md, "What a restart forgets")
          seed: usageSeed(store.db),
          // authorize shares an application's checks across its calls (see applicationCheck)
          sharedChecks: true,
          onSeedFailure: (err, applicationId) =>
            logger.warn(
              { applicationId, ...errorFields(err) },
              "gateway: recorded usage unreadable; this application's limits count from zero",
            ),
        }));
  const recorder =
    deps.usage === undefined
      ? new UsageRecorder({
          db: store.db,
          writer: usageWriterFor(store.db, store.url, config.usageFlushThread),
          clock,
          flushIntervalMs: config.usageFlushMs,
          logger,
          callPatterns: config.insightsRecording,
          insightsFlushIntervalMs: config.insightsFlushMs,
          compactIntervalMs: config.usageCompactMs,
        })
      : null;
  const usage = deps.usage ?? recorder;
  const cache = new CredentialCache({
    source: deps.credentialSource ?? databaseCredentialSource(store.db),
    capacity: options.credentialCacheSize,
    maxAgeMs: options.credentialMaxAgeMs ?? config.credentialMaxAgeMs,
    lookupTimeoutMs: options.lookupTimeoutMs,
    clock,
  });
  const proxy = new UpstreamProxy({
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    responseTimeoutMs: options.responseTimeoutMs ?? 30_000,
    connections: options.upstreamConnections,
    queueTimeoutMs: options.upstreamQueueTimeoutMs ?? config.gatewayUpstreamQueueTimeoutMs,
  });
  const bodies = new RequestBodies({
    bufferedBodyBytes: options.bufferedBodyBytes ?? config.gatewayBufferedBodyBytes,
    idleTimeoutMs: options.bodyIdleTimeoutMs ?? config.gatewayBodyIdleTimeoutMs,
    uploadsPerApplication: options.uploadsPerApplication ?? config.gatewayUploadsPerApplication,
  });

  let current: Snapshot | null = null;
  let loadedAt = 0;
  const metrics = new GatewayMetrics({
    cache: () => cache.stats(),
    usage: () => recorder?.stats() ?? null,
    now: () => clock.now(),
    snapshotLoadedAt: () => loadedAt,
  });

  let reloading: Promise<void> | null = null;
  const reload = (): Promise<void> => {
    reloading ??= (async () => {
      try {
        const { snapshot, problems } = compileSnapshot(await loadCatalog(store.db));
        for (const p of problems) logger.warn(p, 'gateway: catalogue entry left out of the snapshot');
        current = snapshot;
        loadedAt = clock.now();
        proxy.retainOnly(snapshot.origins);
        metrics.snapshotReload('ok');
      } catch (err) {
        metrics.snapshotReload('failed');
        throw err;
      }
    })().finally(() => {
      reloading = null;
    });
    return reloading;
  };

  // the runs' "every Nth call" counted on the limiter's counters, shared across gateways (issue 11)
  const certifying = new CertifyingRuns(store.db, () => clock.now(), limiter);
  const apply = async (actions: ChangeActions, entries: readonly ChangeFeedEntry[]): Promise<void> => {
    await deps.tokenVerifier?.applyChanges?.(entries);
    if (CertifyingRuns.concerns(entries)) await certifying.load();
    if (actions.flushAll) cache.clear();
    else {
      if (actions.clearNegative) cache.clearNegative();
      for (const id of actions.applications) cache.evictApplication(id);
      for (const id of actions.accounts) cache.evictAccount(id);
    }
    if (actions.reloadSnapshot) await reload();
  };

  const pipelineDeps: PipelineDeps = {
    clock,
    logger,
    cache,
    tokenVerifier: deps.tokenVerifier ?? null,
    limiter,
    calendar: new WindowCalendar(),
    proxy,
    bodies,
    usage,
    metrics,
    certification: certifying,
    refreshSnapshot: reload,
    currentSnapshot: () => current!,
  };

  const serveInternal = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    if (path === '/__trellis/health') {
      const body = JSON.stringify({ status: 'ok', snapshotAgeMs: clock.now() - loadedAt });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (path === '/__trellis/metrics' && req.method === 'GET') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          logger.error(errorFields(err), 'gateway: cannot render metrics');
          res.writeHead(500).end();
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'route_not_found', message: 'No such route.', requestId: '' } }));
  };

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let rawPath = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    if (rawPath.charCodeAt(0) !== 47) rawPath = absoluteFormPath(rawPath);
    if (rawPath.startsWith(INTERNAL_PREFIX)) {
      serveInternal(req, res, rawPath);
      return;
    }
    const incomingId = req.headers['x-request-id'];
    const requestId =
      typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    const ctx = new RequestContext(
      req,
      res,
      current!,
      requestId,
      clock.now(),
      performance.now(),
      req.method ?? 'GET',
      hostOf(req.headers.host),
      rawPath,
      rawQuery,
      clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trustedProxies),
    );
    handle(ctx, pipelineDeps);
  });
  // keep client connections longer than common load balancers' idle timeouts (60 s), so they close first
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  let feed: ChangeFeed | null = null;
  let started: Promise<void> | null = null;
  const start = (): Promise<void> => {
    started ??= (async () => {
      const seq = await latestChangeSeq(store.db);
      await reload();
      await certifying.load();
      // the usage writer's thread (SQLite file) loads meanwhile; without it the first flushes would wait for it
      await recorder?.ready();
      // what a killed gateway left in the usage journal reaches the tables the limits start from
      await recorder?.compact();
      // give Redis a moment to connect so the first requests use the shared counters; if it does not come,
      // serve anyway: each service's failure mode says what happens meanwhile
      if (limiterRedis) await redisReady(limiterRedis, options.redisReadyTimeoutMs ?? 2000);
      feed = new ChangeFeed({
        db: store.db,
        afterSeq: seq,
        intervalMs: config.snapshotRefreshMs,
        timeoutMs: options.feedTimeoutMs,
        logger,
        apply,
        subscriber: config.redisUrl ? redisFor('subscriber') : undefined,
      });
    })();
    return started;
  };

  return {
    server,
    metrics,
    snapshot: () => {
      if (current === null)
        throw new Error('The gateway has not loaded its snapshot yet; call listen() first.');
      return current;
    },
    async listen(port: number, host?: string): Promise<AddressInfo> {
      await start();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address();
      if (address === null || typeof address === 'string')
        throw new Error('The gateway listens on a pipe, not a port.');
      return address;
    },
    async refresh(): Promise<void> {
      await start();
      await feed?.poll();
    },
    async close(): Promise<void> {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await feed?.close();
      await proxy.close();
      await limiter.close();
      try {
        await recorder?.close();
      } catch (err) {
        logger.error(errorFields(err), 'gateway: usage could not be written at shutdown');
      }
      await Promise.all(redisConnections.map((r) => r.quit().catch(() => r.disconnect())));
    },
  };
}
