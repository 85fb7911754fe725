import { type Denial, deny } from '../denials.js';
import { matchRules } from '../mapping-rules.js';
import type { RequestContext } from '../request-context.js';

/** Phase 4, map: mapping rules turn the request into metric increments; a method also counts on its parent (hits). */
export function map(ctx: RequestContext): Denial | null {
  const service = ctx.service!;
  const usage = matchRules(service.rules, ctx.method, ctx.path, ctx.rawQuery, ctx.matched);
  if (usage.length === 0) return deny('no_mapping_rule');
  const direct = usage.length;
  for (let i = 0; i < direct; i++) {
    const m = usage[i]!;
    const parentId = service.metrics.get(m.metricId)?.parentId;
    if (!parentId) continue;
    const parent = usage.find((u) => u.metricId === parentId);
    if (parent) parent.delta += m.delta;
    else usage.push({ metricId: parentId, delta: m.delta });
  }
  ctx.usage = usage;
  // RFC 6750 §3.1: a valid token without the scope the request needs is refused with insufficient_scope
  const missing = ctx.missingScope?.(usage, service) ?? null;
  if (missing !== null) return deny('insufficient_scope', `The access token lacks the scope "${missing}".`);
  return null;
}
