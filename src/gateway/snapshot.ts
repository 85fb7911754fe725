/**
 * The compiled snapshot: the catalogue (services, metrics, mapping rules, plans, limits) turned into lookup
 * structures once, so the request path does no database work. A new snapshot replaces the old one whole; requests
 * in flight finish on the one they started with.
 */
import { type CompiledRule, compileRules } from './mapping-rules.js';
import { isPeriod, type Period } from './limiter/periods.js';
import type { CatalogRows } from './snapshot.store.js';
import { hopByHopHeaders } from './proxy.js';
import type { ConsistencyMode, FailureMode } from './limiter/limiter.js';

export type AuthMode = 'user_key' | 'app_id_app_key' | 'oauth2';

/** Where an upstream is and the path its requests are put under. */
export interface Upstream {
  /** `http://host:port` */
  readonly origin: string;
  /** Path of the upstream URL without a trailing slash ('' for none). */
  readonly basePath: string;
}

export interface CompiledMetric {
  readonly id: string;
  readonly systemName: string;
  /** The hits metric for methods, `null` for top-level metrics. */
  readonly parentId: string | null;
}

export interface CompiledService {
  readonly id: string;
  readonly systemName: string;
  readonly authMode: AuthMode;
  readonly credentialsLocation: 'header' | 'query';
  /** Credential names as configured (query parameters) and lower-cased (headers, as Node presents them). */
  readonly userKeyName: string;
  readonly appIdName: string;
  readonly appKeyName: string;
  readonly userKeyHeader: string;
  readonly appIdHeader: string;
  readonly appKeyHeader: string;
  readonly secretToken: string | null;
  /** An `oauth2` service's bearer token goes upstream (else it is stripped, like every credential). */
  readonly forwardBearerToken: boolean;
  /** Lower-case host to match, '' for any. */
  readonly host: string;
  /** Path prefix without trailing slash, '' for none. */
  readonly pathPrefix: string;
  readonly limiterMode: ConsistencyMode;
  readonly failureMode: FailureMode;
  readonly maxBodyBytes: number;
  readonly production: Upstream;
  /** `null`: the service has no sandbox, and sandbox applications' calls are refused (`sandbox_unavailable`). */
  readonly sandbox: Upstream | null;
  readonly rules: readonly CompiledRule[];
  readonly metrics: ReadonlyMap<string, CompiledMetric>;
  /** Request headers never passed upstream: hop-by-hop, the ones the gateway sets, and credentials. */
  readonly skipHeaders: ReadonlySet<string>;
  /** Query parameters that carry credentials, removed before the call goes upstream. */
  readonly credentialParams: readonly string[];
}

/** Request headers the gateway replaces or must not pass on, whatever the service. */
const gatewayOwnedHeaders = [
  ...hopByHopHeaders,
  // set from the upstream URL
  'host',
  // answered by the gateway itself (Node sends 100 Continue)
  'expect',
  // set by the gateway; a client must not be able to forge them
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-request-id',
  'x-trellis-secret',
];

function credentialNames(
  authMode: AuthMode,
  location: 'header' | 'query',
  s: { user: string; appId: string; appKey: string; forwardBearerToken: boolean },
) {
  if (authMode === 'oauth2') {
    // the gateway reads a bearer token from `Authorization` in either location (RFC 6750 §2.1, §2.3)
    if (s.forwardBearerToken) return { headers: [], params: [] };
    return { headers: ['authorization'], params: location === 'query' ? ['access_token'] : [] };
  }
  const names = authMode === 'user_key' ? [s.user] : [s.appId, s.appKey];
  return location === 'header'
    ? { headers: names.map((n) => n.toLowerCase()), params: [] }
    : { headers: [], params: names };
}

export interface CompiledLimit {
  readonly metricId: string;
  readonly period: Period;
  readonly value: number;
  readonly scope: 'application' | 'end_user';
  /** The metric's system name, as messages name it (never parsed back out of `policyName`: names may hold `-`). */
  readonly metricName: string;
  /** The limit's name in `RateLimit-Policy` and in 429 bodies: `hits-minute`, `search-day-end-user`. */
  readonly policyName: string;
}

export interface CompiledPlan {
  readonly id: string;
  readonly serviceId: string;
  readonly disabled: ReadonlySet<string>;
  /** Limits by metric id. */
  readonly limits: ReadonlyMap<string, readonly CompiledLimit[]>;
  /** Where the end user is named, when the plan has end-user limits. */
  readonly endUser: { readonly source: 'header' | 'claim'; readonly name: string } | null;
}

