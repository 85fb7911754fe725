/**
 * `trellis apply` sets a programme up as the management API does (issue 12, items 2 and 9): metrics counted on
 * hits, end-user limits of the whole service and where its end users are named; `trellis export` writes them back,
 * and applying the export again changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DeclarativeConfig,
  exportCatalog,
  listEndUserLimits,
  listMetrics,
  listServices,
  planApply,
  runApply,
} from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { dialects, freshStore, type TestStore } from '../support/stores.js';

const doc: DeclarativeConfig = {
  services: [
    {
      name: 'Twitter',
      systemName: 'twitter-decl',
      upstreamProduction: 'http://twitter.test',
      endUserKeySource: 'header',
      endUserKeyName: 'X-Twitter-User',
      metrics: [{ systemName: 'streams', friendlyName: 'Streams API', parent: 'hits' }],
      methods: [{ systemName: 'mentions_timeline', friendlyName: 'GET statuses/mentions_timeline' }],
      endUserLimits: [
        { metric: 'mentions_timeline', period: 'minute', value: 15 },
        { metric: 'streams', period: 'day', value: 1000 },
      ],
      mappingRules: [
        { httpMethod: 'GET', pattern: '/1.1/statuses/mentions_timeline.json', metric: 'mentions_timeline' },
        { httpMethod: 'GET', pattern: '/streams/', metric: 'streams' },
      ],
      plans: [
        { name: 'Trial', systemName: 'trial', limits: [{ metric: 'hits', period: 'month', value: 100 }] },
      ],
    },
  ],
};

describe.each(dialects)('declarative programme (%s)', (dialect) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await freshStore(dialect);
  });
  afterAll(() => store.cleanup());

  it('applies child metrics and service end-user limits, exports them, and re-applies to nothing', async () => {
    const deps = { db: store.db, clock: new ManualClock() };
    await runApply(deps, systemActor, await planApply(store.db, doc));
    const service = (await listServices(store.db, { limit: 10 })).data.find(
      (s) => s.systemName === 'twitter-decl',
    )!;
    expect(service).toMatchObject({ endUserKeySource: 'header', endUserKeyName: 'X-Twitter-User' });
    const metrics = await listMetrics(store.db, service.id);
    const hits = metrics.find((m) => m.systemName === 'hits')!;
    expect(metrics.find((m) => m.systemName === 'streams')).toMatchObject({
      kind: 'metric',
      parentId: hits.id,
    });
    const limits = await listEndUserLimits(store.db, service.id);
    expect(limits.map((l) => `${l.period}=${l.value}`).sort()).toEqual(['day=1000', 'minute=15']);

    const exported = await exportCatalog(store.db);
    const svc = exported.services.find((s) => s.systemName === 'twitter-decl')!;
    expect(svc.endUserLimits).toEqual(expect.arrayContaining(doc.services[0]!.endUserLimits!));
    expect(svc.metrics).toEqual([expect.objectContaining({ systemName: 'streams', parent: 'hits' })]);
    expect(await planApply(store.db, exported)).toEqual([]);

    const fewer: DeclarativeConfig = {
      services: [
        {
          ...doc.services[0]!,
          endUserLimits: [{ metric: 'mentions_timeline', period: 'minute', value: 10 }],
        },
      ],
    };
    const steps = await planApply(store.db, fewer);
    expect(steps.map((s) => s.op).sort()).toEqual(['delete', 'update']);
    await runApply(deps, systemActor, steps);
    expect((await listEndUserLimits(store.db, service.id)).map((l) => `${l.period}=${l.value}`)).toEqual([
      'minute=10',
    ]);
  });
});
