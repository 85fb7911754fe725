/**
 * Mapping rules turn a request into metric increments, with the semantics of 3scale's APIcast
 * (https://docs.redhat.com/en/documentation/red_hat_3scale_api_management/2.15/html/administering_the_api_gateway/mapping-rules):
 * - a pattern matches the path as a prefix, unless it ends with `$`;
 * - `{name}` matches one path segment (anything but `/`, `?`, `&`, `=`), never `.` or `..` (paths reach the
 *   rules normalised, without dot segments, so this is a second line);
 * - parameters in a pattern's query string must be present in the request (`{name}` values match any value);
 * - rules are tried in `position` order, every matching rule adds its delta, and a matching rule marked `last`
 *   stops the matching;
 * - `HEAD` is matched by the `GET` rules (it asks for the same resource, RFC 9110 §9.3.2), unless the service has
 *   `HEAD` rules of its own: then by those. Every other method, `OPTIONS` included, by its own rules; `ANY` rules
 *   match every method.
 */

import { normalizePath } from './request-path.js';

export interface MappingRuleSource {
  /** The rule's id (`mr_…`): the route a call is counted under in usage (insights). */
  id?: string;
  httpMethod: string;
  pattern: string;
  metricId: string;
  delta: number;
  position: number;
  last: boolean;
}

export interface CompiledRule {
  /** The rule's id, '' when the source had none. */
  readonly id: string;
  /** Upper-case verb; `ANY` matches every verb. */
  readonly method: string;
  readonly path: RegExp;
  /** Query parameters the request must carry; a `null` value accepts any value. */
  readonly query: ReadonlyArray<readonly [string, string | null]>;
  readonly metricId: string;
  readonly delta: number;
  readonly last: boolean;
}

/** One segment, but not `.` or `..`: starts with no dot, or `.` and no dot, or `..` and at least one more. */
const SEGMENT = '(?:[^/?&=.][^/?&=]*|\\.[^/?&=.][^/?&=]*|\\.\\.[^/?&=]+)';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function compilePathPattern(pattern: string): RegExp {
  const exact = pattern.endsWith('$');
  const written = exact ? pattern.slice(0, -1) : pattern;
  // paths reach the rules in normal form (request-path.ts), so patterns are put in it too: `/v1/%7euser` matches
  // `/v1/~user`, `/a//b` matches `/a/b`
  const body = normalizePath(written) ?? written;
  let source = '^';
  let i = 0;
  while (i < body.length) {
    const open = body.indexOf('{', i);
    if (open === -1) {
      source += escapeRegExp(body.slice(i));
      break;
    }
    const close = body.indexOf('}', open);
    if (close === -1) {
      source += escapeRegExp(body.slice(i));
      break;
    }
    source += escapeRegExp(body.slice(i, open)) + SEGMENT;
    i = close + 1;
  }
  return new RegExp(exact ? `${source}$` : source);
}

/** Compiles one rule; the pattern's query part becomes required parameters. */
export function compileRule(rule: MappingRuleSource): CompiledRule {
  const q = rule.pattern.indexOf('?');
  const pathPattern = q === -1 ? rule.pattern : rule.pattern.slice(0, q);
  const query: [string, string | null][] = [];
  if (q !== -1) {
    for (const [name, value] of new URLSearchParams(rule.pattern.slice(q + 1).replace(/\$$/, ''))) {
      query.push([name, /^\{[^}]*\}$/.test(value) ? null : value]);
    }
  }
  return {
    id: rule.id ?? '',
    method: rule.httpMethod.toUpperCase() === '*' ? 'ANY' : rule.httpMethod.toUpperCase(),
    path: compilePathPattern(pathPattern),
    query,
    metricId: rule.metricId,
    delta: rule.delta,
    last: rule.last,
  };
}

/** Compiles a service's rules, in matching order (position, then the order given). */
export function compileRules(rules: readonly MappingRuleSource[]): CompiledRule[] {
  return [...rules].sort((a, b) => a.position - b.position).map(compileRule);
}

/** One metric and how much a request adds to it. */
export interface MetricDelta {
  metricId: string;
  delta: number;
}

/**
 * The metric increments of a request, in the order the metrics were first matched; empty when no rule matches.
 * `query` is parsed only when a matching rule asks for parameters.
 * @example matchRules(rules, 'GET', '/statuses/12.json', '') // [{ metricId: 'met_…', delta: 1 }]
 */
export function matchRules(
  rules: readonly CompiledRule[],
  method: string,
  path: string,
  rawQuery: string,
  /** When given, receives the id of the first rule that matched (the call's route in usage). */
  matched?: { ruleId: string },
): MetricDelta[] {
  const out: MetricDelta[] = [];
  let params: URLSearchParams | undefined;
  const verb = method === 'HEAD' && !rules.some((r) => r.method === 'HEAD') ? 'GET' : method;
  for (const rule of rules) {
    if (rule.method !== verb && rule.method !== 'ANY') continue;
    if (!rule.path.test(path)) continue;
    if (rule.query.length > 0) {
      params ??= new URLSearchParams(rawQuery);
      let ok = true;
      for (const [name, value] of rule.query) {
        const actual = params.get(name);
        if (actual === null || (value !== null && actual !== value)) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
    }
    if (matched !== undefined && matched.ruleId === '') matched.ruleId = rule.id;
    const existing = out.find((m) => m.metricId === rule.metricId);
    if (existing) existing.delta += rule.delta;
    else out.push({ metricId: rule.metricId, delta: rule.delta });
    if (rule.last) break;
  }
  return out;
}
