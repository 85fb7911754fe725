/**
 * Issue 11: a service's certification plan in `trellis apply` YAML (`certification:`), written with its defaults,
 * exported back by `trellis export`, re-applied to nothing, changed as one step, and refused when it cannot be
 * judged (a check without its fault), on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportCatalog, listServices, planApply, runApply } from '../../src/catalog/index.js';
import { parseDeclarative } from '../../src/cli/config-file.js';
import { systemActor } from '../../src/events/index.js';
import { getCertificationPlan } from '../../src/golive/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';

const yaml = `
services:
  - name: Payments
    systemName: payments-cert
    upstreamProduction: http://payments.test
    upstreamSandbox: http://sandbox.payments.test
    certification:
      checks:
        - kind: retry_after
        - kind: token_reuse
          required: false
      faults:
        rateLimitEvery: 5
        retryAfterSeconds: 3
      manualItems:
        - key: logo
          title: Our logo in your checkout
      minCalls: 25
`;

describe.each(dialects)('certification plans in trellis apply (%s)', (dialect) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore(dialect);
  });
  afterAll(() => store?.cleanup());

  it('applies the certification section, exports it, and re-applies to nothing', async () => {
    // as `trellis apply -f` reads it (ajv on the declarative schema, problems named by line)
    const doc = parseDeclarative(yaml, 'trellis.yaml');
    const deps = { db: store.db, clock: new ManualClock() };
    const steps = await planApply(store.db, doc);
    expect(steps.map((s) => `${s.op} ${s.what}`)).toContain('create certification plan payments-cert');
    await runApply(deps, systemActor, steps);
    const service = (await listServices(store.db, { limit: 10 })).data.find(
      (s) => s.systemName === 'payments-cert',
    )!;
    const plan = await getCertificationPlan(store.db, service.id);
    expect(plan.plan).toMatchObject({
      checks: [
        { kind: 'retry_after', required: true },
        { kind: 'token_reuse', required: false },
      ],
      faults: { rateLimitEvery: 5, retryAfterSeconds: 3, serverErrorEvery: 0 },
      manualItems: [{ key: 'logo', title: 'Our logo in your checkout', description: '', required: true }],
      minCalls: 25,
      windowMinutes: 30,
    });

    const exported = await exportCatalog(store.db);
    const svc = exported.services.find((s) => s.systemName === 'payments-cert')!;
    expect(svc.certification).toEqual(plan.plan);
    expect(await planApply(store.db, exported)).toEqual([]);
    expect(await planApply(store.db, doc)).toEqual([]);

    const changed = structuredClone(doc);
    changed.services[0]!.certification!.minCalls = 40;
    const again = await planApply(store.db, changed);
    expect(again.map((s) => `${s.op} ${s.what}`)).toEqual(['update certification plan payments-cert']);
    await runApply(deps, systemActor, again);
    expect((await getCertificationPlan(store.db, service.id)).plan.minCalls).toBe(40);
  });

  it('refuses a plan that cannot be judged before anything is applied', async () => {
    const doc = parseDeclarative(yaml.replace('rateLimitEvery: 5', 'rateLimitEvery: 0'), 'trellis.yaml');
    expect(() =>
      parseDeclarative(yaml.replace('minCalls: 25', 'minCalls: 25\n      colour: red'), 'x.yaml'),
    ).toThrow(/colour/);
    await expect(planApply(store.db, doc)).rejects.toMatchObject({
      code: 'validation_failed',
      message: expect.stringContaining('rateLimitEvery'),
    });
  });
});
