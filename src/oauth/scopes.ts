/**
 * Scopes of a service are the system names of its metrics and methods (`hits`, `search`, …). A plan allows the
 * scopes of the metrics it does not disable; a token carries a subset (RFC 6749 §3.3). Holding a metric's scope
 * grants its methods too (`hits` covers every method), holding a method's scope grants that method only.
 */
import { getPlan, listMetrics } from '../catalog/index.js';
import type { Executor } from '../store/index.js';

export interface ScopeInfo {
  name: string;
  friendlyName: string;
  description: string;
}

/** The scopes a plan allows, in catalogue order. */
export async function planScopes(db: Executor, serviceId: string, planId: string): Promise<ScopeInfo[]> {
  const [metrics, plan] = await Promise.all([listMetrics(db, serviceId), getPlan(db, planId)]);
  const disabled = new Set(plan.disabledMetricIds);
  return metrics
    .filter((m) => !disabled.has(m.id) && !(m.parentId !== null && disabled.has(m.parentId)))
    .map((m) => ({ name: m.systemName, friendlyName: m.friendlyName, description: m.description }));
}

/** A metric as the gateway's snapshot knows it. */
export interface ScopedMetric {
  readonly systemName: string;
  readonly parentId: string | null;
}

/**
 * Whether a token's scopes cover what a request maps to; returns the first scope that is missing, or null.
 * A metric that is only counted because one of its methods was called is covered by that method's scope.
 * @example missingScope(new Set(['search']), ctx.usage, service.metrics) // null when every metric is covered
 */
export function missingScope(
  scopes: ReadonlySet<string>,
  usage: readonly { metricId: string }[],
  metrics: ReadonlyMap<string, ScopedMetric>,
): string | null {
  const parentsOfUsed = new Set<string>();
  for (const u of usage) {
    const parentId = metrics.get(u.metricId)?.parentId;
    if (parentId) parentsOfUsed.add(parentId);
  }
  for (const u of usage) {
    if (parentsOfUsed.has(u.metricId)) continue;
    const metric = metrics.get(u.metricId);
    if (metric === undefined) continue;
    if (scopes.has(metric.systemName)) continue;
    const parent = metric.parentId === null ? undefined : metrics.get(metric.parentId);
    if (parent !== undefined && scopes.has(parent.systemName)) continue;
    return metric.systemName;
  }
  return null;
}
