/**
 * Issue 11, environments fixed at the root: a service without a sandbox upstream has no sandbox (its sandbox
 * credentials are refused, never sent to production); a sandbox credential reaches only the sandbox upstream and a
 * production credential only the production one, through a real gateway; the management API creates production
 * applications only when the provider explicitly skips certification, with a reason written to the audit log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../gateway/fixtures.js';
import { type Programme, startProgramme } from '../programmes/programme-harness.js';
import { dialects } from '../support/stores.js';
import { makeService } from './golive-harness.js';

interface Created {
  id: string;
  environment: string;
  secret: { value: string };
}

describe.each(dialects)('environments on %s', (dialect) => {
  let p: Programme;
  let sandbox: Upstream;
  let accountId: string;

  beforeAll(async () => {
    p = await startProgramme(dialect);
    sandbox = await startUpstream('sandbox');
    accountId = (await p.api<{ id: string }>('POST', '/accounts', { name: 'Partner' })).id;
  });
  afterAll(async () => {
    await sandbox.close();
    await p.close();
  });

  const service = (systemName: string, extra: Record<string, unknown> = {}) =>
    makeService(p, systemName, extra);

  it('a service created without a sandbox upstream has none, and its sandbox keys are refused, not sent to production', async () => {
    const svc = await service('nosandbox');
    expect(svc.upstreamSandbox).toBe('');
    const app = await p.api<Created>('POST', '/applications', {
      accountId,
      serviceId: svc.id,
      planId: svc.planId,
      name: 'S',
    });
    expect(app.environment).toBe('sandbox');
    const before = p.upstream.seen.length;
    const r = await p.call('/nosandbox/x', { 'X-API-Key': app.secret.value });
    expect([r.status, r.json.error?.code]).toEqual([403, 'sandbox_unavailable']);
    expect(p.upstream.seen.length).toBe(before);

    // the provider adds a sandbox later: the same key now reaches it, and production still sees nothing
    await p.api('PATCH', `/services/${svc.id}`, { upstreamSandbox: sandbox.url });
    const ok = await p.call('/nosandbox/x', { 'X-API-Key': app.secret.value });
    expect([ok.status, ok.json.upstream]).toEqual([200, 'sandbox']);
    expect(p.upstream.seen.length).toBe(before);

    // and removes it again: refused again (no copy of production was ever made)
    await p.api('PATCH', `/services/${svc.id}`, { upstreamSandbox: '' });
    const again = await p.call('/nosandbox/x', { 'X-API-Key': app.secret.value });
    expect(again.json.error?.code).toBe('sandbox_unavailable');
  });

  it('a sandbox key reaches only the sandbox upstream, a production key only the production upstream', async () => {
    const svc = await service('both', { upstreamSandbox: sandbox.url });
    const sb = await p.api<Created>('POST', '/applications', {
      accountId,
      serviceId: svc.id,
      planId: svc.planId,
      name: 'SB',
    });
    const prod = await p.api<Created>('POST', '/applications', {
      accountId,
      serviceId: svc.id,
      planId: svc.planId,
      name: 'PROD',
      environment: 'production',
      skipCertification: true,
      skipCertificationReason: 'a migrated partner, certified on the old platform',
    });
    const sandboxSeen = sandbox.seen.length;
    const productionSeen = p.upstream.seen.length;
    const a = await p.call('/both/pay', { 'X-API-Key': sb.secret.value });
    expect([a.status, a.json.upstream]).toEqual([200, 'sandbox']);
    const b = await p.call('/both/pay', { 'X-API-Key': prod.secret.value });
    expect([b.status, b.json.upstream]).toEqual([200, 'production']);
    expect([sandbox.seen.length - sandboxSeen, p.upstream.seen.length - productionSeen]).toEqual([1, 1]);
  });

  it('refuses a production application unless the provider skips certification with a reason, and audits it', async () => {
    const svc = await service('gate', { upstreamSandbox: sandbox.url });
    const base = {
      accountId,
      serviceId: svc.id,
      planId: svc.planId,
      name: 'Direct',
      environment: 'production',
    };
    const refused = await p.apiRaw('POST', '/applications', base);
    expect([refused.statusCode, refused.json().error.code]).toEqual([409, 'certification_required']);
    const noReason = await p.apiRaw('POST', '/applications', { ...base, skipCertification: true });
    expect([noReason.statusCode, noReason.json().error.details[0].field]).toEqual([
      400,
      'skipCertificationReason',
    ]);
    const onSandbox = await p.apiRaw('POST', '/applications', {
      ...base,
      environment: 'sandbox',
      skipCertification: true,
      skipCertificationReason: 'x',
    });
    expect(onSandbox.statusCode).toBe(400);
    const made = await p.api<Created>('POST', '/applications', {
      ...base,
      skipCertification: true,
      skipCertificationReason: 'contractual partner, certified offline',
    });
    expect(made.environment).toBe('production');
    const audit = await p.api<{ data: { action: string; data: { reason?: string } }[] }>(
      'GET',
      `/audit-log?entityId=${made.id}`,
    );
    const skipped = audit.data.find((e) => e.action === 'application.certification_skipped');
    expect(skipped?.data.reason).toBe('contractual partner, certified offline');
  });

  it('signup express cannot make a production application either', async () => {
    const svc = await service('express', { upstreamSandbox: sandbox.url });
    const res = await p.apiRaw('POST', '/signup', {
      account: { name: 'Express Co' },
      user: { email: 'x@express.test', name: 'X' },
      application: { serviceId: svc.id, planId: svc.planId, name: 'Fast', environment: 'production' },
    });
    expect([res.statusCode, res.json().error.code]).toEqual([409, 'certification_required']);
    const sandboxed = await p.api<{ application: { environment: string } }>('POST', '/signup', {
      account: { name: 'Express Co' },
      user: { email: 'x@express.test', name: 'X' },
      application: { serviceId: svc.id, planId: svc.planId, name: 'Fast' },
    });
    expect(sandboxed.application.environment).toBe('sandbox');
  });
});
