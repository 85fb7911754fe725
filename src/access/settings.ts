/** The provider's portal settings (branding, signup mode), kept as one JSON document in `settings`. */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { isoNow } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import type { PortalSettings, PortalSettingsUpdate } from './schemas.js';

export const defaultPortalSettings: PortalSettings = {
  name: 'Developer Portal',
  logoUrl: '',
  faviconUrl: '',
  primaryColor: '#1f6f5c',
  accentColor: '#e0a526',
  customCss: '',
  footerLinks: [],
  signupMode: 'open',
  senderAddress: '',
  contactEmail: '',
};

export async function getPortalSettings(db: Executor): Promise<PortalSettings> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', 'portal').executeTakeFirst();
  return { ...defaultPortalSettings, ...(row ? (JSON.parse(row.value) as Partial<PortalSettings>) : {}) };
}

export async function updatePortalSettings(
  deps: ChangeDeps,
  actor: Actor,
  input: PortalSettingsUpdate,
): Promise<PortalSettings> {
  return runChange(deps, actor, async (tx, record) => {
    const settings = { ...(await getPortalSettings(tx)), ...input };
    const value = JSON.stringify(settings);
    const now = isoNow(deps.clock);
    const exists = await tx
      .selectFrom('settings')
      .select('key')
      .where('key', '=', 'portal')
      .executeTakeFirst();
    if (exists)
      await tx.updateTable('settings').set({ value, updated_at: now }).where('key', '=', 'portal').execute();
    else await tx.insertInto('settings').values({ key: 'portal', value, updated_at: now }).execute();
    await record({
      type: 'portal_settings.updated',
      entityType: 'settings',
      entityId: 'portal',
      payload: { settings },
    });
    return settings;
  });
}
