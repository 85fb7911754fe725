/**
 * A service's event types in `trellis apply` YAML (issue 9): declared with the service, exported back by
 * `trellis export`, re-applied to nothing, changed as one step, pruned only with `prune`, and an example that does
 * not fit its schema refused naming the field, on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportCatalog, listServices, planApply, runApply } from '../../src/catalog/index.js';
import { parseDeclarative } from '../../src/cli/config-file.js';
import { systemActor } from '../../src/events/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { listServiceEventTypes } from '../../src/webhooks/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';

const yaml = `
services:
  - name: PayMe
    systemName: payme-events
    upstreamProduction: http://payme.test
    eventTypes:
      - name: paymentrequest.paid
        description: A payment request was paid.
        schema:
          type: object
          required: [paymentRequestId, amount]
          properties:
            paymentRequestId: { type: string }
            amount: { type: integer, minimum: 1 }
        example: { paymentRequestId: pr_1, amount: 1250 }
      - name: paymentrequest.expired
        description: A payment request expired unpaid.
        schema: { type: object }
        example: {}
`;

describe.each(dialects)('event types in trellis apply (%s)', (dialect) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore(dialect);
  });
  afterAll(() => store?.cleanup());

  it('applies, exports, re-applies to nothing, updates one, prunes only when asked', async () => {
    const doc = parseDeclarative(yaml, 'trellis.yaml');
    const deps = { db: store.db, clock: new ManualClock() };
    const steps = await planApply(store.db, doc);
    expect(steps.map((s) => `${s.op} ${s.what}`)).toEqual([
      'create service payme-events',
      'create event type payme-events paymentrequest.paid',
      'create event type payme-events paymentrequest.expired',
    ]);
    await runApply(deps, systemActor, steps);
    const service = (await listServices(store.db, { limit: 10 })).data.find(
      (s) => s.systemName === 'payme-events',
    )!;
    const declared = await listServiceEventTypes(store.db, service.id);
    expect(declared.map((t) => t.name)).toEqual(['paymentrequest.expired', 'paymentrequest.paid']);
    expect(declared[1]).toMatchObject({ example: { paymentRequestId: 'pr_1', amount: 1250 } });

    const exported = await exportCatalog(store.db);
    const svc = exported.services.find((s) => s.systemName === 'payme-events')!;
    expect(svc.eventTypes?.map((t) => t.name)).toEqual(['paymentrequest.expired', 'paymentrequest.paid']);
    expect(await planApply(store.db, exported)).toEqual([]);
    expect(await planApply(store.db, doc)).toEqual([]);

    const changed = structuredClone(doc);
    changed.services[0]!.eventTypes![0]!.description = 'Paid in full.';
    changed.services[0]!.eventTypes!.pop();
    const again = await planApply(store.db, changed);
    expect(again.map((s) => `${s.op} ${s.what} ${s.fields?.join(',') ?? ''}`)).toEqual([
      'update event type payme-events paymentrequest.paid description',
    ]);
    await runApply(deps, systemActor, again);
    const pruned = await planApply(store.db, changed, { prune: true });
    expect(pruned.map((s) => `${s.op} ${s.what}`)).toEqual([
      'delete event type payme-events paymentrequest.expired',
    ]);
    await runApply(deps, systemActor, pruned);
    expect((await listServiceEventTypes(store.db, service.id)).map((t) => [t.name, t.description])).toEqual([
      ['paymentrequest.paid', 'Paid in full.'],
    ]);
  });

  it('refuses a bad name when parsed and an example that does not fit its schema when applied', async () => {
    expect(() =>
      parseDeclarative(yaml.replace('paymentrequest.expired', 'Expired Payment'), 'x.yaml'),
    ).toThrow();
    const doc = parseDeclarative(
      yaml.replace('payme-events', 'payme-bad').replace('amount: 1250', 'amount: 0'),
      'trellis.yaml',
    );
    const deps = { db: store.db, clock: new ManualClock() };
    await expect(runApply(deps, systemActor, await planApply(store.db, doc))).rejects.toThrow(
      /create event type payme-bad paymentrequest.paid: .*example\/amount/,
    );
  });
});
