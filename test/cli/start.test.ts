/** What a newcomer sees: `trellis start` on embedded defaults, and the demo call through the gateway. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStart, type Running, startTrellis } from '../../src/cli/start.js';
import { loadConfig } from '../../src/config/index.js';

let running: Running;
beforeAll(async () => {
  const config = loadConfig(
    {},
    {
      databaseUrl: 'sqlite::memory:',
      gatewayPort: 0,
      controlPort: 0,
      demoUpstreamPort: 0,
      logLevel: 'silent',
    },
  );
  running = await startTrellis(config, () => {});
});
afterAll(() => running.stop());

describe('trellis start', () => {
  it('creates the first admin, a token and the demo, and prints how to use them', () => {
    const text = describeStart(running);
    expect(running.bootstrap.admin?.generated).toBe(true);
    expect(text).toContain(running.bootstrap.admin?.password);
    expect(text).toContain(running.bootstrap.adminToken);
    expect(text).toMatch(/curl -H 'X-API-Key: trk_\w+' http:\/\/localhost:\d+\/demo\/quotes\/1/);
  });

  it('answers the printed curl line through the gateway', async () => {
    const demo = running.bootstrap.demo!;
    const res = await fetch(`${running.gatewayUrl}/demo/quotes/1`, {
      headers: { 'X-API-Key': demo.userKey },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { author: string; seenByUpstream: { secretTokenPresent: boolean } };
    expect(body.author).toBe('Kent Beck');
    expect(body.seenByUpstream.secretTokenPresent).toBe(true);
    expect(res.headers.get('ratelimit-policy')).toContain('q=10');
    const denied = await fetch(`${running.gatewayUrl}/demo/quotes/1`);
    expect(denied.status).toBe(401);
  });

  it('serves the management API with the printed token', async () => {
    const res = await fetch(`${running.controlUrl}/admin/api/services`, {
      headers: { authorization: `Bearer ${running.bootstrap.adminToken}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { systemName: string }[] };
    expect(body.data.map((s) => s.systemName)).toEqual(['quotes']);
    const plans = await fetch(
      `${running.controlUrl}/admin/api/services/${running.bootstrap.demo!.serviceId}/plans`,
      {
        headers: { authorization: `Bearer ${running.bootstrap.adminToken}` },
      },
    );
    expect(((await plans.json()) as { data: unknown[] }).data).toHaveLength(3);
  });

  it('records the calls and serves them as usage through the management API', async () => {
    const demo = running.bootstrap.demo!;
    for (let i = 0; i < 3; i++) {
      await fetch(`${running.gatewayUrl}/demo/quotes`, { headers: { 'X-API-Key': demo.userKey } });
    }
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const url = `${running.controlUrl}/admin/api/usage?applicationId=${demo.applicationId}&granularity=minute&from=${from}&to=${to}`;
    const auth = { authorization: `Bearer ${running.bootstrap.adminToken}` };
    let hits = 0;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const body = (await (await fetch(url, { headers: auth })).json()) as {
        data: { metricId: string; total: number }[];
      };
      hits = Math.max(0, ...body.data.map((s) => s.total));
      if (hits >= 4) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // 1 call to get_quote earlier, 3 to list_quotes now: hits counts all 4
    expect(hits).toBe(4);
    const bad = await fetch(`${running.controlUrl}/admin/api/usage?from=${to}&to=${from}`, { headers: auth });
    expect(bad.status).toBe(400);
  });
});
