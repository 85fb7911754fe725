/** The provider's portal settings (branding, signup mode), kept as one JSON document in `settings`. */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { isoNow } from '../kernel/index.js';
import { type Executor, lockKey } from '../store/index.js';
import { findSettingRow, upsertSettingRow } from './access.store.js';
import type { PortalSettings, PortalSettingsUpdate } from './schemas.js';

/**
 * The advisory lock of PATCHes of the portal settings on PostgreSQL ("trps"): there may be no row to lock yet,
 * and `settings` rows have no id for `lockRow`.
 */
const SETTINGS_LOCK_KEY = 0x74727073;

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
  const row = await findSettingRow(db, 'portal');
  return { ...defaultPortalSettings, ...(row ? (JSON.parse(row.value) as Partial<PortalSettings>) : {}) };
}

export async function updatePortalSettings(
  deps: ChangeDeps,
  actor: Actor,
  input: PortalSettingsUpdate,
): Promise<PortalSettings> {
  return runChange(deps, actor, async (tx, record) => {
    // the update is merged with the settings stored: PATCHes at once (two control processes) merge one after the
    // other, so none loses the settings another set, and the first ones do not collide on the row's key
    await lockKey(tx, SETTINGS_LOCK_KEY);
    const settings = { ...(await getPortalSettings(tx)), ...input };
    await upsertSettingRow(tx, 'portal', JSON.stringify(settings), isoNow(deps.clock));
    await record({
      type: 'portal_settings.updated',
      entityType: 'settings',
      entityId: 'portal',
      payload: { settings },
    });
    return settings;
  });
}