export interface RouteMatch {
  readonly service: CompiledService;
  /** The request path with the service's prefix removed. */
  readonly path: string;
}

export interface Snapshot {
  readonly services: readonly CompiledService[];
  readonly plans: ReadonlyMap<string, CompiledPlan>;
  /** Every upstream origin, so pools of origins no longer used can be closed. */
  readonly origins: ReadonlySet<string>;
  /** Finds the service for a request: host-specific services first, then longer path prefixes. */
  route(host: string, path: string): RouteMatch | null;
}

/** A problem with one catalogue row: logged, and the row is left out rather than failing the whole snapshot. */
export interface SnapshotProblem {
  entity: string;
  id: string;
  message: string;
}

function parseUpstream(url: string): Upstream {
  const u = new URL(url);
  const basePath = u.pathname.replace(/\/+$/, '');
  return { origin: u.origin, basePath };
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.trim().replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], fallback: T): T {
  return (allowed as readonly string[]).includes(value) ? (value as T) : fallback;
}

/**
 * Compiles catalogue rows into a snapshot.
 * @example const snapshot = compileSnapshot(await loadCatalog(db)).snapshot
 */
export function compileSnapshot(rows: CatalogRows): { snapshot: Snapshot; problems: SnapshotProblem[] } {
  const problems: SnapshotProblem[] = [];
  const metricsByService = new Map<string, Map<string, CompiledMetric>>();
  const metricNames = new Map<string, string>();
  for (const m of rows.metrics) {
    const map = metricsByService.get(m.service_id) ?? new Map<string, CompiledMetric>();
    metricsByService.set(m.service_id, map);
    map.set(m.id, { id: m.id, systemName: m.system_name, parentId: m.parent_id });
    metricNames.set(m.id, m.system_name);
  }
  const rulesByService = new Map<string, CatalogRows['rules']>();
  for (const r of rows.rules) {
    const list = rulesByService.get(r.service_id) ?? [];
    list.push(r);
    rulesByService.set(r.service_id, list);
  }

  const services: CompiledService[] = [];
  for (const s of rows.services) {
    let production: Upstream;
    let sandbox: Upstream | null;
    try {
      production = parseUpstream(s.upstream_production);
      // no sandbox upstream: sandbox calls are refused, never sent to production
      sandbox = s.upstream_sandbox ? parseUpstream(s.upstream_sandbox) : null;
    } catch {
      problems.push({ entity: 'service', id: s.id, message: 'upstream is not a valid URL' });
      continue;
    }
    const authMode = oneOf<AuthMode>(s.auth_mode, ['user_key', 'app_id_app_key', 'oauth2'], 'user_key');
    const credentialsLocation = oneOf(s.credentials_location, ['header', 'query'] as const, 'header');
    const credentials = credentialNames(authMode, credentialsLocation, {
      user: s.user_key_name,
      appId: s.app_id_name,
      appKey: s.app_key_name,
      forwardBearerToken: s.forward_bearer_token === 1,
    });
    services.push({
      id: s.id,
      systemName: s.system_name,
      authMode,
      credentialsLocation,
      skipHeaders: new Set([...gatewayOwnedHeaders, ...credentials.headers]),
      credentialParams: credentials.params,
      userKeyName: s.user_key_name,
      appIdName: s.app_id_name,
      appKeyName: s.app_key_name,
      userKeyHeader: s.user_key_name.toLowerCase(),
      appIdHeader: s.app_id_name.toLowerCase(),
      appKeyHeader: s.app_key_name.toLowerCase(),
      secretToken: s.secret_token ? s.secret_token : null,
      forwardBearerToken: authMode === 'oauth2' && s.forward_bearer_token === 1,
      host: s.gateway_host.trim().toLowerCase(),
      pathPrefix: normalizePrefix(s.gateway_path_prefix),
      limiterMode: oneOf(s.limiter_mode, ['strict', 'batched'], 'strict'),
      failureMode: oneOf(s.limiter_failure_mode, ['open', 'closed'], 'open'),
      maxBodyBytes: s.max_body_bytes,
      production,
      sandbox,
      rules: compileRules(
        (rulesByService.get(s.id) ?? []).map((r) => ({
          id: r.id,
          httpMethod: r.http_method,
          pattern: r.pattern,
          metricId: r.metric_id,
          delta: r.delta,
          position: r.position,
          last: r.last === 1,
        })),
      ),
      metrics: metricsByService.get(s.id) ?? new Map(),
    });
  }

  const plans = new Map<string, CompiledPlan>();
  const disabledByPlan = new Map<string, Set<string>>();
  for (const d of rows.disabled) {
    const set = disabledByPlan.get(d.plan_id) ?? new Set<string>();
    set.add(d.metric_id);
    disabledByPlan.set(d.plan_id, set);
  }
  const limitsByPlan = new Map<string, Map<string, CompiledLimit[]>>();
  for (const l of rows.limits) {
    if (!isPeriod(l.period)) {
      problems.push({ entity: 'plan_limit', id: l.id, message: `unknown period ${l.period}` });
      continue;
    }
    const scope = l.scope === 'end_user' ? 'end_user' : 'application';
    const byMetric = limitsByPlan.get(l.plan_id) ?? new Map<string, CompiledLimit[]>();
    limitsByPlan.set(l.plan_id, byMetric);
    const list = byMetric.get(l.metric_id) ?? [];
    byMetric.set(l.metric_id, list);
    const metricName = metricNames.get(l.metric_id) ?? l.metric_id;
    list.push({
      metricId: l.metric_id,
      period: l.period,
      value: Number(l.value),
      scope,
      metricName,
      policyName: `${metricName}-${l.period}${scope === 'end_user' ? '-end-user' : ''}`,
    });
  }
  // A service's end-user limits apply to every plan of the service that has no end-user limit of its own on the
  // same metric and period; where the end user is named comes from the plan, else from the service.
  const serviceLimits = new Map<string, CompiledLimit[]>();
  for (const l of rows.serviceEndUserLimits ?? []) {
    if (!isPeriod(l.period)) {
      problems.push({ entity: 'service_end_user_limit', id: l.id, message: `unknown period ${l.period}` });
      continue;
    }
    const metricName = metricNames.get(l.metric_id) ?? l.metric_id;
    const list = serviceLimits.get(l.service_id) ?? [];
    serviceLimits.set(l.service_id, list);
    list.push({
      metricId: l.metric_id,
      period: l.period,
      value: Number(l.value),
      scope: 'end_user',
      metricName,
      policyName: `${metricName}-${l.period}-end-user`,
    });
  }
  const endUserKeyOf = new Map(
    rows.services.map((s) => [s.id, { source: s.end_user_key_source, name: s.end_user_key_name.trim() }]),
  );
  for (const p of rows.plans) {
    const own = p.end_user_key_name.trim();
    const serviceKey = endUserKeyOf.get(p.service_id);
    const key =
      own !== ''
        ? { source: p.end_user_key_source, name: own }
        : serviceKey && serviceKey.name !== ''
          ? serviceKey
          : null;
    let limits = limitsByPlan.get(p.id) ?? new Map<string, CompiledLimit[]>();
    const inherited = serviceLimits.get(p.service_id) ?? [];
    if (inherited.length > 0) {
      limits = new Map([...limits].map(([metricId, list]) => [metricId, [...list]]));
      for (const l of inherited) {
        const list = limits.get(l.metricId) ?? [];
        if (list.some((x) => x.scope === 'end_user' && x.period === l.period)) continue;
        list.push(l);
        limits.set(l.metricId, list);
      }
    }
    plans.set(p.id, {
      id: p.id,
      serviceId: p.service_id,
      disabled: disabledByPlan.get(p.id) ?? new Set(),
      limits,
      endUser:
        key === null
          ? null
          : {
              source: key.source === 'claim' ? 'claim' : 'header',
              name: key.source === 'claim' ? key.name : key.name.toLowerCase(),
            },
    });
  }

  // host-specific first, then longest prefix first: the most specific service wins
  const ordered = [...services].sort(
    (a, b) => Number(b.host !== '') - Number(a.host !== '') || b.pathPrefix.length - a.pathPrefix.length,
  );
  const origins = new Set<string>();
  for (const s of services) {
    origins.add(s.production.origin);
    if (s.sandbox !== null) origins.add(s.sandbox.origin);
  }

  return {
    problems,
    snapshot: {
      services,
      plans,
      origins,
      route(host: string, path: string): RouteMatch | null {
        for (const service of ordered) {
          if (service.host !== '' && service.host !== host) continue;
          const prefix = service.pathPrefix;
          if (prefix === '') return { service, path };
          if (
            path.startsWith(prefix) &&
            (path.length === prefix.length || path.charCodeAt(prefix.length) === 47)
          ) {
            return { service, path: path.length === prefix.length ? '/' : path.slice(prefix.length) };
          }
        }
        return null;
      },
    },
  };
}
