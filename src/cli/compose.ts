/**
 * The composition root of the control process: which contexts mount on the control server. Each context
 * exports a module; adding a context is one line here.
 */
import { consoleModule } from '../console/index.js';
import type { AdminApiModule, ControlModule } from '../control/index.js';
import { goliveAdminRoutes } from '../golive/index.js';
import { insightsAdminRoutes } from '../insights/index.js';
import { mailAdminRoutes } from '../mail/index.js';
import { oauthAdminRoutes, oauthControlModule } from '../oauth/index.js';
import { brandAdminRoutes, portalModule } from '../portal/index.js';
import { webhookAdminRoutes } from '../webhooks/index.js';

/** Routes added to the management API under /admin/api (token-guarded). */
export const adminApiModules: AdminApiModule[] = [
  oauthAdminRoutes,
  webhookAdminRoutes,
  insightsAdminRoutes,
  goliveAdminRoutes,
  mailAdminRoutes,
  brandAdminRoutes,
];

/** Modules mounted at the root of the control server: portal `/`, console `/admin`, OAuth `/oauth`. */
export const controlModules: ControlModule[] = [
  portalModule(),
  consoleModule(),
  oauthControlModule(),
  // the insights run in the worker role (composeWorkerRole in roles.ts), not in the control process
];
