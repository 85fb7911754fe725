/**
 * A service has one mapping rule per verb, pattern and metric (every rule that matches a call counts it, so a
 * second would count each call twice): through the management API the same rule POSTed again, or PATCHed into
 * another, is 409 `mapping_rule_exists`, and two POSTs at once give one rule, one 201 and one 409.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlHarness, startControl } from '../support/control.js';
import { warmPool } from '../support/races.js';
import { dialects } from '../support/stores.js';

describe.each(dialects)('mapping rules are not doubled (%s)', (dialect) => {
  let h: ControlHarness;
  let rules = '';
  let hitsId = '';
  let sendId = '';

  beforeAll(async () => {
    h = await startControl(dialect);
    const svc = (
      await h.call('POST', '/admin/api/services', {
        name: 'Mail',
        systemName: 'mail',
        upstreamProduction: 'https://api.example.com',
      })
    ).json();
    rules = `/admin/api/services/${svc.id}/mapping-rules`;
    hitsId = (await h.call('GET', `/admin/api/services/${svc.id}/metrics`)).json().data[0].id;
    sendId = (
      await h.call('POST', `/admin/api/services/${svc.id}/methods`, {
        systemName: 'send',
        friendlyName: 'Send',
      })
    ).json().id;
  });
  afterAll(() => h.close());

  const patternsOf = async (pattern: string) =>
    (await h.call('GET', rules)).json().data.filter((r: { pattern: string }) => r.pattern === pattern);

  it('refuses the same rule POSTed twice with 409 mapping_rule_exists, naming the rule there', async () => {
    const rule = { httpMethod: 'POST', pattern: '/v3/mail/send$', metricId: sendId };
    const first = await h.call('POST', rules, rule);
    expect(first.statusCode).toBe(201);
    const second = await h.call('POST', rules, rule);
    expect(second.statusCode).toBe(409);
    expect(second.json().error).toMatchObject({
      code: 'mapping_rule_exists',
      details: { ruleId: first.json().id },
    });
    expect(second.json().error.message).toContain('POST /v3/mail/send$');
    // a delta or `last` of its own does not make it another rule: it would still count each call twice
    const heavier = await h.call('POST', rules, { ...rule, delta: 5, last: true, position: 9 });
    expect([heavier.statusCode, heavier.json().error.code]).toEqual([409, 'mapping_rule_exists']);
    expect(await patternsOf('/v3/mail/send$')).toHaveLength(1);

    // the same verb and pattern on another metric, or another verb, are other rules
    expect((await h.call('POST', rules, { ...rule, metricId: hitsId })).statusCode).toBe(201);
    expect((await h.call('POST', rules, { ...rule, httpMethod: 'PUT' })).statusCode).toBe(201);
    expect(await patternsOf('/v3/mail/send$')).toHaveLength(3);
  });

  it('refuses a PATCH that makes a rule the same as another, not one that keeps it itself', async () => {
    const a = (await h.call('POST', rules, { httpMethod: 'GET', pattern: '/a', metricId: hitsId })).json();
    const b = (await h.call('POST', rules, { httpMethod: 'GET', pattern: '/b', metricId: hitsId })).json();
    const same = await h.call('PATCH', `${rules}/${b.id}`, { pattern: '/a' });
    expect(same.statusCode).toBe(409);
    expect(same.json().error).toMatchObject({ code: 'mapping_rule_exists', details: { ruleId: a.id } });
    expect((await h.call('GET', `${rules}/${b.id}`)).json().pattern).toBe('/b');

    const itself = await h.call('PATCH', `${rules}/${a.id}`, {
      httpMethod: 'GET',
      pattern: '/a',
      metricId: hitsId,
      delta: 2,
    });
    expect(itself.statusCode).toBe(200);
    expect(itself.json()).toMatchObject({ pattern: '/a', delta: 2 });
    expect((await h.call('PATCH', `${rules}/${b.id}`, { metricId: sendId, pattern: '/a' })).statusCode).toBe(
      200,
    );
  });

  it('makes one rule of two identical POSTs sent at once: one 201, one 409', async () => {
    for (let round = 0; round < 5; round++) {
      const rule = { httpMethod: 'GET', pattern: `/race/${round}`, metricId: sendId };
      await warmPool(h.store);
      const both = await Promise.all([h.call('POST', rules, rule), h.call('POST', rules, rule)]);
      expect(both.map((r) => r.statusCode).sort()).toEqual([201, 409]);
      const refused = both.find((r) => r.statusCode === 409)!.json().error;
      const made = both.find((r) => r.statusCode === 201)!.json();
      expect(refused).toMatchObject({ code: 'mapping_rule_exists', details: { ruleId: made.id } });
      expect(await patternsOf(`/race/${round}`)).toHaveLength(1);
    }
  });
});
