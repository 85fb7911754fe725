/**
 * Fault figures for docs/reliability.md: what Trellis does when PostgreSQL, the upstream or a gateway process
 * dies, measured on this machine.
 *
 *   node --import tsx scripts/faults.ts              # about a minute
 *   node --import tsx scripts/faults.ts --seconds 5  # shorter fault windows
 *   node --import tsx scripts/faults.ts --log        # also show Trellis's own log lines (JSON)
 *
 * Needs the PostgreSQL server binaries (`/usr/lib/postgresql/<v>/bin`: the script runs a PostgreSQL of its own in
 * a temporary directory, as the `postgres` user when run as root) and Redis on 127.0.0.1:6379 (for the workers).
 * Trellis runs in this process as `trellis start` composes it (gateway, control server, OAuth), with rows made by
 * the test fixtures; load is a few clients in a loop on 127.0.0.1.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { startGatewayWorkers } from '../src/cli/gateway-workers.js';
import { type Running, startTrellis } from '../src/cli/start.js';
import { loadConfig } from '../src/config/index.js';
import { type Change, recordChange, runChange, systemActor } from '../src/events/index.js';
import { newId, systemClock } from '../src/kernel/index.js';
import { openStore, type Store, type Tx } from '../src/store/index.js';
import { Fixtures } from '../test/gateway/fixtures.js';
import { type OwnedPostgres, startOwnedPostgres } from '../test/support/owned-postgres.js';

const args = process.argv.slice(2);
const seconds = Number(args[args.indexOf('--seconds') + 1]) || 10;
const showLog = args.includes('--log');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One GET; 0 when the connection failed. Returns the status and the error code of a denial. */
async function get(
  url: string,
  headers: Record<string, string>,
  dispatcher?: Agent,
): Promise<{ status: number; code: string; ms: number }> {
  const started = performance.now();
  try {
    const res = await request(url, { headers, dispatcher, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await res.body.text();
    let code = '';
    if (res.statusCode >= 400) {
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
      } catch {
        code = '';
      }
    }
    return { status: res.statusCode, code, ms: performance.now() - started };
  } catch (err) {
    return { status: 0, code: (err as { code?: string }).code ?? 'error', ms: performance.now() - started };
  }
}

/** Steady load from `clients` loops: counts answers by status (and denial code), and the slowest one. */
function load(url: string, headers: Record<string, string>, clients: number) {
  const agent = new Agent({ connections: clients });
  const counts = new Map<string, number>();
  let slowest = 0;
  let total = 0;
  let stopped = false;
  const loops = Array.from({ length: clients }, async () => {
    while (!stopped) {
      const r = await get(url, headers, agent);
      total++;
      slowest = Math.max(slowest, r.ms);
      const label = r.status === 200 ? '200' : `${r.status} ${r.code}`.trim();
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      await agent.close();
      return { total, counts: Object.fromEntries(counts), slowestMs: Math.round(slowest) };
    },
  };
}

function tally(into: Map<string, number>, r: { status: number; code: string }): void {
  const label = `${r.status} ${r.code}`.trim();
  into.set(label, (into.get(label) ?? 0) + 1);
}

/** Milliseconds until `check` holds (polled every 20 ms), or -1 after `limitMs`. */
async function timeUntil(check: () => Promise<boolean>, limitMs = 30_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    if (await check()) return Math.round(performance.now() - started);
    await sleep(20);
  }
  return -1;
}

function startUpstream(port = 0): Promise<Server> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const report: string[] = [];
const out = (line: string) => {
  report.push(line);
  process.stdout.write(`${line}\n`);
};

async function main(): Promise<void> {
  const pgOwned: OwnedPostgres = await startOwnedPostgres();
  let running: Running | null = null;
  let store: Store | null = null;
  let upstream = await startUpstream();
  const upstreamPort = (upstream.address() as AddressInfo).port;
  try {
    const config = loadConfig(
      {},
      {
        databaseUrl: pgOwned.url,
        gatewayPort: 0,
        controlPort: 0,
        demo: false,
        logLevel: showLog ? 'info' : 'silent',
      },
    );
    running = await startTrellis(config, () => {});
    store = openStore(pgOwned.url, { poolSize: 40 });
    const f = new Fixtures(store, systemClock);
    const { service, app, key } = await f.keyed({
      upstream: `http://127.0.0.1:${upstreamPort}`,
      prefix: '/faults',
    });
    await f.change('service', service.id, { serviceId: service.id });
    const gw = running.gatewayUrl;
    const url = `${gw}/faults/x`;
    const known = { 'X-User-Key': key };
    const admin = { authorization: `Bearer ${running.bootstrap.adminToken}` };
    const control = () => get(`${running!.controlUrl}/admin/api/services`, admin);
    let unknownN = 0;
    const unknown = () => get(url, { 'X-User-Key': `trk_unknown${unknownN++}` });
    await timeUntil(async () => (await get(url, known)).status === 200);

    out(
      `# Fault figures (${new Date().toISOString()}, node ${process.version}, fault windows of ${seconds} s)`,
    );
    out('');

    // 1. Backends terminated every 200 ms during traffic
    {
      const traffic = load(url, known, 8);
      const unknownAnswers = new Map<string, number>();
      const controlAnswers = new Map<string, number>();
      let terminated = 0;
      const until = performance.now() + seconds * 1000;
      while (performance.now() < until) {
        terminated += await pgOwned.terminateAll();
        tally(unknownAnswers, await unknown());
        tally(controlAnswers, await control());
        await sleep(200);
      }
      const t = await traffic.stop();
      const fresh = await f.key(app.id);
      const lookupMs = await timeUntil(
        async () => (await get(url, { 'X-User-Key': fresh.secret })).status === 200,
      );
      await store.db
        .updateTable('credentials')
        .set({ state: 'revoked' })
        .where('id', '=', fresh.id)
        .execute();
      await f.change('credential', fresh.id, { applicationId: app.id }, 'credential.revoked');
      const revokeMs = await timeUntil(
        async () => (await get(url, { 'X-User-Key': fresh.secret })).status === 401,
      );
      // the revoke evicted the application's cached keys: read them back before the next scenario
      await get(url, known);
      out('## PostgreSQL backends terminated every 200 ms during traffic');
      out(`- connections terminated: ${terminated}; the process kept running`);
      out(`- known key, 8 clients: ${t.total} calls, ${JSON.stringify(t.counts)}, slowest ${t.slowestMs} ms`);
      out(`- unknown keys meanwhile: ${JSON.stringify(Object.fromEntries(unknownAnswers))}`);
      out(`- management API meanwhile: ${JSON.stringify(Object.fromEntries(controlAnswers))}`);
      out(
        `- afterwards: a new key is looked up and served after ${lookupMs} ms; a revoke made then applies after ${revokeMs} ms (change feed poll ${config.snapshotRefreshMs} ms)`,
      );
      out('');
    }

    // 2. PostgreSQL stopped for a while, then started again
    {
      const second = await f.key(app.id);
      await get(url, { 'X-User-Key': second.secret });
      const traffic = load(url, known, 8);
      const unknownAnswers = new Map<string, number>();
      const controlAnswers = new Map<string, number>();
      const cachedAnswers = new Map<string, number>();
      await sleep(500);
      const stopStarted = performance.now();
      await pgOwned.stop();
      const stopMs = Math.round(performance.now() - stopStarted);
      const until = performance.now() + seconds * 1000;
      while (performance.now() < until) {
        tally(unknownAnswers, await unknown());
        tally(controlAnswers, await control());
        tally(cachedAnswers, await get(url, { 'X-User-Key': second.secret }));
        await sleep(200);
      }
      const startStarted = performance.now();
      await pgOwned.start();
      const startMs = Math.round(performance.now() - startStarted);
      const back = performance.now();
      const unknownMs = await timeUntil(async () => (await unknown()).status === 401);
      const controlMs = await timeUntil(async () => (await control()).status === 200);
      await store.db
        .updateTable('credentials')
        .set({ state: 'revoked' })
        .where('id', '=', second.id)
        .execute();
      await f.change('credential', second.id, { applicationId: app.id }, 'credential.revoked');
      const revokeMs = await timeUntil(
        async () => (await get(url, { 'X-User-Key': second.secret })).status === 401,
      );
      const t = await traffic.stop();
      out(`## PostgreSQL stopped for ${seconds} s during traffic, then started again`);
      out(`- pg_ctl stop -m fast took ${stopMs} ms, start ${startMs} ms`);
      out(
        `- known key, 8 clients, whole run: ${t.total} calls, ${JSON.stringify(t.counts)}, slowest ${t.slowestMs} ms`,
      );
      out(`- another known key while down: ${JSON.stringify(Object.fromEntries(cachedAnswers))}`);
      out(`- unknown keys while down: ${JSON.stringify(Object.fromEntries(unknownAnswers))}`);
      out(`- management API while down: ${JSON.stringify(Object.fromEntries(controlAnswers))}`);
      out(
        `- after the start: unknown keys answered (401) after ${unknownMs} ms, management API 200 after ${unknownMs + controlMs} ms, a revoke made then applied after ${revokeMs} ms more (measured from ${Math.round(performance.now() - back)} ms of checks)`,
      );
      out('');
    }

    // 2b. PostgreSQL frozen (SIGSTOP): connections open, nothing answers
    {
      const third = await f.key(app.id);
      await get(url, { 'X-User-Key': third.secret });
      const traffic = load(url, known, 8);
      await sleep(500);
      pgOwned.freeze();
      const asked: Promise<void>[] = [];
      const unknownAnswers = new Map<string, number>();
      const controlAnswers = new Map<string, number>();
      const cachedAnswers = new Map<string, number>();
      let unknownSlowest = 0;
      let controlSlowest = 0;
      const until = performance.now() + seconds * 1000;
      while (performance.now() < until) {
        asked.push(
          unknown().then((r) => {
            tally(unknownAnswers, r);
            unknownSlowest = Math.max(unknownSlowest, r.ms);
          }),
          control().then((r) => {
            tally(controlAnswers, r);
            controlSlowest = Math.max(controlSlowest, r.ms);
          }),
          get(url, { 'X-User-Key': third.secret }).then((r) => tally(cachedAnswers, r)),
        );
        await sleep(500);
      }
      pgOwned.thaw();
      const back = performance.now();
      await Promise.all(asked);
      const drainedMs = Math.round(performance.now() - back);
      const unknownMs = await timeUntil(async () => (await unknown()).status === 401);
      const controlMs = await timeUntil(async () => (await control()).status === 200);
      const t = await traffic.stop();
      out(`## PostgreSQL frozen (SIGSTOP) for ${seconds} s during traffic, then let go`);
      out(`- known key, 8 clients: ${t.total} calls, ${JSON.stringify(t.counts)}, slowest ${t.slowestMs} ms`);
      out(`- another known key while frozen: ${JSON.stringify(Object.fromEntries(cachedAnswers))}`);
      out(
        `- unknown keys while frozen: ${JSON.stringify(Object.fromEntries(unknownAnswers))}, slowest ${Math.round(unknownSlowest)} ms`,
      );
      out(
        `- management API while frozen: ${JSON.stringify(Object.fromEntries(controlAnswers))}, slowest ${Math.round(controlSlowest)} ms`,
      );
      out(
        `- after SIGCONT: every request still waiting had its answer ${drainedMs} ms later; then unknown keys 401 after ${unknownMs} ms, the management API 200 after ${controlMs} ms more`,
      );
      out('');
    }

    // 3. The change feed under concurrent writers
    {
      const planId = await f.plan(service.id);
      const agent = new Agent({ connections: 16 });
      const deps = { db: store.db, clock: systemClock };
      /**
       * n revocations by 30 writers; `slow` makes some hold their transaction open. `unordered` writes the event
       * as Trellis did before the outbox lock (a plain insert), to show what that missed and what the lock costs.
       */
      const batch = async (n: number, slow: boolean, unordered = false) => {
        const keys: { id: string; secret: string; applicationId: string }[] = [];
        for (let i = 0; i < n; i++) {
          const a = await f.application(service.id, planId);
          const k = await f.key(a.id);
          keys.push({ id: k.id, secret: k.secret, applicationId: a.id });
        }
        for (const k of keys) await get(url, { 'X-User-Key': k.secret }, agent);
        const started = performance.now();
        let next = 0;
        const writer = async () => {
          while (next < keys.length) {
            const i = next++;
            const k = keys[i]!;
            const change: Change = {
              type: 'credential.revoked',
              entityType: 'credential',
              entityId: k.id,
              payload: { applicationId: k.applicationId },
            };
            const apply = (tx: Tx) =>
              tx.updateTable('credentials').set({ state: 'revoked' }).where('id', '=', k.id).execute();
            if (unordered) {
              await store!.db.transaction().execute(async (tx) => {
                await apply(tx);
                await tx
                  .insertInto('audit_log')
                  .values({
                    id: newId('auditEntry'),
                    at: new Date().toISOString(),
                    actor_type: 'system',
                    actor_id: null,
                    action: change.type,
                    entity_type: change.entityType,
                    entity_id: change.entityId,
                    data: JSON.stringify(change.payload),
                  })
                  .execute();
                await tx
                  .insertInto('events')
                  .values({
                    id: newId('event'),
                    type: change.type,
                    occurred_at: new Date().toISOString(),
                    entity_type: change.entityType,
                    entity_id: change.entityId,
                    payload: JSON.stringify(change.payload),
                    dispatched_at: null,
                  })
                  .execute();
                if (slow && i % 4 === 0) await sleep(Math.random() * 50);
              });
            } else if (slow && i % 4 === 0) {
              // a slow commit: the event is written, then the transaction stays open a while
              await store!.db.transaction().execute(async (tx) => {
                await apply(tx);
                await recordChange(tx, systemClock, systemActor, change);
                await sleep(Math.random() * 50);
              });
            } else {
              await runChange(deps, systemActor, async (tx, record) => {
                await apply(tx);
                await record(change);
                if (slow && i % 4 === 1) await sleep(Math.random() * 50);
              });
            }
          }
        };
        await Promise.all(Array.from({ length: 30 }, writer));
        const writeMs = performance.now() - started;
        const open = async () => {
          let accepted = 0;
          await Promise.all(
            keys.map(async (k) => {
              if ((await get(url, { 'X-User-Key': k.secret }, agent)).status === 200) accepted++;
            }),
          );
          return accepted;
        };
        const allMs = await timeUntil(async () => (await open()) === 0, 5000);
        return {
          writeMs: Math.round(writeMs),
          rate: Math.round((n / writeMs) * 1000),
          allMs,
          left: await open(),
        };
      };
      const plain = await batch(300, false);
      const mixed = await batch(300, true);
      const unorderedPlain = await batch(300, false, true);
      const unorderedMixed = await batch(300, true, true);
      await agent.close();
      out('## The change feed under concurrent writers');
      out(
        `- 300 key revocations through runChange by 30 concurrent writers: ${plain.writeMs} ms (${plain.rate} changes/s); every revoked key refused ${plain.allMs} ms after the last commit; still accepted after 5 s: ${plain.left}`,
      );
      out(
        `- 300 more, a quarter of the writers holding their transaction open up to 50 ms after writing the event (holding the outbox lock: the worst case), a quarter before: ${mixed.writeMs} ms (${mixed.rate} changes/s); every revoked key refused ${mixed.allMs} ms after the last commit; still accepted after 5 s: ${mixed.left}`,
      );
      out(
        `- for comparison, the same audit entry and event written without the lock (as before the fix): 300 plain ${unorderedPlain.writeMs} ms (${unorderedPlain.rate} changes/s), still accepted after 5 s: ${unorderedPlain.left}; 300 with a quarter held open after writing: ${unorderedMixed.writeMs} ms, still accepted after 5 s: ${unorderedMixed.left}`,
      );
      out('');
    }

    // 4. The upstream dies
    {
      const traffic = load(url, known, 8);
      await sleep(300);
      const downAt = performance.now();
      upstream.closeAllConnections();
      await new Promise<void>((r) => upstream.close(() => r()));
      await sleep(Math.min(seconds, 3) * 1000);
      upstream = await startUpstream(upstreamPort);
      const upAt = performance.now();
      const backMs = await timeUntil(async () => (await get(url, known)).status === 200);
      const t = await traffic.stop();
      out(`## The upstream stops for ${Math.round((upAt - downAt) / 1000)} s`);
      out(`- 8 clients: ${t.total} calls, ${JSON.stringify(t.counts)}, slowest ${t.slowestMs} ms`);
      out(`- first 200 ${backMs} ms after it listens again`);
      out('');
    }

    // 5. A gateway worker killed with SIGKILL
    {
      const workerConfig = loadConfig(
        {},
        {
          databaseUrl: pgOwned.url,
          redisUrl: 'redis://127.0.0.1:6379',
          gatewayPort: 0,
          logLevel: showLog ? 'info' : 'silent',
        },
      );
      const events: string[] = [];
      const logger = {
        info: (_: object, m?: string) => events.push(m ?? ''),
        warn: (_: object, m?: string) => events.push(m ?? ''),
        error: (_: object, m?: string) => events.push(m ?? ''),
      };
      const workers = await startGatewayWorkers(2, {
        config: workerConfig,
        logger,
        options: { redisKeyPrefix: `trellis-faults:${Date.now()}:` },
      });
      try {
        const wurl = `http://127.0.0.1:${workers.port}/faults/x`;
        const traffic = load(wurl, known, 8);
        await sleep(1000);
        const killedAt = performance.now();
        process.kill(workers.pids[0]!, 'SIGKILL');
        const replacedMs = await timeUntil(
          async () => events.includes('gateway: replacement worker listening'),
          30_000,
        );
        await sleep(1000);
        const t = await traffic.stop();
        out('## One of two gateway workers killed with SIGKILL during traffic');
        out(`- 8 clients: ${t.total} calls, ${JSON.stringify(t.counts)}, slowest ${t.slowestMs} ms`);
        out(
          `- the replacement listened ${replacedMs} ms after the kill (${Math.round(performance.now() - killedAt)} ms incl. 1 s more load)`,
        );
        out('');
      } finally {
        await workers.close();
      }
    }
  } finally {
    await running?.stop();
    await store?.destroy();
    await new Promise<void>((r) => upstream.close(() => r()));
    await pgOwned.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
