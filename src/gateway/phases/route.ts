import { type Denial, deny } from '../denials.js';
import type { RequestContext } from '../request-context.js';

/** Phase 1, route: which service this request is for, by Host and path prefix. */
export function route(ctx: RequestContext): Denial | null {
  const match = ctx.snapshot.route(ctx.host, ctx.rawPath);
  if (!match) return deny('service_not_found');
  ctx.service = match.service;
  ctx.path = match.path;
  return null;
}
