/**
 * At least once, never twice at once (issue 9): two workers on one PostgreSQL database share the queue without
 * delivering the same message concurrently; a worker process killed with SIGKILL mid-batch loses nothing.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Change, recordChanges, systemActor } from '../../src/events/index.js';
import { ManualClock, systemClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createOutboundClient } from '../../src/outbound/index.js';
import { type DialectName, type Store, migrateToLatest, openStore } from '../../src/store/index.js';
import { createEndpoint, createWebhookWorker } from '../../src/webhooks/index.js';
import { dialects, freshDatabaseUrl, freshStore } from '../support/stores.js';
import { keySecret, startReceiver } from './harness.js';

const childEntry = join(import.meta.dirname, 'worker-child.ts');

async function writeEvents(store: Store, n: number): Promise<void> {
  const changes: Change[] = Array.from({ length: n }, (_, i) => ({
    type: 'portal.sso_secret_rotated',
    entityType: 'settings',
    entityId: `portal-${i}`,
    payload: {},
  }));
  for (let i = 0; i < changes.length; i += 50) {
    await store.db
      .transaction()
      .execute((tx) => recordChanges(tx, systemClock, systemActor, changes.slice(i, i + 50)));
  }
}

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('two workers on PostgreSQL', () => {
  it('never deliver the same message at the same time, and deliver each once when all succeed', async () => {
    const a = await freshStore('postgres');
    const b = openStore(a.url, { poolSize: 5 });
    const clock = new ManualClock(Date.now());
    const receiver = await startReceiver(clock);
    const inFlight = new Set<string>();
    let overlaps = 0;
    // a webhook-id seen again within 15 ms of its first arrival counts as an overlap
    receiver.respond = (r) => {
      const id = String(r.headers['webhook-id']);
      if (inFlight.has(id)) overlaps++;
      inFlight.add(id);
      setTimeout(() => inFlight.delete(id), 15);
      return { status: 200 };
    };
    const sealer = createSealer(keySecret);
    const endpoint = await createEndpoint(
      { db: a.db, clock, sealer, allowHosts: ['127.0.0.1'] },
      systemActor,
      { url: receiver.url, eventTypes: ['portal.sso_secret_rotated'] },
    );
    receiver.secrets.push(endpoint.secret);
    await writeEvents(a, 300);
    const outbound = createOutboundClient({ allowHosts: ['127.0.0.1'] });
    const options = { deliveryBatch: 16, fanOutBatch: 40, random: () => 0 };
    const workers = [
      createWebhookWorker({
        db: a.db,
        clock,
        sealer,
        sender: outbound,
        options: { ...options, workerId: 'A' },
      }),
      createWebhookWorker({
        db: b.db,
        clock,
        sealer,
        sender: outbound,
        options: { ...options, workerId: 'B' },
      }),
    ];
    const attemptsBy = { A: 0, B: 0 };
    try {
      await Promise.all(
        workers.map(async (w) => {
          for (let idle = 0; idle < 3; ) {
            const r = await w.tick();
            attemptsBy[w.workerId as 'A' | 'B'] += r.attempts;
            idle = r.events + r.attempts === 0 ? idle + 1 : 0;
          }
        }),
      );
      const ids = receiver.received.map((r) => String(r.headers['webhook-id']));
      expect(receiver.received.every((r) => r.payload.type === 'portal.sso_secret_rotated')).toBe(true);
      expect(ids).toHaveLength(300);
      expect(new Set(ids).size).toBe(300);
      expect(overlaps).toBe(0);
      expect(attemptsBy.A).toBeGreaterThan(0);
      expect(attemptsBy.B).toBeGreaterThan(0);
      expect(attemptsBy.A + attemptsBy.B).toBe(300);
    } finally {
      await outbound.close();
      await receiver.close();
      await b.destroy();
      await a.cleanup();
    }
  });
});

describe.each(dialects)('a worker killed with SIGKILL mid-batch (%s)', (dialect: DialectName) => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  function startChild(url: string): ChildProcess {
    const child = fork(childEntry, {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, TRELLIS_DATABASE_URL: url, TRELLIS_OAUTH_KEY_SECRET: keySecret },
      stdio: 'inherit',
    });
    children.push(child);
    return child;
  }

  it('loses nothing: after a restart every event is delivered, each webhook-id at least once', {
    timeout: 90_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-hooks-'));
    const { url, drop } =
      dialect === 'sqlite'
        ? { url: `sqlite:${join(dir, 'hooks.db')}`, drop: async () => {} }
        : await freshDatabaseUrl('postgres');
    const store = openStore(url, { poolSize: 3 });
    await migrateToLatest(store.db);
    const receiver = await startReceiver(new ManualClock(Date.now()));
    try {
      // the receiver's clock is the real one here: the child signs with the system clock
      receiver.respond = () => ({ status: 200 });
      const endpoint = await createEndpoint(
        { db: store.db, clock: systemClock, sealer: createSealer(keySecret), allowHosts: ['127.0.0.1'] },
        systemActor,
        { url: receiver.url, eventTypes: ['portal.sso_secret_rotated'] },
      );
      receiver.secrets.push(endpoint.secret);
      await writeEvents(store, 200);
      const first = startChild(url);
      await waitFor('some deliveries', () => receiver.received.length >= 30, 20_000);
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      const beforeRestart = new Set(receiver.received.map((r) => String(r.headers['webhook-id']))).size;
      expect(beforeRestart).toBeLessThan(200);
      startChild(url);
      const pendingOrUndispatched = async () => {
        const events = await store.db
          .selectFrom('events')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('dispatched_at', 'is', null)
          .executeTakeFirstOrThrow();
        const messages = await store.db
          .withTables<{ webhook_messages: { state: string } }>()
          .selectFrom('webhook_messages')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('state', '!=', 'succeeded')
          .executeTakeFirstOrThrow();
        return Number(events.n) + Number(messages.n);
      };
      await waitFor('every delivery', async () => (await pendingOrUndispatched()) === 0, 60_000);
      const messageIds = await store.db
        .withTables<{ webhook_messages: { id: string; event_id: string } }>()
        .selectFrom('webhook_messages')
        .select(['id', 'event_id'])
        .execute();
      expect(messageIds).toHaveLength(200);
      expect(new Set(messageIds.map((m) => m.event_id)).size).toBe(200);
      const received = new Set(receiver.received.map((r) => String(r.headers['webhook-id'])));
      for (const m of messageIds) expect(received.has(m.id), m.id).toBe(true);
      expect(receiver.received.every((r) => r.payload.type === 'portal.sso_secret_rotated')).toBe(true);
    } finally {
      for (const c of children.splice(0)) {
        if (c.exitCode !== null || c.signalCode !== null) continue;
        c.kill('SIGKILL');
        await new Promise((r) => c.once('exit', r));
      }
      await receiver.close();
      await store.destroy();
      await drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
