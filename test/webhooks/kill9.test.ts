/**
 * Kill -9 of the whole process (issue 9): `trellis start` (control, gateway and the in-process webhook worker) as
 * a child process, on SQLite and on PostgreSQL, killed with SIGKILL while accounts are being created through the
 * management API by several writers at once. Restarted on the same database, it delivers every event whose write
 * was acknowledged (2xx) to a real local receiver that verifies each signature, each `webhook-id` at least once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/kernel/index.js';
import { openStore } from '../../src/store/index.js';
import { dialects, freshDatabaseUrl } from '../support/stores.js';
import { keySecret, type Receiver, startReceiver } from './harness.js';

const sourceEntry = join(import.meta.dirname, '../support/trellis-source.ts');

/** Writes acknowledged before the kill (each writer keeps going until the process dies under it). */
const ACKED_BEFORE_KILL = 30;
const WRITERS = 4;

interface Started {
  child: ChildProcess;
  controlUrl: string;
  /** the admin token, printed on the first start only */
  token: string | null;
  output: () => string;
}

async function startProcess(databaseUrl: string): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', sourceEntry, 'start'], {
    env: {
      ...process.env,
      TRELLIS_DATABASE_URL: databaseUrl,
      TRELLIS_GATEWAY_PORT: '0',
      TRELLIS_CONTROL_PORT: '0',
      TRELLIS_DEMO: 'false',
      TRELLIS_LOG_LEVEL: 'silent',
      TRELLIS_OAUTH_KEY_SECRET: keySecret,
      TRELLIS_OUTBOUND_ALLOW_HOSTS: '127.0.0.1',
      TRELLIS_INSIGHTS_INTERVAL_MS: '0',
      TRELLIS_REDIS_URL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  const until = Date.now() + 60_000;
  while (!out.includes('Stop with Ctrl-C.')) {
    if (child.exitCode !== null || Date.now() > until)
      throw new Error(`trellis start did not start (exit ${child.exitCode}):\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /Management API\s+(\S+)\/admin\/api/.exec(out)?.[1];
  if (!url) throw new Error(`no control URL in:\n${out}`);
  const token = /Admin API token \(shown once\):\n\s+(\S+)/.exec(out)?.[1] ?? null;
  return { child, controlUrl: url.replace('localhost', '127.0.0.1'), token, output: () => out };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

describe.each(dialects)('the whole process killed with SIGKILL while events are written (%s)', (dialect) => {
  let databaseUrl: string;
  let cleanup: () => Promise<void>;
  let receiver: Receiver;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    receiver = await startReceiver(systemClock);
    if (dialect === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'trellis-webhooks-kill9-'));
      databaseUrl = `sqlite:${join(dir, 'trellis.db')}`;
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    } else {
      const fresh = await freshDatabaseUrl('postgres');
      databaseUrl = fresh.url;
      cleanup = fresh.drop;
    }
  });
  afterAll(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await exited(c);
      }
    }
    await receiver.close();
    await cleanup();
  });

  it('delivers every acknowledged event after the restart, each webhook-id at least once', async () => {
    const first = await startProcess(databaseUrl);
    children.push(first.child);
    const token = first.token;
    expect(token, first.output()).not.toBeNull();
    const post = (base: string, path: string, body: unknown) =>
      fetch(`${base}/admin/api${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const endpoint = await post(first.controlUrl, '/webhooks/endpoints', {
      url: receiver.url,
      eventTypes: ['account.created'],
    });
    expect(endpoint.status).toBe(201);
    receiver.secrets.push(((await endpoint.json()) as { secret: string }).secret);

    // writers create accounts until the process dies under them; only 2xx answers count as acknowledged
    const acknowledged: string[] = [];
    let attempted = 0;
    const writer = async (w: number) => {
      for (let i = 0; i < 10_000; i++) {
        attempted++;
        try {
          const res = await post(first.controlUrl, '/accounts', { name: `Writer ${w} account ${i}` });
          if (res.status !== 201) return;
          acknowledged.push(((await res.json()) as { id: string }).id);
        } catch {
          return; // the connection died with the process
        }
      }
    };
    const writing = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
    const until = Date.now() + 60_000;
    while (acknowledged.length < ACKED_BEFORE_KILL && Date.now() < until)
      await new Promise((r) => setTimeout(r, 5));
    first.child.kill('SIGKILL');
    await exited(first.child);
    await writing;
    expect(first.child.signalCode).toBe('SIGKILL');
    expect(acknowledged.length).toBeGreaterThanOrEqual(ACKED_BEFORE_KILL);
    // some writes were in flight when it died
    expect(attempted).toBeGreaterThan(acknowledged.length);

    const second = await startProcess(databaseUrl);
    children.push(second.child);
    const deliveredAccounts = () =>
      new Set(
        receiver.received
          .filter((r) => r.payload.type === 'account.created')
          .map((r) => String(r.payload.data.accountId)),
      );
    // a message claimed when the process died waits for its lease (60 s) to expire, then one round
    const deadline = Date.now() + 100_000;
    while (acknowledged.some((id) => !deliveredAccounts().has(id))) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const missing = acknowledged.filter((id) => !deliveredAccounts().has(id));
    expect(missing, `${missing.length} of ${acknowledged.length} acknowledged not delivered`).toEqual([]);
    // every signature verified (the receiver answers 400 and marks the entry otherwise)
    expect(receiver.received.filter((r) => r.payload.type === 'unverified')).toEqual([]);

    // each message made for an acknowledged account reached the receiver under its webhook-id
    const store = openStore(databaseUrl);
    try {
      const { rows } = await sql<{ id: string; payload: string }>`
        select m.id, e.payload from webhook_messages m join events e on e.id = m.event_id
        where m.event_type = 'account.created'`.execute(store.db);
      const ids = new Set(receiver.received.map((r) => String(r.headers['webhook-id'])));
      const messageOf = new Map(
        rows.map((r) => [String((JSON.parse(r.payload) as { accountId: string }).accountId), r.id]),
      );
      for (const account of acknowledged) {
        const id = messageOf.get(account);
        expect(id, account).toBeDefined();
        expect(ids.has(id ?? '')).toBe(true);
      }
    } finally {
      await store.destroy();
    }
    second.child.kill('SIGTERM');
    await exited(second.child);
  }, 240_000);
});
