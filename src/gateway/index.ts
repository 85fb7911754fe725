/**
 * The gateway: the data plane every API call passes through. See docs/gateway.md.
 *
 * - `createGateway(deps)` builds one gateway (server, snapshot, limiter, usage recorder); the CLI listens.
 * - n gateway processes on one host: `startGatewayWorkers` in `cli/gateway-workers.ts` (the CLI forks them).
 * - `publishChange(redis)` is what control calls after committing a change, so gateways apply it at once.
 */
export { createGateway, type Gateway, type GatewayDeps, type GatewayOptions } from './gateway.js';
export { CHANGES_CHANNEL, publishChange } from './change-feed.js';
export { denialCatalogue, type DenialCode } from './denials.js';
export type { TokenVerifier, VerifiedToken } from './phases/authenticate.js';
export type {
  Limiter,
  LimiterOutcome,
  CounterCheck,
  ConsistencyMode,
  FailureMode,
} from './limiter/limiter.js';
export { MemoryLimiter } from './limiter/memory-limiter.js';
export { RedisLimiter, type RedisLimiterOptions } from './limiter/redis-limiter.js';
export { HostLimiter, serveHostCounters } from './limiter/host-limiter.js';
export { usageSeed } from './limiter/usage-seed.js';
export { isPeriod, type Period, windowOf } from './limiter/periods.js';
export type { GatewayLogger } from './logger.js';
