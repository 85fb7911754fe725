import { type Denial, deny } from '../denials.js';
import type { RequestContext } from '../request-context.js';
import { normalizePath } from '../request-path.js';

/**
 * Phase 1, route: the path in its normal form (see request-path.ts), then which service this request is for, by
 * Host and path prefix. Every later phase, and the upstream, sees the normal form only.
 */
export function route(ctx: RequestContext): Denial | null {
  const path = normalizePath(ctx.rawPath);
  if (path === null) return deny('path_invalid');
  const match = ctx.snapshot.route(ctx.host, path);
  if (!match) return deny('service_not_found');
  ctx.service = match.service;
  ctx.path = match.path;
  return null;
}
