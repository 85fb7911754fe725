/**
 * `trellis start --workers 2` as a real process on PostgreSQL and Redis (issue 8, item 5): the worker processes
 * are composed like the one-process gateway (`composeGatewayRole`), so an `oauth2` service's JWT is accepted and
 * every process logs JSON lines through the configured logger.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startUpstream, until, type Upstream } from '../gateway/fixtures.js';
import { type OAuthWorld, startOAuthWorld, tokenRequest } from '../oauth/harness.js';

const sourceEntry = join(import.meta.dirname, '../support/trellis-source.ts');

describe('trellis start --workers 2 (postgres, Redis)', () => {
  let upstream: Upstream;
  let world: OAuthWorld;
  let child: ChildProcess | null = null;
  let stdout = '';
  let stderr = '';

  beforeAll(async () => {
    upstream = await startUpstream();
    world = await startOAuthWorld('postgres', { upstream: upstream.url });
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await world?.close();
    await upstream?.close();
  });

  // three processes start from the TypeScript sources: slow on a loaded machine
  it('serves an oauth2 call with a JWT from the worker processes, which log JSON lines', {
    timeout: 150_000,
  }, async () => {
    const token = await tokenRequest(world, { grant_type: 'client_credentials' });
    expect(token.status).toBe(200);
    const jwt = String(token.body.access_token);

    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        sourceEntry,
        'start',
        '--workers',
        '2',
        '--gateway-port',
        '0',
        '--control-port',
        '0',
        '--no-demo',
      ],
      {
        env: {
          ...process.env,
          TRELLIS_DATABASE_URL: world.store.url,
          TRELLIS_REDIS_URL: 'redis://127.0.0.1:6379',
          // the issuer the world's authorization server signed the token as
          TRELLIS_PUBLIC_URL: world.baseUrl,
          TRELLIS_OAUTH_KEY_SECRET: 'test-key-encryption-secret',
          TRELLIS_LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child = proc;
    proc.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    await until(() => /Gateway\s+http:\/\/localhost:\d+/.test(stdout) || proc.exitCode !== null, 120_000, 50);
    expect(stderr).not.toMatch(/Error/);
    const gatewayUrl = /Gateway\s+(http:\/\/localhost:\d+)/.exec(stdout)?.[1];
    expect(gatewayUrl, stdout + stderr).toBeDefined();

    for (let i = 0; i < 10; i++) {
      const res = await call(`${gatewayUrl}/${world.service.systemName}/search?q=${i}`, {
        headers: { authorization: `Bearer ${jwt}` },
      });
      expect(res.status, res.text).toBe(200);
    }

    // every worker process logs through the composed logger: JSON lines naming its role and pid
    const lines = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { role?: string; pid?: number; msg?: string; level?: number });
    const listening = lines.filter((l) => l.role === 'gateway' && l.msg === 'gateway: worker listening');
    expect(new Set(listening.map((l) => l.pid)).size).toBe(2);
    expect(listening.every((l) => l.pid !== proc.pid && typeof l.level === 'number')).toBe(true);
  });
});
