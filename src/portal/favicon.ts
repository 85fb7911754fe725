/**
 * The portal's favicon at `/favicon.ico` (issue 13): the image the provider uploaded, else the favicon URL of the
 * portal settings (a redirect), else Trellis's own. An upload is an image whose type is told by its first bytes
 * (PNG, ICO, GIF, JPEG, WebP — never SVG, which can carry script) and at most 64 KiB; it is kept in `settings`.
 */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { TrellisError, isoNow } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import { deleteSettingRow, findSettingRow, upsertSettingRow } from '../access/index.js';

export const maxFaviconBytes = 64 * 1024;
const settingsKey = 'portal_favicon';

/** Trellis's favicon when the provider has none: a trellis of three bars. */
export const defaultFavicon = {
  contentType: 'image/svg+xml',
  bytes: Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f6f5c"/><path d="M9 7v18M16 7v18M23 7v18M6 12h20M6 20h20" stroke="#fff" stroke-width="2.5" stroke-linecap="round"/></svg>',
  ),
};

const signatures: [string, (b: Buffer) => boolean][] = [
  [
    'image/png',
    (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
  ],
  ['image/x-icon', (b) => b.subarray(0, 4).equals(Buffer.from([0, 0, 1, 0]))],
  ['image/gif', (b) => b.subarray(0, 4).toString('latin1') === 'GIF8'],
  ['image/jpeg', (b) => b.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))],
  [
    'image/webp',
    (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP',
  ],
];

/** The image type of the bytes, or undefined when they are none of the accepted ones. */
export function faviconType(bytes: Buffer): string | undefined {
  return signatures.find(([, test]) => test(bytes))?.[0];
}

export interface Favicon {
  contentType: string;
  bytes: Buffer;
  updatedAt: string;
}

export async function getUploadedFavicon(db: Executor): Promise<Favicon | undefined> {
  const row = await findSettingRow(db, settingsKey);
  if (!row) return undefined;
  const stored = JSON.parse(row.value) as { contentType: string; data: string };
  return {
    contentType: stored.contentType,
    bytes: Buffer.from(stored.data, 'base64'),
    updatedAt: row.updated_at,
  };
}

/** Keeps an uploaded favicon; refuses what is not an accepted image (415) or is too large (413). */
export async function setFavicon(
  deps: ChangeDeps,
  actor: Actor,
  bytes: Buffer,
): Promise<{ contentType: string; size: number; updatedAt: string }> {
  if (bytes.length > maxFaviconBytes) {
    throw new TrellisError('body_too_large', `The favicon is larger than ${maxFaviconBytes / 1024} KiB.`);
  }
  const contentType = faviconType(bytes);
  if (!contentType) {
    throw new TrellisError(
      'unsupported_media_type',
      'The favicon must be a PNG, ICO, GIF, JPEG or WebP image.',
    );
  }
  return runChange(deps, actor, async (tx, record) => {
    const now = isoNow(deps.clock);
    const value = JSON.stringify({ contentType, data: bytes.toString('base64') });
    await upsertSettingRow(tx, settingsKey, value, now);
    const favicon = { contentType, size: bytes.length, updatedAt: now };
    await record({
      type: 'portal.favicon_updated',
      entityType: 'settings',
      entityId: 'portal',
      payload: favicon,
    });
    return favicon;
  });
}

/** Removes the uploaded favicon (the settings' URL, or Trellis's own, is used again). */
export async function deleteFavicon(deps: ChangeDeps, actor: Actor): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    if (await deleteSettingRow(tx, settingsKey)) {
      await record({
        type: 'portal.favicon_deleted',
        entityType: 'settings',
        entityId: 'portal',
        payload: {},
      });
    }
  });
}
