/**
 * The composition root of the control process: which contexts mount on the control server. Each context
 * exports a module; adding a context is one line here.
 */
import { consoleModule } from '../console/index.js';
import type { AdminApiModule, ControlModule } from '../control/index.js';
import { oauthAdminRoutes, oauthControlModule } from '../oauth/index.js';
import { portalModule } from '../portal/index.js';

/** Routes added to the management API under /admin/api (token-guarded). */
export const adminApiModules: AdminApiModule[] = [oauthAdminRoutes];

/** Modules mounted at the root of the control server: portal `/`, console `/admin`, OAuth `/oauth`. */
export const controlModules: ControlModule[] = [portalModule(), consoleModule(), oauthControlModule()];
