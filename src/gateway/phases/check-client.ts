import { type Denial, deny } from '../denials.js';
import type { RequestContext } from '../request-context.js';

/** Phase 3, check client: the application is live, its account not held, and the caller's address allowed. */
export function checkClient(ctx: RequestContext): Denial | null {
  const app = ctx.app!;
  if (app.state !== 'live')
    return deny(app.state === 'pending' ? 'application_pending' : 'application_suspended');
  if (app.accountState === 'suspended') return deny('account_suspended');
  if (app.accountState === 'pending') return deny('account_pending');
  if (app.allowlist !== null && !app.allowlist.allows(ctx.clientIp)) return deny('ip_not_allowed');
  return null;
}
