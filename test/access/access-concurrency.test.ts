/**
 * Two control processes on one database, each handling a request for the same entity at the same moment: a
 * check and its write are one decision, so exactly one of the requests wins and the others are refused with
 * a 409 code, whatever the interleaving. The requests overlap on PostgreSQL (a pool of connections); SQLite runs
 * one transaction at a time and must give the same answers. A read-merge-write (custom fields, the plan an
 * application moves from) reads under its row's lock, so no write is made from a value another one replaced, and
 * a check over other rows (an account keeps an admin) is made under the lock of the row they belong to, or of an
 * advisory lock when no row owns them (the provider keeps an admin user).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  addApplicationKey,
  changeApplicationPlan,
  createAccount,
  createAdminToken,
  createAdminUser,
  createApplication,
  createCustomField,
  createUser,
  declineApplicationPlan,
  deleteAdminUser,
  deleteUser,
  getAccount,
  getApplication,
  getUser,
  listAdminUsers,
  maxActiveKeys,
  requestApplicationPlan,
  revokeAdminToken,
  revokeApplicationKey,
  transitionAccount,
  transitionApplication,
  updateAccount,
  updateApplication,
  updateUser,
} from '../../src/access/index.js';
import { createPlan, createService } from '../../src/catalog/index.js';
import { type ChangeDeps, systemActor } from '../../src/events/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { atOnce, linedUpAtCommit, linedUpAtOnce, times, warmPool } from '../support/races.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';

describe.each(dialects)('access changes made at once (%s)', (dialect) => {
  let store: TestStore;
  let deps: ChangeDeps;
  let serviceId = '';
  let openPlan = '';
  let approvalPlan = '';
  /** One custom field per PATCH of the custom-field tests, defined for applications, accounts and users. */
  const fieldNames = ['region', 'tier', 'team', 'size'];
  const eachFieldSet = Object.fromEntries(fieldNames.map((name) => [name, `${name}-value`]));

  beforeAll(async () => {
    store = await freshStore(dialect);
    deps = { db: store.db, clock: new ManualClock(Date.UTC(2026, 5, 1, 12)) };
    serviceId = (
      await createService(deps, systemActor, {
        name: 'Pay',
        systemName: 'pay',
        upstreamProduction: 'https://pay.test',
      })
    ).id;
    openPlan = (
      await createPlan(deps, systemActor, serviceId, { name: 'Open', systemName: 'open', state: 'published' })
    ).id;
    approvalPlan = (
      await createPlan(deps, systemActor, serviceId, {
        name: 'Vetted',
        systemName: 'vetted',
        state: 'published',
        approvalRequired: true,
      })
    ).id;
    for (const target of ['application', 'account', 'user'] as const)
      for (const name of fieldNames)
        await createCustomField(deps, systemActor, { target, name, label: name.toUpperCase() });
  });
  afterAll(() => store.cleanup());
  beforeEach(() => warmPool(store));

  const eventsOf = async (type: string, entityId: string) =>
    (
      await store.db
        .selectFrom('events')
        .select('id')
        .where('type', '=', type)
        .where('entity_id', '=', entityId)
        .execute()
    ).length;

  const newApplication = async (name: string, planId: string) => {
    const account = await createAccount(deps, systemActor, { name: `${name} Co`, state: 'approved' });
    return createApplication(deps, systemActor, { accountId: account.id, serviceId, planId, name });
  };

  it('adds keys up to the limit and no further when many are asked for at once', async () => {
    const app = await newApplication('Keys', openPlan);
    const { ok, refused } = await atOnce(times(20, () => addApplicationKey(deps, systemActor, app.id)));
    // the application was created with one key
    expect(ok).toHaveLength(maxActiveKeys - 1);
    expect(refused).toEqual(Array(20 - (maxActiveKeys - 1)).fill('limit_reached'));
    const active = (await getApplication(store.db, app.id)).credentials.filter((c) => c.state === 'active');
    expect(active).toHaveLength(maxActiveKeys);
  });

  it('approves a pending application once when it is approved twice at once', async () => {
    const app = await newApplication('Twice', approvalPlan);
    expect(app.state).toBe('pending');
    const { ok, refused } = await atOnce(
      times(6, () => transitionApplication(deps, systemActor, app.id, 'approve')),
    );
    expect(ok.map((a) => a.state)).toEqual(['live']);
    expect(refused).toEqual(Array(5).fill('invalid_state'));
    expect(await eventsOf('application.approved', app.id)).toBe(1);
    expect((await getApplication(store.db, app.id)).state).toBe('live');
  });

  it('suspends once when suspended twice at once; a later approval names the state it found', async () => {
    const app = await newApplication('Raced', approvalPlan);
    const { ok, refused } = await atOnce([
      () => transitionApplication(deps, systemActor, app.id, 'suspend'),
      () => transitionApplication(deps, systemActor, app.id, 'suspend'),
    ]);
    expect([ok.length, refused]).toEqual([1, ['invalid_state']]);
    expect(await eventsOf('application.suspended', app.id)).toBe(1);
    await expect(transitionApplication(deps, systemActor, app.id, 'approve')).rejects.toThrow(
      'An application that is suspended cannot be approved.',
    );
  });

  it('approves a pending account once when it is approved twice at once', async () => {
    const account = await createAccount(deps, systemActor, { name: 'Waiting Co', state: 'pending' });
    const { ok, refused } = await atOnce(
      times(6, () => transitionAccount(deps, systemActor, account.id, 'approve')),
    );
    expect(ok.map((a) => a.state)).toEqual(['approved']);
    expect(refused).toEqual(Array(5).fill('invalid_state'));
    expect(await eventsOf('account.approved', account.id)).toBe(1);
  });

  it('revokes a key once when it is revoked twice at once', async () => {
    const app = await newApplication('Revoked', openPlan);
    const credentialId = app.secret.credentialId;
    const { ok, refused } = await atOnce(
      times(4, () => revokeApplicationKey(deps, systemActor, app.id, credentialId)),
    );
    expect([ok.length, refused]).toEqual([1, Array(3).fill('invalid_state')]);
    expect(await eventsOf('credential.revoked', credentialId)).toBe(1);
  });

  it('revokes an admin token once when it is revoked twice at once', async () => {
    const token = await createAdminToken(deps, systemActor, { name: 'Twice', scope: 'read' });
    const { ok, refused } = await linedUpAtCommit(
      store,
      times(2, () => revokeAdminToken(deps, systemActor, token.id)),
    );
    expect([ok.length, refused]).toEqual([1, ['invalid_state']]);
    expect(await eventsOf('admin_token.revoked', token.id)).toBe(1);
  });

  it('keeps every custom field of an application when PATCHes setting different ones are made at once', async () => {
    const app = await newApplication('Fields', openPlan);
    const { ok, refused } = await linedUpAtOnce(
      store,
      'applications',
      app.id,
      fieldNames.map(
        (name) => () =>
          updateApplication(deps, systemActor, app.id, { customFields: { [name]: `${name}-value` } }),
      ),
    );
    expect([ok.length, refused]).toEqual([fieldNames.length, []]);
    expect((await getApplication(store.db, app.id)).customFields).toEqual(eachFieldSet);
  });

  it('keeps every custom field of an account when PATCHes setting different ones are made at once', async () => {
    const account = await createAccount(deps, systemActor, { name: 'Fields Co' });
    const { ok, refused } = await linedUpAtOnce(
      store,
      'accounts',
      account.id,
      fieldNames.map(
        (name) => () =>
          updateAccount(deps, systemActor, account.id, { customFields: { [name]: `${name}-value` } }),
      ),
    );
    expect([ok.length, refused]).toEqual([fieldNames.length, []]);
    expect((await getAccount(store.db, account.id)).customFields).toEqual(eachFieldSet);
  });

  it('keeps every custom field of a user when PATCHes setting different ones are made at once', async () => {
    const account = await createAccount(deps, systemActor, { name: 'People Co' });
    const user = await createUser(deps, systemActor, account.id, {
      email: 'fields@people.test',
      name: 'Ada',
    });
    const { ok, refused } = await linedUpAtOnce(
      store,
      'users',
      user.id,
      fieldNames.map(
        (name) => () => updateUser(deps, systemActor, user.id, { customFields: { [name]: `${name}-value` } }),
      ),
    );
    expect([ok.length, refused]).toEqual([fieldNames.length, []]);
    expect((await getUser(store.db, user.id)).customFields).toEqual(eachFieldSet);
  });

  it('chains the plan changes of an application made at once: each moves from the plan the one before left', async () => {
    const app = await newApplication('Mover', openPlan);
    const targets: string[] = [];
    for (const name of ['Silver', 'Gold', 'Platinum'])
      targets.push(
        (
          await createPlan(deps, systemActor, serviceId, {
            name,
            systemName: name.toLowerCase(),
            state: 'published',
          })
        ).id,
      );
    const { ok, refused } = await linedUpAtOnce(
      store,
      'applications',
      app.id,
      targets.map((planId) => () => changeApplicationPlan(deps, systemActor, app.id, planId)),
    );
    expect([ok.length, refused]).toEqual([targets.length, []]);
    // the events in the order their changes committed (the outbox's seq)
    const moves = (
      await store.db
        .selectFrom('events')
        .select('payload')
        .where('type', '=', 'application.plan_changed')
        .where('entity_id', '=', app.id)
        .orderBy('seq')
        .execute()
    ).map((e) => JSON.parse(e.payload) as { fromPlanId: string; toPlanId: string });
    expect(moves.map((m) => m.toPlanId).sort()).toEqual([...targets].sort());
    const chain = [openPlan, ...moves.map((m) => m.toPlanId)];
    expect(moves.map((m) => m.fromPlanId)).toEqual(chain.slice(0, -1));
    expect((await getApplication(store.db, app.id)).planId).toBe(chain.at(-1));
  });

  it('declines a plan request once when it is declined twice at once', async () => {
    const app = await newApplication('Declined', openPlan);
    expect((await requestApplicationPlan(deps, systemActor, app.id, approvalPlan)).requestedPlanId).toBe(
      approvalPlan,
    );
    const { ok, refused } = await linedUpAtOnce(
      store,
      'applications',
      app.id,
      times(2, () => declineApplicationPlan(deps, systemActor, app.id)),
    );
    expect([ok.length, refused]).toEqual([1, ['invalid_state']]);
    expect(await eventsOf('application.plan_change_declined', app.id)).toBe(1);
    expect(await getApplication(store.db, app.id)).toMatchObject({ planId: openPlan, requestedPlanId: null });
  });

  const demote = (id: string) => () => updateUser(deps, systemActor, id, { role: 'member' });
  const remove = (id: string) => () => deleteUser(deps, systemActor, id);
  it.each([
    ['demote each other', [demote, demote]],
    ['delete each other', [remove, remove]],
    ['demote and delete each other', [demote, remove]],
  ] as const)('keeps an admin on an account whose two admins %s at once', async (pair, [first, second]) => {
    const account = await createAccount(deps, systemActor, { name: `Pair Co (${pair})` });
    const [ada, bob] = [
      await createUser(deps, systemActor, account.id, { email: `ada.${account.id}@pair.test`, name: 'Ada' }),
      await createUser(deps, systemActor, account.id, { email: `bob.${account.id}@pair.test`, name: 'Bob' }),
    ];
    expect([ada.role, bob.role]).toEqual(['admin', 'admin']);
    const { ok, refused } = await linedUpAtCommit<unknown>(store, [first(ada.id), second(bob.id)]);
    expect([ok.length, refused]).toEqual([1, ['invalid_state']]);
    const admins = await store.db
      .selectFrom('users')
      .select('id')
      .where('account_id', '=', account.id)
      .where('role', '=', 'admin')
      .execute();
    expect(admins).toHaveLength(1);
  });

  it('keeps an admin user when the last two delete each other at once', async () => {
    const admin = { name: 'Admin', password: 'long enough password' };
    const [ada, bob] = [
      await createAdminUser(deps, systemActor, { ...admin, email: 'ada@provider.test' }),
      await createAdminUser(deps, systemActor, { ...admin, email: 'bob@provider.test' }),
    ];
    const { ok, refused } = await linedUpAtCommit(
      store,
      [ada, bob].map((a) => () => deleteAdminUser(deps, systemActor, a.id)),
    );
    expect([ok.length, refused]).toEqual([1, ['invalid_state']]);
    expect(await listAdminUsers(store.db)).toHaveLength(1);
  });
});
