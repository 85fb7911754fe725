import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { dialects, freshDatabaseUrl } from '../support/stores.js';

const exec = promisify(execFile);

/** The command run in this process: the same code as bin/trellis.js, without a process start per call. */
async function trellisInProcess(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { code, stdout, stderr };
}
/** The command in a process of its own, run from the sources (bin/trellis.js runs the built dist/). */
const sourceEntry = join(import.meta.dirname, '../support/trellis-source.ts');

async function trellis(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', sourceEntry, ...args], {
      env: { ...process.env, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const catalogYaml = `
services:
  - name: Mail
    systemName: mail
    upstreamProduction: https://mail.example.com
    authMode: user_key
    credentialsLocation: query
    userKeyName: api_key
    methods:
      - systemName: send
        friendlyName: Send mail
      - systemName: stats
        friendlyName: Read statistics
    mappingRules:
      - { httpMethod: POST, pattern: /v3/mail/send, metric: send }
      - { httpMethod: GET, pattern: /v3/stats, metric: stats, delta: 2 }
    plans:
      - name: Free
        systemName: free
        default: true
        limits:
          - { metric: hits, period: minute, value: 60 }
          - { metric: send, period: day, value: 100 }
        disabledMethods: [stats]
      - name: Partner
        systemName: partner
        state: hidden
        limits:
          - { metric: hits, period: eternity, value: 1000000, scope: end_user }
`;

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-cli-'));
});

describe.each(dialects)('trellis apply and export (%s)', (dialect) => {
  let url = '';
  let drop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    if (dialect === 'sqlite') url = `sqlite:${join(dir, `apply-${Date.now()}.db`)}`;
    else ({ url, drop } = await freshDatabaseUrl('postgres'));
  });
  afterAll(() => drop());

  it('dry-runs, applies, is idempotent, and round-trips through export', async () => {
    const file = join(dir, `catalog-${dialect}.yaml`);
    await writeFile(file, catalogYaml);
    const db = ['--database-url', url];

    const dry = await trellisInProcess(['apply', '-f', file, '--dry-run', ...db]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('+ create service mail');
    expect(dry.stdout).toContain('+ create limit mail/free: send per day = 100');
    expect(dry.stdout).toMatch(/Dry run: \d+ change\(s\) not applied/);
    expect((await trellisInProcess(['export', ...db])).stdout.trim()).toBe('services: []');

    const applied = await trellisInProcess(['apply', '-f', file, ...db]);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/Applied \d+ change\(s\)/);
    expect((await trellisInProcess(['apply', '-f', file, ...db])).stdout).toContain('No changes');

    const exported = join(dir, `exported-${dialect}.yaml`);
    expect((await trellisInProcess(['export', '-o', exported, ...db])).code).toBe(0);
    const text = await readFile(exported, 'utf8');
    expect(text).toContain('pattern: /v3/mail/send');
    expect(text).toContain('scope: end_user');
    expect((await trellisInProcess(['apply', '-f', exported, ...db])).stdout).toContain('No changes');

    const changed = catalogYaml
      .replace('value: 60', 'value: 120')
      .replace('      - { httpMethod: GET, pattern: /v3/stats, metric: stats, delta: 2 }\n', '')
      .replace('disabledMethods: [stats]', 'disabledMethods: []');
    await writeFile(file, changed);
    const diff = await trellisInProcess(['apply', '-f', file, '--dry-run', ...db]);
    expect(diff.stdout.trim().split('\n').slice(0, -1).sort()).toEqual([
      '- delete disabled method mail/free: stats',
      '- delete mapping rule mail: GET /v3/stats',
      '~ update limit mail/free: hits per minute = 120',
    ]);
  });
});

// Each of these starts real `trellis` processes (about a second each, more on a loaded machine).
describe('trellis command errors', { timeout: 90_000 }, () => {
  it('names the line of invalid YAML (exit 3)', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'services:\n  - name: [unclosed\n');
    const res = await trellis(['apply', '-f', file, '--database-url', 'sqlite::memory:']);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/Invalid YAML:\n.*broken\.yaml:\d+:\d+:/);
  });

  it('names the line of a schema problem (exit 3)', async () => {
    const file = join(dir, 'wrong.yaml');
    await writeFile(
      file,
      'services:\n  - name: X\n    systemName: x\n    upstreamProduction: http://x.test\n    colour: blue\n',
    );
    const res = await trellis(['apply', '-f', file, '--database-url', 'sqlite::memory:']);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain('wrong.yaml:2:5: services.0.colour: unknown field');
  });

  it('reports a missing file (exit 3), bad flags (exit 2), bad settings (exit 5)', async () => {
    const missing = await trellis(['apply', '-f', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('No such file');
    const flag = await trellis(['start', '--workers', 'many']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('expected a whole number');
    const unknown = await trellis(['frobnicate']);
    expect(unknown.code).toBe(2);
    const env = await trellis(['migrate'], {
      TRELLIS_GATEWAY_PORT: 'eighty',
      TRELLIS_DATABASE_URL: 'mysql://x',
    });
    expect(env.code).toBe(5);
    expect(env.stderr).toContain('TRELLIS_GATEWAY_PORT: expected a whole number');
    expect(env.stderr).toContain('TRELLIS_DATABASE_URL');
  });

  it('reports an unreachable database (exit 4) without leaking its password', async () => {
    const res = await trellis(['migrate', '--database-url', 'postgres://trellis:hunter2@127.0.0.1:1/none']);
    expect(res.code).toBe(4);
    expect(res.stderr).toContain('Cannot reach the database postgres://trellis:***@127.0.0.1:1/none');
    expect(res.stderr).not.toContain('hunter2');
  });

  it('creates admin tokens that work', async () => {
    const url = `sqlite:${join(dir, 'tokens.db')}`;
    const res = await trellis([
      'admin-token',
      'create',
      '--name',
      'ci',
      '--scope',
      'read',
      '--database-url',
      url,
    ]);
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toMatch(/^trat_[A-Za-z0-9]{32}$/);
    const bad = await trellis([
      'admin-token',
      'create',
      '--name',
      'ci',
      '--scope',
      'root',
      '--database-url',
      url,
    ]);
    expect(bad.code).toBe(2);
  });
});
