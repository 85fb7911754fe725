/** What `trellis start` does on an empty database: the first admin user, an admin API token, and the demo. */
import { randomBytes } from 'node:crypto';
import { createAdminToken, createAdminUser, listAdminUsers } from '../access/index.js';
import { listServices } from '../catalog/index.js';
import type { Config } from '../config/index.js';
import { type DemoSeed, seedDemo } from '../demo/index.js';
import { type ChangeDeps, systemActor } from '../events/index.js';

export interface Bootstrap {
  admin?: { email: string; password: string; generated: boolean };
  adminToken?: string;
  demo?: DemoSeed;
}

export async function bootstrap(
  deps: ChangeDeps,
  config: Config,
  demoUpstreamUrl: string,
): Promise<Bootstrap> {
  const out: Bootstrap = {};
  if ((await listAdminUsers(deps.db)).length === 0) {
    const generated = config.adminPassword === '';
    const password = generated ? randomBytes(12).toString('base64url') : config.adminPassword;
    const admin = await createAdminUser(deps, systemActor, {
      email: config.adminEmail,
      name: 'Admin',
      password,
    });
    out.admin = { email: admin.email, password, generated };
    out.adminToken = (
      await createAdminToken(deps, systemActor, {
        name: 'created by trellis start',
        scope: 'read_write',
        adminUserId: admin.id,
      })
    ).token;
  }
  if (config.demo && (await listServices(deps.db, { limit: 1 })).data.length === 0) {
    out.demo = await seedDemo(deps, systemActor, demoUpstreamUrl);
  }
  return out;
}
