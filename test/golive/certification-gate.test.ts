/**
 * Issue 11: the management API of certification runs (bad input answered 4xx with the stable error shape, never
 * 500), the go-live gate (a service with a plan needs a passed run: `409 certification_required`), `autoApprove`,
 * and the funnel's "certified" step, on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEventPayload } from '../../src/events/index.js';
import { CertificationJob } from '../../src/golive/index.js';
import { type Programme, startProgramme } from '../programmes/programme-harness.js';
import { dialects } from '../support/stores.js';
import { makeService, type TestService } from './golive-harness.js';

interface Run {
  id: string;
  state: string;
  applicationId: string;
  results: { kind: string; passed: boolean | null }[];
}

describe.each(dialects)('certification runs, the go-live gate and the funnel on %s', (dialect) => {
  let p: Programme;
  let svc: TestService;
  let accountId: string;

  beforeAll(async () => {
    p = await startProgramme(dialect);
    svc = await makeService(p, 'gated', { upstreamSandbox: p.upstream.url });
    accountId = (await p.api<{ id: string }>('POST', '/accounts', { name: 'Partner' })).id;
  });
  afterAll(async () => {
    await p?.close();
  });

  const sandboxApp = async (serviceId = svc.id, planId = svc.planId) =>
    (await p.api<{ id: string }>('POST', '/applications', { accountId, serviceId, planId, name: 'Shop' })).id;
  const error = async (method: string, url: string, body?: unknown) => {
    const res = await p.apiRaw(method, url, body);
    return [res.statusCode, res.json().error?.code];
  };

  it('refuses bad input on the run routes with 4xx and the stable error shape', async () => {
    const app = await sandboxApp();
    // no plan yet
    expect(await error('POST', `/applications/${app}/certification-runs`, {})).toEqual([
      409,
      'invalid_state',
    ]);
    await p.api('PUT', `/services/${svc.id}/certification-plan`, { minCalls: 0 });
    expect(
      await error('POST', '/applications/app_00000000000000000000000000/certification-runs', {}),
    ).toEqual([404, 'not_found']);
    expect(await error('POST', '/applications/not-an-id/certification-runs', {})).toEqual([404, 'not_found']);
    expect(await error('POST', `/applications/${app}/certification-runs`, { colour: 'red' })).toEqual([
      400,
      'validation_failed',
    ]);
    expect(await error('GET', '/certification-runs/crun_00000000000000000000000000')).toEqual([
      404,
      'not_found',
    ]);
    expect(await error('POST', '/certification-runs/crun_00000000000000000000000000/cancel', {})).toEqual([
      404,
      'not_found',
    ]);
    expect(await error('GET', '/applications/app_00000000000000000000000000/certification-runs')).toEqual([
      404,
      'not_found',
    ]);

    const run = await p.api<Run>('POST', `/applications/${app}/certification-runs`, {});
    expect(run).toMatchObject({ state: 'running', applicationId: app });
    expect(run.id).toMatch(/^crun_/);
    // one running run per application
    expect(await error('POST', `/applications/${app}/certification-runs`, {})).toEqual([
      409,
      'invalid_state',
    ]);
    const cancelled = await p.api<Run>('POST', `/certification-runs/${run.id}/cancel`, {});
    expect(cancelled.state).toBe('cancelled');
    expect(await error('POST', `/certification-runs/${run.id}/cancel`, {})).toEqual([409, 'invalid_state']);
    const list = await p.api<{ data: Run[] }>('GET', `/applications/${app}/certification-runs`);
    expect(list.data.map((r) => [r.id, r.state])).toEqual([[run.id, 'cancelled']]);

    // a production application, and a service without a sandbox, cannot be certified
    const production = await p.api<{ id: string }>('POST', '/applications', {
      accountId,
      serviceId: svc.id,
      planId: svc.planId,
      name: 'Live shop',
      environment: 'production',
      skipCertification: true,
      skipCertificationReason: 'certified on the old platform',
    });
    expect(await error('POST', `/applications/${production.id}/certification-runs`, {})).toEqual([
      409,
      'invalid_state',
    ]);
    const bare = await makeService(p, 'nosandboxcert');
    await p.api('PUT', `/services/${bare.id}/certification-plan`, {});
    const bareApp = await sandboxApp(bare.id, bare.planId);
    const refused = await p.apiRaw('POST', `/applications/${bareApp}/certification-runs`, {});
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toMatch(/no sandbox/);
  });

  it('go-live needs a passed run when the service has a plan; the events carry their declared payloads', async () => {
    const app = await sandboxApp();
    const gated = await p.apiRaw('POST', `/applications/${app}/golive`, { note: 'ready' });
    expect(gated.statusCode).toBe(409);
    expect(gated.json().error.code).toBe('certification_required');
    expect(gated.json().error.message).toMatch(/passed certification run/);

    const run = await p.api<Run>('POST', `/applications/${app}/certification-runs`, {});
    const judged = await p.api<Run>('POST', `/certification-runs/${run.id}/evaluate`, {});
    expect(judged.state).toBe('passed');
    expect((await p.api<Run>('GET', `/certification-runs/${run.id}`)).state).toBe('passed');
    const request = await p.api<{ state: string }>('POST', `/applications/${app}/golive`, { note: 'ready' });
    expect(request.state).toBe('requested');

    const rows = await p.store.db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('entity_id', '=', app)
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => r.type)).toEqual([
      'application.created',
      'certification.started',
      'certification.passed',
      'application.golive_requested',
    ]);
    for (const r of rows) expect(checkEventPayload(r.type, JSON.parse(r.payload))).toEqual([]);
  });

  it('autoApprove approves a request at once, and a waiting request when its run passes', async () => {
    const auto = await makeService(p, 'autoapprove', { upstreamSandbox: p.upstream.url });
    const waiting = await sandboxApp(auto.id, auto.planId);
    // asked before the service had a plan: the request waits
    const early = await p.api<{ id: string; state: string }>('POST', `/applications/${waiting}/golive`, {});
    expect(early.state).toBe('requested');
    await p.api('PUT', `/services/${auto.id}/certification-plan`, { minCalls: 0, autoApprove: true });

    const run = await p.api<Run>('POST', `/applications/${waiting}/certification-runs`, {});
    await p.api('POST', `/certification-runs/${run.id}/evaluate`, {});
    const decided = await p.api<{ state: string; decisionComment: string }>(
      'GET',
      `/golive/requests/${early.id}`,
    );
    expect(decided.state).toBe('approved');
    expect(decided.decisionComment).toContain(run.id);

    const fresh = await sandboxApp(auto.id, auto.planId);
    const freshRun = await p.api<Run>('POST', `/applications/${fresh}/certification-runs`, {});
    await p.api('POST', `/certification-runs/${freshRun.id}/evaluate`, {});
    const approved = await p.api<{ state: string; productionApplicationId: string }>(
      'POST',
      `/applications/${fresh}/golive`,
      {},
    );
    expect(approved.state).toBe('approved');
    expect(approved.productionApplicationId).toMatch(/^app_/);
  });

  it('the certification job ends a run that saw its calls, without anyone asking', async () => {
    const app = await sandboxApp();
    const run = await p.api<Run>('POST', `/applications/${app}/certification-runs`, {});
    const job = new CertificationJob({ db: p.store.db, clock: p.clock }, { error: () => {} }, 60_000);
    await job.tick();
    expect(job.ended).toBeGreaterThanOrEqual(1);
    expect((await p.api<Run>('GET', `/certification-runs/${run.id}`)).state).toBe('passed');
    await job.close();
  });

  it('the funnel has a certified step: accounts with a passed run', async () => {
    const f = await p.api<{
      stages: { stage: string; accounts: number }[];
      accounts: { certifiedAt: string | null }[];
    }>('GET', `/golive/funnel?serviceId=${svc.id}`);
    expect(f.stages.map((s) => s.stage)).toEqual([
      'signed_up',
      'first_sandbox_call',
      'certified',
      'golive_requested',
      'live',
    ]);
    expect(f.stages.find((s) => s.stage === 'certified')!.accounts).toBe(1);
    const other = await p.api<{ stages: { stage: string; accounts: number }[] }>(
      'GET',
      `/golive/funnel?serviceId=${(await makeService(p, 'uncertified')).id}`,
    );
    expect(other.stages.find((s) => s.stage === 'certified')!.accounts).toBe(0);
  });
});
