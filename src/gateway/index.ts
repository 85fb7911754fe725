/**
 * The gateway: the data plane every API call passes through. See docs/gateway.md.
 *
 * - `createGateway(deps)` builds one gateway (server, snapshot, limiter, usage recorder); the CLI listens.
 * - `startGatewayWorkers(n, …)` runs n gateway processes on one host.
 * - `publishChange(redis)` is what control calls after committing a change, so gateways apply it at once.
 */
export { createGateway, type Gateway, type GatewayDeps, type GatewayOptions } from './gateway.js';
export { startGatewayWorkers, type GatewayWorkers, type StartWorkersOptions } from './workers.js';
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
export type { GatewayLogger } from './logger.js';
