/**
 * Showcase entries written at once, as by two control processes on one database: the first PUTs of an
 * application's entry all succeed (the last to commit wins), and a partner's consent given while the provider
 * writes the entry is kept with the provider's text. SQLite and PostgreSQL; on PostgreSQL the writes are lined up
 * behind the application's row (the insert of an entry checks its foreign key on it), so each has looked for the
 * entry before any commits. An entry deleted twice at once is deleted once: one event, and a 404 for the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, createApplication } from '../../src/access/index.js';
import { createPlan, createService } from '../../src/catalog/index.js';
import { type ChangeDeps, systemActor } from '../../src/events/index.js';
import { type ShowcaseEntry, getShowcaseEntry, setShowcaseConsent } from '../../src/portal/index.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { linedUpAtCommit, linedUpAtOnce, times } from '../support/races.js';
import { dialects } from '../support/stores.js';

describe.each(dialects)('showcase entries written at once (%s)', (dialect) => {
  let h: ControlHarness;
  let deps: ChangeDeps;
  let serviceId = '';
  let planId = '';

  beforeAll(async () => {
    h = await startControl(dialect);
    deps = { db: h.store.db, clock: h.clock };
    serviceId = (
      await createService(deps, systemActor, {
        name: 'Stories',
        systemName: 'stories',
        upstreamProduction: 'https://stories.test',
      })
    ).id;
    planId = (
      await createPlan(deps, systemActor, serviceId, { name: 'Open', systemName: 'open', state: 'published' })
    ).id;
  }, 60_000);
  afterAll(() => h.close());

  const newApplication = async (name: string) => {
    const account = await createAccount(deps, systemActor, { name: `${name} Co` });
    return createApplication(deps, systemActor, { accountId: account.id, serviceId, planId, name });
  };

  it('answers 200 to every first PUT of an entry made at once; the last to commit wins', async () => {
    const app = await newApplication('Raced Sync');
    const names = ['First', 'Second', 'Third', 'Fourth'];
    const { ok, refused } = await linedUpAtOnce(
      h.store,
      'applications',
      app.id,
      names.map(
        (name, i) => () =>
          h.call('PUT', `/admin/api/applications/${app.id}/showcase`, {
            featured: true,
            name,
            description: `Written by writer ${i}.`,
            position: i,
          }),
      ),
    );
    expect(refused).toEqual([]);
    expect(ok.map((r) => r.statusCode)).toEqual(names.map(() => 200));
    const written = await h.store.db
      .selectFrom('events')
      .select('payload')
      .where('type', '=', 'showcase_entry.updated')
      .where('entity_id', '=', app.id)
      .orderBy('seq')
      .execute();
    expect(written).toHaveLength(names.length);
    const last = (JSON.parse(written.at(-1)!.payload) as { entry: ShowcaseEntry }).entry;
    const entry = await getShowcaseEntry(h.store.db, app.id);
    expect(entry).toEqual(last);
    expect(names).toContain(entry.name);
    expect(entry.position).toBe(names.indexOf(entry.name));
  });

  it('keeps a consent given while the provider writes the first entry, and the provider’s text', async () => {
    const app = await newApplication('Consenting Sync');
    const { ok, refused } = await linedUpAtOnce<unknown>(h.store, 'applications', app.id, [
      async () =>
        (
          await h.call('PUT', `/admin/api/applications/${app.id}/showcase`, {
            featured: true,
            name: 'Consenting Sync for shops',
            description: 'Keeps shops in sync.',
          })
        ).statusCode,
      async () => (await setShowcaseConsent(deps, systemActor, app.id, true)).consent,
    ]);
    expect(refused).toEqual([]);
    expect(ok).toHaveLength(2);
    expect(ok).toEqual(expect.arrayContaining([200, true]));
    const entry = await getShowcaseEntry(h.store.db, app.id);
    expect(entry).toMatchObject({
      consent: true,
      featured: true,
      shown: true,
      name: 'Consenting Sync for shops',
      description: 'Keeps shops in sync.',
      position: 100,
    });
  });

  it('deletes an entry once when it is deleted twice at once: one 204 and one event, a 404 for the other', async () => {
    const app = await newApplication('Twice Removed');
    const put = await h.call('PUT', `/admin/api/applications/${app.id}/showcase`, {
      featured: true,
      name: 'Twice Removed',
      description: 'Removed twice.',
    });
    expect(put.statusCode).toBe(200);
    const { ok, refused } = await linedUpAtCommit(
      h.store,
      times(2, () => h.call('DELETE', `/admin/api/applications/${app.id}/showcase`)),
    );
    expect(refused).toEqual([]);
    expect(ok.map((r) => r.statusCode).sort()).toEqual([204, 404]);
    const deleted = await h.store.db
      .selectFrom('events')
      .select('id')
      .where('type', '=', 'showcase_entry.deleted')
      .where('entity_id', '=', app.id)
      .execute();
    expect(deleted).toHaveLength(1);
  });
});
