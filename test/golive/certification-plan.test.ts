/**
 * Issue 11, certification plans: written and read through the management API (defaults filled in), refused with
 * `400 validation_failed` for unknown fields and plans that cannot be judged, recorded as an audited event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Programme, startProgramme } from '../programmes/programme-harness.js';
import { dialects } from '../support/stores.js';
import { makeService } from './golive-harness.js';

describe.each(dialects)('certification plans on %s', (dialect) => {
  let p: Programme;
  let serviceId: string;

  beforeAll(async () => {
    p = await startProgramme(dialect);
    serviceId = (await makeService(p, 'certplan', { upstreamSandbox: p.upstream.url })).id;
  });
  afterAll(async () => {
    await p?.close();
  });

  it('a service has no plan until one is written; PUT fills in the defaults and GET reads it back', async () => {
    const none = await p.apiRaw('GET', `/services/${serviceId}/certification-plan`);
    expect([none.statusCode, none.json().error.code]).toEqual([404, 'not_found']);

    const put = await p.api<{ plan: Record<string, unknown>; updatedBy: string }>(
      'PUT',
      `/services/${serviceId}/certification-plan`,
      {
        checks: [{ kind: 'retry_after' }, { kind: 'token_reuse', required: false }],
        faults: { rateLimitEvery: 5 },
        manualItems: [{ key: 'logo', title: 'Our logo in your checkout' }],
      },
    );
    expect(put.plan).toEqual({
      checks: [
        { kind: 'retry_after', required: true },
        { kind: 'token_reuse', required: false },
      ],
      faults: {
        rateLimitEvery: 5,
        retryAfterSeconds: 2,
        serverErrorEvery: 0,
        unavailableEvery: 0,
        slowEvery: 0,
        slowMs: 0,
        expiredTokenEvery: 0,
      },
      manualItems: [{ key: 'logo', title: 'Our logo in your checkout', description: '', required: true }],
      windowMinutes: 30,
      minCalls: 20,
      autoApprove: false,
    });
    expect(put.updatedBy).toMatch(/^admin_token:/);
    const got = await p.api<{ plan: unknown }>('GET', `/services/${serviceId}/certification-plan`);
    expect(got.plan).toEqual(put.plan);

    const audit = await p.store.db
      .selectFrom('events')
      .select(['type', 'entity_id'])
      .where('type', '=', 'certification_plan.updated')
      .execute();
    expect(audit).toEqual([{ type: 'certification_plan.updated', entity_id: serviceId }]);
  });

  it.each([
    ['an unknown field', { checks: [], colour: 'red' }, 'colour'],
    ['an unknown fault', { faults: { teapotEvery: 3 } }, 'teapot'],
    ['an unknown field in a check', { checks: [{ kind: 'retry_after', weight: 2 }] }, 'weight'],
    ['an unknown check kind', { checks: [{ kind: 'vibes' }] }, 'kind'],
    ['a negative fault', { faults: { serverErrorEvery: -1 } }, 'serverErrorEvery'],
    ['a string where a number belongs', { windowMinutes: '30' }, 'windowMinutes'],
    ['a bad item key', { manualItems: [{ key: 'Not A Key', title: 'x' }] }, 'key'],
    ['a check listed twice', { checks: [{ kind: 'token_reuse' }, { kind: 'token_reuse' }] }, 'listed twice'],
    ['a retry_after check without a 429 fault', { checks: [{ kind: 'retry_after' }] }, 'rateLimitEvery'],
    ['a slow fault without a delay', { faults: { slowEvery: 3 } }, 'slowMs'],
    ['a slow_answer check without a slow fault', { checks: [{ kind: 'slow_answer' }] }, 'slowEvery'],
    [
      'an item key listed twice',
      {
        manualItems: [
          { key: 'logo', title: 'a' },
          { key: 'logo', title: 'b' },
        ],
      },
      'listed twice',
    ],
  ])('%s is refused with 400 validation_failed', async (_name, body, mention) => {
    const res = await p.apiRaw('PUT', `/services/${serviceId}/certification-plan`, body);
    expect(res.statusCode).toBe(400);
    const error = res.json().error;
    expect(error.code).toBe('validation_failed');
    expect(JSON.stringify(error)).toContain(mention);
  });

  it('malformed JSON, an unknown service and a malformed id are 4xx, never 500', async () => {
    const bad = await p.apiRaw(
      'PUT',
      `/services/${serviceId}/certification-plan`,
      '{"checks":',
      'application/json',
    );
    expect([bad.statusCode, bad.json().error.code]).toEqual([400, 'malformed_json']);
    const missing = await p.apiRaw('PUT', '/services/svc_00000000000000000000000000/certification-plan', {});
    expect([missing.statusCode, missing.json().error.code]).toEqual([404, 'not_found']);
    const getMissing = await p.apiRaw('GET', '/services/svc_00000000000000000000000000/certification-plan');
    expect(getMissing.statusCode).toBe(404);
  });

  it('DELETE removes the plan (404 after), audited', async () => {
    const other = await makeService(p, 'certplan2', { upstreamSandbox: p.upstream.url });
    await p.api('PUT', `/services/${other.id}/certification-plan`, {});
    await p.api('DELETE', `/services/${other.id}/certification-plan`, undefined, 204);
    const after = await p.apiRaw('GET', `/services/${other.id}/certification-plan`);
    expect(after.statusCode).toBe(404);
    const again = await p.apiRaw('DELETE', `/services/${other.id}/certification-plan`);
    expect(again.statusCode).toBe(404);
  });
});
