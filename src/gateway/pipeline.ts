/**
 * The request pipeline, in the order of docs/gateway.md:
 *
 *   route → authenticate → check client → map → authorize → transform request → proxy → transform response → record
 *
 * The access phases (route … authorize) each return a denial or nothing, synchronously when they can (a cached
 * credential, in-memory counters), so the common case does not wait. The proxy streams; the response is
 * transformed as its headers go out; usage is recorded after the response, never in its way.
 */
import type { Readable } from 'node:stream';
import type { Clock } from '../kernel/index.js';
import { isDatabaseUnavailable } from '../store/index.js';
import type { UsageSink } from '../usage/index.js';
import type { CertifyingRuns } from './certification-faults.js';
import type { CredentialCache } from './credential-cache.js';
import { type Denial, bearerChallenge, deny, denialBody } from './denials.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import type { WindowCalendar } from './limiter/periods.js';
import type { Limiter } from './limiter/limiter.js';
import { type GatewayLogger, errorFields } from './logger.js';
import { authenticate, type TokenVerifier } from './phases/authenticate.js';
import { authorize } from './phases/authorize.js';
import { checkClient } from './phases/check-client.js';
import { map } from './phases/map.js';
import { route } from './phases/route.js';
import { transformRequest } from './phases/transform-request.js';
import type { ForwardRequest, UpstreamFailure, UpstreamProxy } from './proxy.js';
import type { RequestBodies } from './request-body.js';
import type { RequestContext } from './request-context.js';
import type { CompiledPlan } from './snapshot.js';

export interface PipelineDeps {
  clock: Clock;
  logger: GatewayLogger;
  cache: CredentialCache;
  tokenVerifier: TokenVerifier | null;
  limiter: Limiter;
  calendar: WindowCalendar;
  proxy: UpstreamProxy;
  /** Buffering, idle timeout and per-application bound of request bodies. */
  bodies: RequestBodies;
  usage: UsageSink | null;
  metrics: GatewayMetrics;
  /** Running certification runs: faults injected into certifying sandbox applications' calls (issue 11). */
  certification?: CertifyingRuns;
  refreshSnapshot(): Promise<void>;
  currentSnapshot(): { plans: ReadonlyMap<string, CompiledPlan> };
}

type PhaseResult = Denial | null | Promise<Denial | null>;

/** A phase before the proxy: it may refuse the request. */
interface AccessPhase {
  readonly name: string;
  run(ctx: RequestContext, deps: PipelineDeps): PhaseResult;
}

/** The access phases, in order. */
export const accessPhases: readonly AccessPhase[] = [
  { name: 'route', run: (ctx) => route(ctx) ?? checkContentLength(ctx) },
  { name: 'authenticate', run: (ctx, deps) => authenticate(ctx, deps) },
  { name: 'check client', run: (ctx, deps) => checkClient(ctx) ?? deps.bodies.admit(ctx) },
  { name: 'map', run: (ctx) => map(ctx) },
  { name: 'authorize', run: (ctx, deps) => authorize(ctx, deps) },
  { name: 'certify', run: (ctx, deps) => deps.certification?.inject(ctx) ?? null },
];

/** A declared body over the service's limit is refused before anything is counted. */
function checkContentLength(ctx: RequestContext): Denial | null {
  const declared = ctx.req.headers['content-length'];
  if (declared !== undefined && Number(declared) > ctx.service!.maxBodyBytes) return deny('body_too_large');
  return null;
}

/** Runs a request through every phase; never throws (unexpected errors become a logged 500). */
export function handle(ctx: RequestContext, deps: PipelineDeps): void {
  // one listener per request: phase 9 once the response is done, and the upstream call dropped if the client left
  ctx.res.on('close', () => {
    ctx.relay?.clientGone();
    record(ctx, deps);
  });
  runFrom(ctx, deps, 0);
}

/**
 * Runs the access phases from `first` on, synchronously for as long as they answer synchronously (a cached
 * credential, in-memory counters); a phase that answers with a promise continues the run when it settles.
 */
function runFrom(ctx: RequestContext, deps: PipelineDeps, first: number): void {
  try {
    for (let i = first; i < accessPhases.length; i++) {
      const denial = accessPhases[i]!.run(ctx, deps);
      if (denial instanceof Promise) {
        denial.then(
          (d) => {
            if (passed(ctx, deps, d)) runFrom(ctx, deps, i + 1);
          },
          (err: unknown) => unexpected(ctx, deps, err),
        );
        return;
      }
      if (!passed(ctx, deps, denial)) return;
    }
    forward(ctx, deps);
  } catch (err) {
    unexpected(ctx, deps, err);
  }
}

/** True when the request goes on: no denial, and the client is still there. */
function passed(ctx: RequestContext, deps: PipelineDeps, denial: Denial | null): boolean {
  if (denial !== null) {
    refuse(ctx, deps, denial);
    return false;
  }
  return !ctx.res.destroyed; // the client left while we were deciding
}

let lastUnavailableLog = Number.NEGATIVE_INFINITY;

function unexpected(ctx: RequestContext, deps: PipelineDeps, err: unknown): void {
  if (isDatabaseUnavailable(err)) {
    // a credential that is not cached needs the database; known ones are still served from the cache
    const now = deps.clock.now();
    if (now - lastUnavailableLog >= 5000) {
      lastUnavailableLog = now;
      deps.logger.warn(
        { requestId: ctx.requestId, ...errorFields(err) },
        'gateway: database unreachable; answering 503 backend_unavailable to what needs it',
      );
    }
    if (!ctx.res.headersSent) refuse(ctx, deps, deny('backend_unavailable'));
    else ctx.res.destroy();
    return;
  }
  deps.logger.error({ requestId: ctx.requestId, ...errorFields(err) }, 'gateway: unexpected error');
  if (!ctx.res.headersSent) refuse(ctx, deps, deny('internal'));
  else ctx.res.destroy();
}

