import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayWorkers } from '../../src/gateway/index.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/index.js';
import { call, Fixtures, startUpstream, testConfig, type Upstream } from './fixtures.js';

let dir: string;
let store: Store;
let upstream: Upstream;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-workers-'));
  store = openStore(`sqlite:${join(dir, 'db.sqlite')}`);
  await migrateToLatest(store.db);
  upstream = await startUpstream();
});
afterAll(async () => {
  await upstream.close();
  await store.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('several gateway processes', () => {
  it('refuses several processes with per-process counters', async () => {
    await expect(startGatewayWorkers(2, { config: testConfig() })).rejects.toThrow(/TRELLIS_REDIS_URL/);
  });

  it('serves from two processes on one port, with limits exact across them', {
    timeout: 30_000,
  }, async () => {
    const f = new Fixtures(store);
    const { service, planId, key } = await f.keyed({ upstream: upstream.url, prefix: '/workers' });
    await f.limit(planId, service.hitsId, 'hour', 10);
    const workers = await startGatewayWorkers(2, {
      config: testConfig({
        databaseUrl: `sqlite:${join(dir, 'db.sqlite')}`,
        redisUrl: 'redis://127.0.0.1:6379',
        gatewayPort: 0,
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
});
