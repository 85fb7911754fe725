/**
 * A bad day for the worker role (issue 9): the PostgreSQL it drains is stopped while it works, then started again.
 * The process must not die (a lost pooled or LISTEN connection is an 'error' event nobody may leave unheard), a
 * round that fails is tried again, and once the database is back the worker delivers what was written before and
 * after — woken by LISTEN/NOTIFY again, not by its poll. A PostgreSQL of the test's own, so it can be stopped.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/access/index.js';
import { type WorkerRole, composeWorkerRole } from '../../src/cli/roles.js';
import { loadConfig } from '../../src/config/index.js';
import { systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { type Store, migrateToLatest, openStore } from '../../src/store/index.js';
import { createEndpoint } from '../../src/webhooks/index.js';
import { type OwnedPostgres, startOwnedPostgres } from '../support/owned-postgres.js';
import { type Receiver, keySecret, startReceiver } from './harness.js';

/** Long enough that a delivery inside the test's waits is the notification's doing, not the poll's. */
const pollMs = 60_000;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the worker role when PostgreSQL goes away', () => {
  let pgOwned: OwnedPostgres;
  let store: Store;
  let receiver: Receiver;
  let role: WorkerRole;
  const logLines: string[] = [];
  const deps = () => ({ db: store.db, clock: systemClock });
  const names = () =>
    receiver.received
      .filter((r) => r.payload.type === 'account.created')
      .map((r) => (r.payload.data as { account: { name: string } }).account.name);

  async function arrives(name: string, withinMs: number): Promise<void> {
    const until = Date.now() + withinMs;
    while (!names().includes(name)) {
      if (Date.now() > until) throw new Error(`${name} not delivered within ${withinMs} ms`);
      await pause(20);
    }
  }

  beforeAll(async () => {
    pgOwned = await startOwnedPostgres();
    store = openStore(pgOwned.url, { poolSize: 5 });
    await migrateToLatest(store.db);
    receiver = await startReceiver(systemClock);
    const endpoint = await createEndpoint(
      { ...deps(), sealer: createSealer(keySecret), allowHosts: ['127.0.0.1'] },
      systemActor,
      { url: receiver.url, eventTypes: ['account.created'] },
    );
    receiver.secrets.push(endpoint.secret);
    role = await composeWorkerRole({
      config: loadConfig(
        {},
        { databaseUrl: pgOwned.url, oauthKeySecret: keySecret, outboundAllowHosts: ['127.0.0.1'] },
      ),
      store,
      logger: pino({ level: 'info' }, { write: (line: string) => logLines.push(line) }),
      options: { pollMs },
    });
    role.worker.start();
  }, 60_000);

  afterAll(async () => {
    await role?.close();
    await receiver?.close();
    await store?.destroy();
    await pgOwned?.destroy();
  });

  it('survives the database stopped, and delivers everything once it is back', {
    timeout: 60_000,
  }, async () => {
    await createAccount(deps(), systemActor, { name: 'Before' });
    await arrives('Before', 10_000);

    await pgOwned.stop();
    // rounds and the listener meet the closed connections while the database is away
    role.worker.nudge();
    await pause(1_000);
    await pgOwned.start();

    // written once it is back: the listener reconnects, and the NOTIFY of this commit wakes the worker
    let written = false;
    for (let i = 0; i < 100 && !written; i++) {
      try {
        await createAccount(deps(), systemActor, { name: 'After' });
        written = true;
      } catch {
        await pause(100); // the pool's first queries after the restart may meet connections it had not dropped yet
      }
    }
    expect(written).toBe(true);
    await arrives('After', 15_000);
    expect(names().filter((n) => n === 'Before')).toHaveLength(1);
    expect(logLines.some((l) => l.includes('lost its LISTEN connection'))).toBe(true);
  });
});
