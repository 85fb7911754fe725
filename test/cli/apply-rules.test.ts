/**
 * `trellis apply` and the one-rule-per-verb-pattern-and-metric rule (migration 0022): a file declaring a rule twice
 * is refused before anything is applied, naming the line; and a file that reorders rules of one verb and pattern on
 * different metrics applies, matching each declared rule with the rule of its metric first.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listMappingRules, listMetrics, listServices, planApply } from '../../src/catalog/index.js';
import { run } from '../../src/cli/main.js';
import { TrellisError } from '../../src/kernel/index.js';
import { migrateToLatest, openStore } from '../../src/store/index.js';
import { dialects, freshDatabaseUrl } from '../support/stores.js';

async function trellisInProcess(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const service = (rules: string[]) => `services:
  - name: Rules
    systemName: rules
    upstreamProduction: http://127.0.0.1:9
    methods:
      - { systemName: send, friendlyName: Send mail }
    mappingRules:
${rules.map((r) => `      - ${r}\n`).join('')}`;

/** The service's rules as `verb pattern metric delta`, in matching order. */
async function rulesOf(url: string): Promise<{ id: string; line: string }[]> {
  const store = openStore(url, { poolSize: 1 });
  try {
    await migrateToLatest(store.db);
    const svc = (await listServices(store.db, { limit: 100 })).data.find((s) => s.systemName === 'rules');
    if (!svc) return [];
    const names = new Map((await listMetrics(store.db, svc.id)).map((m) => [m.id, m.systemName]));
    return (await listMappingRules(store.db, svc.id)).map((r) => ({
      id: r.id,
      line: `${r.httpMethod} ${r.pattern} ${names.get(r.metricId)} ${r.delta}`,
    }));
  } finally {
    await store.destroy();
  }
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-apply-rules-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe.each(dialects)('trellis apply and doubled mapping rules (%s)', (dialect) => {
  let url = '';
  let drop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    if (dialect === 'sqlite') url = `sqlite:${join(dir, 'rules.db')}`;
    else ({ url, drop } = await freshDatabaseUrl('postgres'));
  });
  afterAll(() => drop());

  it('refuses a file that declares a rule twice (exit 3, the line named), changing nothing', async () => {
    const file = join(dir, `${dialect}-twice.yaml`);
    await writeFile(
      file,
      service([
        '{ httpMethod: GET, pattern: /a, metric: hits }',
        '{ httpMethod: POST, pattern: /send, metric: send }',
        '{ httpMethod: GET, pattern: /a, metric: hits, delta: 2 }',
      ]),
    );
    for (const dry of [[], ['--dry-run']]) {
      const res = await trellisInProcess(['apply', '-f', file, '--database-url', url, ...dry]);
      expect(res.code).toBe(3);
      expect(res.stderr).toContain(
        `${file}:10:9: services.0.mappingRules.2: the same rule as mappingRules.0 (GET /a on hits): a call would count twice`,
      );
    }
    expect(await rulesOf(url)).toEqual([]);
  });

  it('refuses such a document in planApply too, for callers other than the command', async () => {
    const store = openStore(url, { poolSize: 1 });
    try {
      const rule = { httpMethod: 'GET' as const, pattern: '/a', metric: 'hits' };
      const refused = await planApply(store.db, {
        services: [
          { name: 'X', systemName: 'x', upstreamProduction: 'http://x.test', mappingRules: [rule, rule] },
        ],
      }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(TrellisError);
      expect(refused).toMatchObject({
        code: 'validation_failed',
        details: [{ field: 'services.0.mappingRules.1' }],
      });
    } finally {
      await store.destroy();
    }
  });

  it('reorders rules of one verb and pattern on different metrics, keeping each rule', async () => {
    const file = join(dir, `${dialect}-order.yaml`);
    await writeFile(
      file,
      service([
        '{ httpMethod: POST, pattern: /send, metric: send }',
        '{ httpMethod: POST, pattern: /send, metric: hits, delta: 2 }',
      ]),
    );
    expect((await trellisInProcess(['apply', '-f', file, '--database-url', url])).code).toBe(0);
    const before = await rulesOf(url);
    expect(before.map((r) => r.line)).toEqual(['POST /send send 1', 'POST /send hits 2']);

    await writeFile(
      file,
      service([
        '{ httpMethod: POST, pattern: /send, metric: hits, delta: 2 }',
        '{ httpMethod: POST, pattern: /send, metric: send }',
      ]),
    );
    const dry = await trellisInProcess(['apply', '-f', file, '--database-url', url, '--dry-run']);
    expect(dry.stdout).not.toContain('metric');
    const applied = await trellisInProcess(['apply', '-f', file, '--database-url', url]);
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
    const after = await rulesOf(url);
    expect(after.map((r) => r.line)).toEqual(['POST /send hits 2', 'POST /send send 1']);
    expect(after.map((r) => r.id).sort()).toEqual(before.map((r) => r.id).sort());
    expect((await trellisInProcess(['apply', '-f', file, '--database-url', url])).stdout).toContain(
      'No changes',
    );
  });
});
