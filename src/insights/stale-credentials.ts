/**
 * Dormant keys (issue 10, "credentials never used or unused for N days"): an active key of a live application
 * that no call used for `dormantDays` (never, for a key at least that old). A key nobody uses is a secret lying
 * around for nothing: the advice is to revoke it. The gateway marks a key used with the usage flush
 * (`credentials.last_used_at`, migration 0014), so a call with the key — or revoking it — ends the finding at the
 * next run. OAuth client secrets are left out: they are used at the token endpoint, which does not mark them.
 */
import type { Detection } from './detectors.js';
import { selectStaleCredentials } from './insights.store.js';
import type { InsightSettings } from './settings.js';

const DAY = 86_400_000;

/** The subject prefix of a dormant key's finding (`key trk_ab12cd…`). */
export const KEY_SUBJECT_PREFIX = 'key ';

/**
 * One detection per dormant key of the service's live applications, except those of `quietApplications` (an
 * application dormant as a whole has its own finding, which already says to revoke its keys).
 */
export async function detectStaleCredentials(
  db: Parameters<typeof selectStaleCredentials>[0],
  serviceId: string,
  settings: InsightSettings,
  now: number,
  quietApplications: ReadonlySet<string> = new Set(),
): Promise<Detection[]> {
  const before = new Date(now - settings.dormantDays * DAY).toISOString();
  const out: Detection[] = [];
  for (const c of await selectStaleCredentials(db, serviceId, before)) {
    if (quietApplications.has(c.application_id)) continue;
    const key = `${c.display_prefix}…`;
    const since = (c.last_used_at ?? c.created_at).slice(0, 10);
    out.push({
      applicationId: c.application_id,
      accountId: c.account_id,
      kind: 'dormant',
      subject: `${KEY_SUBJECT_PREFIX}${key}`,
      severity: 'low',
      numbers: {
        credentialId: c.id,
        key,
        days: settings.dormantDays,
        lastUsed: c.last_used_at ?? '',
        created: c.created_at,
      },
      advice:
        c.last_used_at === null
          ? `Revoke key ${key}: it was created on ${since} and never used. A key nobody uses is a secret to ` +
            'leak for nothing; make a new one when you need it.'
          : `Revoke key ${key}, unused since ${since} (${settings.dormantDays} days or more). If another key ` +
            'replaced it, nothing needs it any more; a key nobody uses is a secret to leak for nothing.',
    });
  }
  return out;
}