/** The proxy's view of one call of the pipeline: where it goes, and what to do when it ends or fails. */
class UpstreamCall implements ForwardRequest {
  readonly origin: string;
  readonly path: string;
  readonly method: string;
  readonly headers: string[];
  readonly body: Buffer | Readable | null;
  readonly res: RequestContext['res'];
  /** transform response: the rate-limit headers and the request id go out with the upstream's headers */
  readonly responseHeaders: RequestContext['responseHeaders'];

  constructor(
    private readonly ctx: RequestContext,
    private readonly deps: PipelineDeps,
    body: Buffer | Readable | null,
  ) {
    const upstream = transformRequest(ctx);
    this.origin = upstream.origin;
    this.path = upstream.path;
    this.method = ctx.method;
    this.headers = upstream.headers;
    this.body = body;
    this.res = ctx.res;
    this.responseHeaders = ctx.responseHeaders;
  }

  onEnd(status: number, bytesOut: number, failure: UpstreamFailure | null): void {
    const ctx = this.ctx;
    ctx.status = failure === 'aborted' ? 499 : status;
    ctx.bytesOut = bytesOut;
    if (failure !== null && failure !== 'aborted')
      this.deps.metrics.upstreamError(ctx.service!.systemName, failure);
  }

  onFail(failure: UpstreamFailure, error: Error): void {
    onUpstreamFailure(this.ctx, this.deps, failure, error);
  }
}

/** Phase 7 once the body is ready to go: small bodies are read whole first, so a slow client holds no connection. */
function forward(ctx: RequestContext, deps: PipelineDeps): void {
  ctx.authorized = true;
  deps.bodies.read(
    ctx,
    (body) => {
      if (ctx.res.destroyed) return;
      ctx.relay = deps.proxy.forward(new UpstreamCall(ctx, deps, body));
    },
    (failure) => {
      if (failure === 'aborted') ctx.status = 499;
      else refuse(ctx, deps, deny('request_timeout'));
    },
  );
}

function onUpstreamFailure(
  ctx: RequestContext,
  deps: PipelineDeps,
  failure: UpstreamFailure,
  error: Error,
): void {
  if (failure === 'aborted') {
    ctx.status = 499;
    return;
  }
  if (failure !== 'body_too_large' && failure !== 'request_timeout') {
    deps.metrics.upstreamError(ctx.service!.systemName, failure);
    deps.logger.warn(
      { requestId: ctx.requestId, service: ctx.service!.systemName, failure, ...errorFields(error) },
      'gateway: upstream failed',
    );
  }
  refuse(
    ctx,
    deps,
    deny(
      failure === 'timeout'
        ? 'upstream_timeout'
        : failure === 'body_too_large' || failure === 'request_timeout'
          ? failure
          : failure === 'busy'
            ? 'upstream_busy'
            : 'upstream_unreachable',
    ),
  );
}

const unreadBody: ReadonlySet<string> = new Set(['request_timeout', 'too_many_uploads', 'upstream_busy']);

/** Answers the client with a denial. */
export function refuse(ctx: RequestContext, deps: PipelineDeps, denial: Denial): void {
  const res = ctx.res;
  ctx.status = denial.status;
  ctx.denial = denial.code;
  deps.metrics.denial(denial.code);
  if (res.headersSent || res.destroyed) return;
  const body = denialBody(denial, ctx.requestId);
  const headers = ctx.responseHeaders;
  headers['content-type'] = 'application/json; charset=utf-8';
  headers['content-length'] = Buffer.byteLength(body);
  headers['cache-control'] = 'no-store';
  if (ctx.service?.authMode === 'oauth2') {
    const challenge = bearerChallenge(denial, ctx.service.systemName);
    if (challenge !== null) headers['www-authenticate'] = challenge;
  }
  // an unread body (oversized, stalled, or refused for want of a place) is not worth reading to keep the connection
  if (denial.code === 'body_too_large' || (unreadBody.has(denial.code) && !ctx.req.complete))
    headers.connection = 'close';
  ctx.bytesOut = Buffer.byteLength(body);
  res.writeHead(denial.status, headers);
  res.end(body);
}

/** Phase 9, record: metrics and a usage record, after the response is done. */
function record(ctx: RequestContext, deps: PipelineDeps): void {
  const seconds = (performance.now() - ctx.startedAt) / 1000;
  if (ctx.status === 0) ctx.status = ctx.res.headersSent ? ctx.res.statusCode : 499;
  const service = ctx.service;
  deps.metrics.request(service?.systemName ?? '', ctx.status, seconds);
  if (deps.usage === null) return;
  const app = ctx.app;
  deps.usage.record({
    at: ctx.at,
    serviceId: service?.id ?? null,
    applicationId: app?.applicationId ?? null,
    accountId: app?.accountId ?? null,
    metrics: ctx.authorized ? ctx.usage : [],
    status: ctx.status,
    latencyMs: seconds * 1000,
    bytesIn: ctx.bytesIn,
    bytesOut: ctx.bytesOut,
    endUser: ctx.endUser,
    clientIp: ctx.clientIp,
    method: ctx.method,
    route: ctx.matched.ruleId,
    retryAfterS: ctx.status === 429 ? Number(ctx.responseHeaders['retry-after'] ?? 0) || 0 : 0,
    // one shape for every record (spreads built two objects per call and gave the records two shapes more)
    credentialHash: app !== null && ctx.credentialHash !== null ? ctx.credentialHash : undefined,
    certification: ctx.certification ?? undefined,
  });
}
