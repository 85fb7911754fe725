import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayWorkers } from '../../src/cli/gateway-workers.js';
import { type DialectName, migrateToLatest, openStore, type Store } from '../../src/store/index.js';
import { freshStore } from '../support/stores.js';
import { call, Fixtures, startUpstream, testConfig, until, type Upstream } from './fixtures.js';

let upstream: Upstream;
beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(() => upstream.close());

/** A database every worker process can open: an SQLite file, or a PostgreSQL database of its own. */
async function sharedStore(
  dialect: DialectName,
): Promise<{ store: Store; url: string; cleanup(): Promise<void> }> {
  if (dialect === 'postgres') {
    const store = await freshStore('postgres');
    return { store, url: store.url, cleanup: () => store.cleanup() };
  }
  const dir = mkdtempSync(join(tmpdir(), 'trellis-workers-'));
  const url = `sqlite:${join(dir, 'db.sqlite')}`;
  const store = openStore(url);
  await migrateToLatest(store.db);
  return {
    store,
    url,
    cleanup: async () => {
      await store.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('several gateway processes', () => {
  it('refuses an in-memory SQLite database, which processes cannot share', async () => {
    await expect(
      startGatewayWorkers(2, { config: testConfig({ databaseUrl: 'sqlite::memory:' }) }),
    ).rejects.toThrow(/in-memory SQLite/);
  });

  it('closes while a worker has just died: its channel gone, its exit not seen yet', {
    timeout: 60_000,
  }, async () => {
    const shared = await sharedStore('sqlite');
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const workers = await startGatewayWorkers(2, {
        config: testConfig({ databaseUrl: shared.url, redisUrl: '', gatewayPort: 0, logLevel: 'warn' }),
        store: shared.store,
      });
      process.kill(workers.pids[0]!, 'SIGKILL');
      // hold this thread while the worker dies, so the primary has not seen its channel close or its exit yet
      // when it tells every worker to stop (sending to it failed with EPIPE or "Channel closed", an 'error' event
      // nobody listened to: an uncaught exception in the primary)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      await workers.close();
      await new Promise((r) => setTimeout(r, 200));
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await shared.cleanup();
    }
  });
});

describe.each(['sqlite', 'postgres'] as const)('several gateway processes (%s)', (dialect) => {
  let shared: Awaited<ReturnType<typeof sharedStore>>;
  beforeAll(async () => {
    shared = await sharedStore(dialect);
  });
  afterAll(() => shared.cleanup());

  it('serves from two processes on one port, with limits exact across them', {
    timeout: 60_000,
  }, async () => {
    const f = new Fixtures(shared.store);
    const { service, planId, key } = await f.keyed({ upstream: upstream.url, prefix: '/workers' });
    await f.limit(planId, service.hitsId, 'hour', 10);
    const workers = await startGatewayWorkers(2, {
      config: testConfig({
        databaseUrl: shared.url,
        redisUrl: 'redis://127.0.0.1:6379',
        gatewayPort: 0,
        logLevel: 'warn',
      }),
      options: { redisKeyPrefix: `trellis-test:${service.id}:` },
    });
    try {
      expect(workers.pids).toHaveLength(2);
      const statuses = await Promise.all(
        Array.from({ length: 30 }, () =>
          call(`http://127.0.0.1:${workers.port}/workers/x`, { headers: { 'X-User-Key': key } }).then(
            (r) => r.status,
          ),
        ),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(20);
    } finally {
      await workers.close();
    }
  });

  it('without Redis, counts on the primary: limits exact across two processes, through a worker killed', {
    timeout: 60_000,
  }, async () => {
    const f = new Fixtures(shared.store);
    const { planId, service, key } = await f.keyed({ upstream: upstream.url, prefix: '/host-counters' });
    await f.limit(planId, service.hitsId, 'hour', 20);
    const workers = await startGatewayWorkers(2, {
      config: testConfig({ databaseUrl: shared.url, redisUrl: '', gatewayPort: 0, logLevel: 'warn' }),
      store: shared.store,
    });
    const get = () =>
      call(`http://127.0.0.1:${workers.port}/host-counters/x`, { headers: { 'X-User-Key': key } }).then(
        (r) => r.status,
        () => 0,
      );
    try {
      expect(await Promise.all(Array.from({ length: 8 }, get))).toEqual(Array(8).fill(200));
      // a worker dies; its calls stay counted, the primary holds the counters
      process.kill(workers.pids[0]!, 'SIGKILL');
      await until(async () => (await get()) === 200, 5000);
      const rest = await Promise.all(Array.from({ length: 30 }, get));
      expect(rest.filter((s) => s === 200)).toHaveLength(20 - 9);
      // the rest are refused by the limit, or never reached a gateway (a kept-alive connection to the dead worker)
      expect(rest.filter((s) => s !== 200 && s !== 429 && s !== 0)).toEqual([]);
    } finally {
      await workers.close();
    }
  });

  it('stops a worker on SIGTERM (a signal to the process group) the orderly way: its usage is flushed first', {
    timeout: 60_000,
  }, async () => {
    const f = new Fixtures(shared.store);
    const { service, key } = await f.keyed({ upstream: upstream.url, prefix: '/sigterm' });
    // usage is flushed once a minute here: only an orderly stop writes it in time
    const workers = await startGatewayWorkers(2, {
      config: testConfig({ databaseUrl: shared.url, redisUrl: '', gatewayPort: 0, logLevel: 'warn' }),
    });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 12 }, () =>
          call(`http://127.0.0.1:${workers.port}/sigterm/x`, { headers: { 'X-User-Key': key } }).then(
            (r) => r.status,
          ),
        ),
      );
      expect(statuses).toEqual(Array(12).fill(200));
      for (const pid of workers.pids) process.kill(pid, 'SIGTERM');
      const recorded = async () => {
        const { rows } = await sql<{ n: number | string | null }>`
          select sum(calls) as n from usage_calls where service_id = ${service.id}`.execute(shared.store.db);
        return Number(rows[0]?.n ?? 0);
      };
      await until(async () => (await recorded()) === 12, 15_000, 50);
      expect(await recorded()).toBe(12);
    } finally {
      await workers.close();
    }
  });

  it('replaces a worker killed with SIGKILL, while the other goes on serving', {
    timeout: 60_000,
  }, async () => {
    const f = new Fixtures(shared.store);
    const { service, key } = await f.keyed({ upstream: upstream.url, prefix: '/respawn' });
    const events: string[] = [];
    const logger = {
      info: (_: object, msg?: string) => events.push(msg ?? ''),
      warn: (_: object, msg?: string) => events.push(msg ?? ''),
      error: (_: object, msg?: string) => events.push(msg ?? ''),
    };
    const workers = await startGatewayWorkers(2, {
      config: testConfig({
        databaseUrl: shared.url,
        redisUrl: 'redis://127.0.0.1:6379',
        gatewayPort: 0,
        logLevel: 'warn',
      }),
      logger,
      options: { redisKeyPrefix: `trellis-test:${service.id}:` },
    });
    const get = () =>
      call(`http://127.0.0.1:${workers.port}/respawn/x`, { headers: { 'X-User-Key': key } }).then(
        (r) => r.status,
        () => 0,
      );
    try {
      const [victim, survivor] = workers.pids;
      process.kill(victim!, 'SIGKILL');
      // the survivor serves at once; new connections never reach the dead process
      await until(async () => (await get()) === 200, 5000);
      expect(await Promise.all(Array.from({ length: 20 }, get))).toEqual(Array(20).fill(200));
      await until(() => events.includes('gateway: replacement worker listening'), 20_000, 50);
      expect(events).toContain('gateway: worker exited; starting a new one');
      expect(workers.pids).toHaveLength(2);
      expect(workers.pids).toContain(survivor);
      expect(workers.pids).not.toContain(victim);
      expect(await Promise.all(Array.from({ length: 20 }, get))).toEqual(Array(20).fill(200));
    } finally {
      await workers.close();
    }
  });
});
