import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { CertificationMark } from '../usage/index.js';
import type { AppAccess } from './credential-cache.js';
import type { MetricDelta } from './mapping-rules.js';
import type { Relay } from './proxy.js';
import type { CompiledPlan, CompiledService, Snapshot } from './snapshot.js';

/**
 * The state of one request as it goes through the phases. Each phase fills in its fields; a field is `null`
 * until its phase ran (route → service, path; authenticate → app; map → usage; authorize → plan, endUser).
 */
export class RequestContext {
  /** Set by route: the service and the path with its prefix removed. */
  service: CompiledService | null = null;
  path = '';
  /** Set by authenticate. */
  app: AppAccess | null = null;
  /** Set by authenticate: the stored hash of the key presented, for its "last used" (written with usage). */
  credentialHash: string | null = null;
  /** Claims of a verified token (oauth2), for end-user limits keyed by a claim. */
  claims: Record<string, unknown> | null = null;
  /** Set by authenticate for tokens whose scopes are checked against the metrics the request maps to. */
  missingScope: ((usage: readonly { metricId: string }[], service: CompiledService) => string | null) | null =
    null;
  /** Set by map: metric increments, methods' parents included. */
  usage: MetricDelta[] = [];
  /** Set by map: the id of the first mapping rule that matched (the route usage is counted under). */
  readonly matched = { ruleId: '' };
  /** Set by authorize. */
  plan: CompiledPlan | null = null;
  endUser: string | null = null;
  /** Headers the response carries whoever answers it: request id, rate-limit headers. */
  readonly responseHeaders: OutgoingHttpHeaders;
  /** Request body bytes seen (counted when there is no Content-Length). */
  bytesIn = 0;
  bytesOut = 0;
  status = 0;
  /** Set once every access phase passed: the request counts as usage. */
  authorized = false;
  /** The code of the denial, when the gateway answered itself. */
  denial: string | null = null;
  /** Set by the certification phase for a call of a certifying sandbox application (issue 11). */
  certification: CertificationMark | null = null;
  /** The upstream call once the request went to the proxy. */
  relay: Relay | null = null;
  /** Parsed query string, on demand. */
  private params: URLSearchParams | null = null;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly snapshot: Snapshot,
    readonly requestId: string,
    /** Clock time at arrival (epoch ms): windows and usage buckets. */
    readonly at: number,
    /** `performance.now()` at arrival: latency. */
    readonly startedAt: number,
    readonly method: string,
    readonly host: string,
    /** Path as received, without the query string. */
    readonly rawPath: string,
    /** Query string without `?` ('' when none). */
    readonly rawQuery: string,
    readonly clientIp: string,
  ) {
    this.responseHeaders = { 'x-request-id': requestId };
  }

  query(): URLSearchParams {
    this.params ??= new URLSearchParams(this.rawQuery);
    return this.params;
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }
}
