/**
 * `trellis start` on the embedded defaults runs the insights in its in-process worker (issue 10): the demo
 * application's calls cross 50 % of its 10-a-minute limit and the quota alert is announced by the worker's run,
 * whose round is claimed in `job_rounds` under the webhook worker's id.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startTrellis } from '../../src/cli/start.js';
import { loadConfig } from '../../src/config/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { until } from '../gateway/fixtures.js';

describe('trellis start runs the insights in its worker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-start-insights-'));
  const databaseUrl = `sqlite:${join(dir, 'trellis.db')}`;
  let running: Running;
  let reader: Store;

  beforeAll(async () => {
    const config = loadConfig(
      {},
      {
        databaseUrl,
        gatewayPort: 0,
        controlPort: 0,
        demoUpstreamPort: 0,
        logLevel: 'silent',
        usageFlushMs: 100,
        usageCompactMs: 100,
        insightsIntervalMs: 200,
      },
    );
    running = await startTrellis(config, () => {});
    reader = openStore(databaseUrl);
  }, 60_000);
  afterAll(async () => {
    await running?.stop();
    await reader?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('announces the demo application’s quota level from the worker’s round', async () => {
    const demo = running.bootstrap.demo!;
    const minute = () => Math.floor(Date.now() / 60_000);
    // five calls within one minute (the limit's window): again if a minute ended among them
    for (let attempt = 0; attempt < 2; attempt++) {
      const first = minute();
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${running.gatewayUrl}/demo/quotes/1`, {
          headers: { 'X-API-Key': demo.userKey },
        });
        expect(res.status).toBe(200);
      }
      if (minute() === first) break;
    }
    const levels = async () =>
      (
        (await reader.db
          .selectFrom('quota_alerts' as never)
          .select('level' as never)
          .where('application_id' as never, '=', demo.applicationId as never)
          .execute()) as { level: number }[]
      ).map((r) => Number(r.level));
    await until(async () => (await levels()).includes(50), 20_000, 50);
    const round = (await reader.db
      .selectFrom('job_rounds' as never)
      .selectAll()
      .where('job' as never, '=', 'insights' as never)
      .executeTakeFirstOrThrow()) as { holder: string };
    expect(round.holder).toMatch(/^wkr_\d+_[0-9a-f]+$/);
  });
});
