/**
 * The worker role wired into the CLI (issue 9): `trellis start` delivers webhooks in-process on the embedded
 * defaults; `trellis worker` is a process of its own that drains the same outbox, and stops cleanly on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startTrellis } from '../../src/cli/start.js';
import { loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/kernel/index.js';
import { type Receiver, keySecret, startReceiver } from './harness.js';

const sourceEntry = join(import.meta.dirname, '../support/trellis-source.ts');

async function waitFor(what: string, ok: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the worker role', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-worker-role-'));
  const databaseUrl = `sqlite:${join(dir, 'trellis.db')}`;
  let running: Running;
  let receiver: Receiver;
  let token = '';
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${running.controlUrl}/admin/api${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return res;
  };
  const created = async (method: string, path: string, body?: unknown) =>
    (await (await api(method, path, body)).json()) as { id: string; secret: string };

  beforeAll(async () => {
    receiver = await startReceiver(systemClock);
    const config = loadConfig(
      {},
      {
        databaseUrl,
        gatewayPort: 0,
        controlPort: 0,
        demo: false,
        logLevel: 'silent',
        oauthKeySecret: keySecret,
        outboundAllowHosts: ['127.0.0.1'],
      },
    );
    running = await startTrellis(config, () => {});
    token = running.bootstrap.adminToken ?? '';
  });
  afterAll(async () => {
    await running.stop();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('trellis start delivers a signup to the CRM endpoint at once: account.created with its custom fields, verified', async () => {
    const endpoint = await created('POST', '/webhooks/endpoints', {
      url: receiver.url,
      eventTypes: ['account.created', 'user.created'],
    });
    receiver.secrets.push(endpoint.secret);
    await api('POST', '/custom-fields', { target: 'account', name: 'company_size', label: 'Company size' });
    const service = await created('POST', '/services', {
      name: 'Pay',
      systemName: 'pay',
      upstreamProduction: 'https://pay.test',
    });
    const plan = await created('POST', `/services/${service.id}/plans`, { name: 'Free', systemName: 'free' });
    await api('POST', `/plans/${plan.id}/make-default`);
    const signup = await api('POST', '/signup', {
      account: { name: 'Posify', customFields: { company_size: '11-50' } },
      user: { email: 'dev@posify.test', name: 'Dev' },
      application: { serviceId: service.id, name: 'POS' },
    });
    expect(signup.status, await signup.clone().text()).toBe(201);
    const started = Date.now();
    await waitFor(
      'account.created',
      () => receiver.received.some((r) => r.payload.type === 'account.created'),
      10_000,
    );
    // woken by the commit, not by its next poll
    expect(Date.now() - started).toBeLessThan(2000);
    const got = receiver.received.find((r) => r.payload.type === 'account.created')!;
    expect(got.payload.data).toMatchObject({
      account: { name: 'Posify', customFields: { company_size: '11-50' } },
    });
    await waitFor(
      'user.created',
      () => receiver.received.some((r) => r.payload.type === 'user.created'),
      10_000,
    );
  });

  it("seed 001: a developer who signs up on the portal's form reaches the CRM as account.created with its custom fields, verified", async () => {
    // the CRM endpoint and the company_size field of the test above; now a person fills in the signup page
    const page = await fetch(`${running.controlUrl}/signup`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
    expect(csrf).not.toBe('');
    expect(html).toContain('name="acf_company_size"');
    const cookie = page.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const posted = await fetch(`${running.controlUrl}/signup`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({
        _csrf: csrf,
        organization: 'Tweetdeck Labs',
        name: 'Dana Dev',
        email: 'dana@tweetdeck.test',
        password: 'correct horse battery',
        acf_company_size: '1-10',
      }),
    });
    expect(posted.status, await posted.clone().text()).toBe(303);
    const isIt = (r: Receiver['received'][number]) =>
      r.payload.type === 'account.created' &&
      (r.payload.data as { account?: { name?: string } }).account?.name === 'Tweetdeck Labs';
    await waitFor('the signed-up account at the CRM', () => receiver.received.some(isIt), 10_000);
    const got = receiver.received.find(isIt)!;
    expect(got.payload.data).toMatchObject({
      account: { name: 'Tweetdeck Labs', customFields: { company_size: '1-10' } },
    });
    expect(got.headers['webhook-id']).toMatch(/^msg_/);
  });

  it('trellis worker drains the outbox from a process of its own and stops on SIGTERM', {
    timeout: 60_000,
  }, async () => {
    await running.stop(); // the in-process worker stops with everything else; the database stays
    const before = receiver.received.length;
    const { openStore } = await import('../../src/store/index.js');
    const { createAccount } = await import('../../src/access/index.js');
    const store = openStore(databaseUrl);
    await createAccount(
      { db: store.db, clock: systemClock },
      { type: 'system', id: null },
      { name: 'Shopline' },
    );
    await store.destroy();
    let output = '';
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', sourceEntry, 'worker'], {
      env: {
        ...process.env,
        TRELLIS_DATABASE_URL: databaseUrl,
        TRELLIS_OAUTH_KEY_SECRET: keySecret,
        TRELLIS_OUTBOUND_ALLOW_HOSTS: '127.0.0.1',
        TRELLIS_LOG_LEVEL: 'silent',
      },
    });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await waitFor(
        'the worker process',
        () => receiver.received.slice(before).some((r) => r.payload.type === 'account.created'),
        30_000,
      );
      const got = receiver.received.slice(before).find((r) => r.payload.type === 'account.created')!;
      expect(got.payload.data).toMatchObject({ account: { name: 'Shopline' } });
      expect(output).toMatch(/Webhook worker wkr_\d+_[0-9a-f]+ is running/);
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
