/**
 * The provider's portal settings, favicon and mail templates written at once, as by two control processes on one
 * database: the first writes of a row all succeed (the last to commit wins) instead of all but one failing on its
 * key (409), and PATCHes of different settings at once keep every one. SQLite and PostgreSQL; on PostgreSQL each
 * write is stopped at its commit until all have been made (`linedUpAtCommit`), so each looked for the row before
 * any was committed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPortalSettings, updatePortalSettings } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import { getUploadedFavicon } from '../../src/portal/index.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { linedUpAtCommit, warmPool } from '../support/races.js';
import { dialects } from '../support/stores.js';

/** A PNG's signature followed by `n` bytes: an image the favicon accepts, of a size of its own. */
const pngOfSize = (n: number) =>
  Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(n, n)]);

/** Four PATCHes, each setting a different portal setting. */
const patches = [
  { name: 'Raced Portal' },
  { logoUrl: 'https://cdn.provider.example/logo.png' },
  { primaryColor: '#123456' },
  { contactEmail: 'api@provider.example' },
];
const eachPatched = Object.assign({}, ...patches);

describe.each(dialects)('portal settings written at once (%s)', (dialect) => {
  let h: ControlHarness;

  beforeAll(async () => {
    h = await startControl(dialect);
    await warmPool(h.store);
  }, 60_000);
  afterAll(() => h.close());

  const payloadsOf = async (type: string) =>
    (
      await h.store.db
        .selectFrom('events')
        .select('payload')
        .where('type', '=', type)
        .orderBy('seq')
        .execute()
    ).map((e) => JSON.parse(e.payload) as Record<string, unknown>);

  it('answers 200 to every first favicon PUT made at once; the last to commit wins', async () => {
    const sizes = [10, 20, 30, 40];
    const { ok, refused } = await linedUpAtCommit(
      h.store,
      sizes.map(
        (n) => () =>
          h.call('PUT', '/admin/api/portal-settings/favicon', { image: pngOfSize(n).toString('base64') }),
      ),
    );
    expect(refused).toEqual([]);
    expect(ok.map((r) => r.statusCode)).toEqual(sizes.map(() => 200));
    const updated = await payloadsOf('portal.favicon_updated');
    expect(updated).toHaveLength(sizes.length);
    const uploaded = await getUploadedFavicon(h.store.db);
    expect(uploaded?.bytes.length).toBe(updated.at(-1)?.size);
  });

  it('answers 200 to every first PUT of a mail template made at once; the last to commit wins', async () => {
    const subjects = ['One', 'Two', 'Three', 'Four'].map((n) => `Welcome, take ${n}`);
    const { ok, refused } = await linedUpAtCommit(
      h.store,
      subjects.map(
        (subject) => () =>
          h.call('PUT', '/admin/api/mail-templates/signup', { subject, body: `${subject}: hello.` }),
      ),
    );
    expect(refused).toEqual([]);
    expect(ok.map((r) => r.statusCode)).toEqual(subjects.map(() => 200));
    const updated = await payloadsOf('mail_template.updated');
    expect(updated).toHaveLength(subjects.length);
    const last = (updated.at(-1) as { template: { subject: string } }).template;
    const stored = (await h.call('GET', '/admin/api/mail-templates/signup')).json();
    expect(stored).toMatchObject({
      customized: true,
      subject: last.subject,
      body: `${last.subject}: hello.`,
    });
  });

  it('answers 200 to the first PATCHes of the settings made at once and keeps every setting', async () => {
    const { ok, refused } = await linedUpAtCommit(
      h.store,
      patches.map((patch) => () => h.call('PATCH', '/admin/api/portal-settings', patch)),
    );
    expect(refused).toEqual([]);
    expect(ok.map((r) => r.statusCode)).toEqual(patches.map(() => 200));
    expect(await getPortalSettings(h.store.db)).toMatchObject(eachPatched);
  });

  it('keeps every setting when PATCHes of stored settings are made at once', async () => {
    const deps = { db: h.store.db, clock: h.clock };
    await updatePortalSettings(deps, systemActor, {
      name: 'Before',
      logoUrl: '',
      primaryColor: '#000000',
      contactEmail: '',
      accentColor: '#abcdef',
    });
    const { ok, refused } = await linedUpAtCommit(
      h.store,
      patches.map((patch) => () => updatePortalSettings(deps, systemActor, patch)),
    );
    expect([ok.length, refused]).toEqual([patches.length, []]);
    expect(await getPortalSettings(h.store.db)).toMatchObject({ ...eachPatched, accentColor: '#abcdef' });
  });
});
