/**
 * `trellis apply` run twice at once on one database (two deploy jobs, two operators): the applies take turns and
 * each works out its changes once it has its turn, so the second finds the first's result and has nothing to do,
 * instead of both adding the same mapping rules (a call then counted twice against its limit) or the second
 * failing half-way. And an apply is all or nothing: a failure reports one line and changes nothing.
 * Real processes on a SQLite file and on PostgreSQL, each running the command's own code.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMappingRule, listMappingRules, listMetrics, listServices } from '../../src/catalog/index.js';
import { run } from '../../src/cli/main.js';
import { systemActor } from '../../src/events/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { openStore } from '../../src/store/index.js';
import { dialects, freshDatabaseUrl } from '../support/stores.js';
import { nextMessage } from '../support/child-message.js';

const childEntry = join(import.meta.dirname, '../support/apply-child.ts');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** A `trellis` process with the command loaded, waiting for a command line. */
async function trellisProcess(): Promise<ChildProcess> {
  const child = fork(childEntry, { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  children.push(child);
  await nextMessage(child, 'test:ready');
  return child;
}

function runIn(child: ChildProcess, args: string[]): Promise<Ran> {
  const answer = nextMessage<Ran>(child, 'test:ran', 120_000);
  child.send({ type: 'test:run', args });
  return answer;
}

async function trellisInProcess(args: string[]): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const service = (name: string) => `services:
  - name: Apply ${name}
    systemName: ${name}
    upstreamProduction: http://127.0.0.1:9
    methods:
      - { systemName: send, friendlyName: Send mail }
`;

/** The service again with 40 mapping rules and 3 plans (what the race probe applied twice at once). */
const withRulesAndPlans = (name: string) =>
  `${service(name)}    mappingRules:
${Array.from({ length: 40 }, (_, i) => `      - { httpMethod: GET, pattern: /r${i + 1}, metric: send }\n`).join('')}    plans:
${[1, 2, 3]
  .map(
    (p) =>
      `      - { name: P${p}, systemName: p${p}, limits: [ { metric: hits, period: minute, value: 60 } ] }\n`,
  )
  .join('')}`;

async function countsOf(url: string, systemName: string) {
  const store = openStore(url, { poolSize: 1 });
  try {
    const svc = await store.db
      .selectFrom('services')
      .select('id')
      .where('system_name', '=', systemName)
      .executeTakeFirst();
    if (!svc) return { services: 0, rules: 0, patterns: 0, plans: 0 };
    const rules = await store.db
      .selectFrom('mapping_rules')
      .select(['pattern'])
      .where('service_id', '=', svc.id)
      .execute();
    const plans = await store.db.selectFrom('plans').select('id').where('service_id', '=', svc.id).execute();
    return {
      services: 1,
      rules: rules.length,
      patterns: new Set(rules.map((r) => r.pattern)).size,
      plans: plans.length,
    };
  } finally {
    await store.destroy();
  }
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-apply-race-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe.each(dialects)('trellis apply run twice at once (%s)', { timeout: 180_000 }, (dialect) => {
  let url = '';
  let drop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    if (dialect === 'sqlite') url = `sqlite:${join(dir, 'race.db')}`;
    else ({ url, drop } = await freshDatabaseUrl('postgres'));
  });
  afterAll(() => drop());

  it('ends with exactly the declared rules and plans, the second apply finding nothing to do', async () => {
    const [a, b] = await Promise.all([trellisProcess(), trellisProcess()]);
    const db = ['--database-url', url];
    for (let round = 1; round <= 3; round++) {
      const name = `race${round}`;
      const v1 = join(dir, `${dialect}-${name}.v1.yaml`);
      const v2 = join(dir, `${dialect}-${name}.v2.yaml`);
      await writeFile(v1, service(name));
      await writeFile(v2, withRulesAndPlans(name));
      expect((await runIn(a!, ['apply', '-f', v1, ...db])).code).toBe(0);

      const both = await Promise.all([
        runIn(a!, ['apply', '-f', v2, ...db]),
        runIn(b!, ['apply', '-f', v2, ...db]),
      ]);

      expect({ round, ...(await countsOf(url, name)) }).toEqual({
        round,
        services: 1,
        rules: 40,
        patterns: 40,
        plans: 3,
      });
      expect(both.map((r) => ({ code: r.code, stderr: r.stderr }))).toEqual([
        { code: 0, stderr: '' },
        { code: 0, stderr: '' },
      ]);
      // one of them made the changes; the other, once its turn came, found the database matching the file
      expect(both.filter((r) => /Applied \d+ change\(s\)/.test(r.stdout))).toHaveLength(1);
      expect(both.filter((r) => r.stdout.includes('No changes'))).toHaveLength(1);
      expect((await trellisInProcess(['apply', '-f', v2, '--dry-run', ...db])).stdout).toContain(
        'No changes',
      );
    }
  });

  // Racing applies used to leave a second copy of a rule; migration 0022 deleted those and the database refuses
  // them now. A second rule of a declared verb and pattern on another metric is the file's to delete.
  it('deletes a second rule of a declared verb and pattern that the file does not declare', async () => {
    const file = join(dir, `${dialect}-heal.yaml`);
    await writeFile(file, withRulesAndPlans('heal'));
    const db = ['--database-url', url];
    expect((await trellisInProcess(['apply', '-f', file, ...db])).code).toBe(0);
    const store = openStore(url, { poolSize: 1 });
    try {
      const [svc] = (await listServices(store.db, { limit: 100 })).data.filter(
        (s) => s.systemName === 'heal',
      );
      const [rule] = await listMappingRules(store.db, svc!.id);
      const hits = (await listMetrics(store.db, svc!.id)).find((m) => m.systemName === 'hits')!;
      const { id: _id, createdAt: _at, serviceId: _s, ...copy } = rule!;
      await createMappingRule({ db: store.db, clock: systemClock }, systemActor, svc!.id, {
        ...copy,
        metricId: hits.id,
      });
    } finally {
      await store.destroy();
    }
    expect(await countsOf(url, 'heal')).toMatchObject({ rules: 41, patterns: 40 });
    const dry = await trellisInProcess(['apply', '-f', file, '--dry-run', ...db]);
    expect(dry.stdout).toContain('- delete mapping rule heal: GET /r1\n');
    expect((await trellisInProcess(['apply', '-f', file, ...db])).code).toBe(0);
    expect(await countsOf(url, 'heal')).toMatchObject({ rules: 40, patterns: 40 });
  });

  it('applies all or nothing: a failing step reports one line, exit 1, and changes nothing', async () => {
    const file = join(dir, `${dialect}-broken.yaml`);
    await writeFile(
      file,
      `${service('broken')}    mappingRules:
      - { httpMethod: GET, pattern: /a, metric: send }
      - { httpMethod: GET, pattern: /b, metric: nosuchmethod }
`,
    );
    const res = await trellisInProcess(['apply', '-f', file, '--database-url', url]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^trellis: [^\n]*no metric or method "nosuchmethod"[^\n]*\n$/);
    expect(res.stderr).toContain('nothing was changed');
    expect(await countsOf(url, 'broken')).toEqual({ services: 0, rules: 0, patterns: 0, plans: 0 });
  });
});
