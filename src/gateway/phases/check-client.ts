import { type Denial, deny } from '../denials.js';
import type { RequestContext } from '../request-context.js';

/**
 * Phase 3, check client: the application is live, its account not held, and the caller's address allowed. The
 * address is `ctx.clientIp`, the one rule of `kernel/client-address.ts`: the socket's, or behind a trusted proxy
 * (`TRELLIS_TRUSTED_PROXIES`) the first untrusted hop of `X-Forwarded-For`. A sandbox application of a
 * service without a sandbox upstream is refused here (issue 11).
 */
export function checkClient(ctx: RequestContext): Denial | null {
  const app = ctx.app!;
  if (app.state !== 'live')
    return deny(app.state === 'pending' ? 'application_pending' : 'application_suspended');
  if (app.accountState === 'suspended') return deny('account_suspended');
  if (app.accountState === 'pending') return deny('account_pending');
  if (app.allowlist !== null && !app.allowlist.allows(ctx.clientIp)) return deny('ip_not_allowed');
  // a sandbox credential never reaches the production upstream: no sandbox, no call
  if (app.environment === 'sandbox' && ctx.service!.sandbox === null) return deny('sandbox_unavailable');
  return null;
}
