/**
 * Webhook test kit: a control app (the management API as `trellis start` composes it) with a key secret and the
 * loopback receiver allowed, a worker on the same store and clock, and real HTTP receivers on 127.0.0.1:0 that
 * verify every delivery with the `standardwebhooks` package.
 */
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import type { KyselyPlugin } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { expect, vi } from 'vitest';
import { createAdminToken } from '../../src/access/index.js';
import { adminApiModules } from '../../src/cli/compose.js';
import { type Config, loadConfig } from '../../src/config/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { systemActor } from '../../src/events/index.js';
import { type Clock, ManualClock } from '../../src/kernel/index.js';
import { createSealer } from '../../src/oauth/index.js';
import { createOutboundClient } from '../../src/outbound/index.js';
import type { Db, DialectName } from '../../src/store/index.js';
import {
  type WebhookWorker,
  type WebhookWorkerOptions,
  createWebhookWorker,
} from '../../src/webhooks/index.js';
import { type TestStore, freshStore } from '../support/stores.js';

export const keySecret = 'webhook tests key secret';

export interface HooksHarness {
  app: ControlApp;
  store: TestStore;
  clock: ManualClock;
  config: Config;
  call(
    method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
    url: string,
    body?: unknown,
    token?: string | null,
  ): Promise<LightMyRequestResponse>;
  /** A worker on this store and clock, sending through the guarded outbound client (loopback allowed). */
  worker(options?: WebhookWorkerOptions): WebhookWorker;
  close(): Promise<void>;
}

export async function startHooks(dialect: DialectName, store?: TestStore): Promise<HooksHarness> {
  const s = store ?? (await freshStore(dialect));
  // the real time, so the receivers' timestamp check (5 minutes) holds until the tests move the clock
  const clock = new ManualClock(Date.now());
  const config = loadConfig(
    {},
    { databaseUrl: s.url, oauthKeySecret: keySecret, outboundAllowHosts: ['127.0.0.1'] },
  );
  const write = await createAdminToken({ db: s.db, clock }, systemActor, {
    name: 'hooks',
    scope: 'read_write',
  });
  const app = await buildControlApp({ config, store: s, clock }, { adminApi: adminApiModules });
  await app.ready();
  const outbound = createOutboundClient({ allowHosts: config.outboundAllowHosts, timeoutMs: 5000 });
  const workers: WebhookWorker[] = [];
  return {
    app,
    store: s,
    clock,
    config,
    call: (method, url, body, token = write.token) =>
      app.inject({
        method,
        url: `/admin/api${url}`,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      }),
    worker(options) {
      const w = createWebhookWorker({
        db: s.db,
        clock,
        sealer: createSealer(keySecret),
        sender: outbound,
        options: { random: () => 0, ...options },
      });
      workers.push(w);
      return w;
    },
    close: async () => {
      for (const w of workers) await w.stop();
      await outbound.close();
      await app.close();
      await s.cleanup();
    },
  };
}

/** A management API call that must succeed (2xx); answers its JSON. */
export async function ok(
  h: HooksHarness,
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  url: string,
  body?: unknown,
): Promise<Record<string, string>> {
  const res = await h.call(method, url, body);
  expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
  return res.json() as Record<string, string>;
}

/**
 * Seed 000's set-up through the management API: a service that declares `paymentrequest.paid`, a merchant's
 * application on its default plan, and the partner's endpoint at `url` for that event. Answers the application's
 * id and the endpoint's signing secret.
 */
export async function payMePartner(h: HooksHarness, url: string): Promise<{ appId: string; secret: string }> {
  const service = await ok(h, 'POST', '/services', {
    name: 'PayMe',
    systemName: 'payme',
    upstreamProduction: 'https://pay.test',
  });
  const plan = await ok(h, 'POST', `/services/${service.id}/plans`, { name: 'Free', systemName: 'free' });
  await ok(h, 'POST', `/plans/${plan.id}/make-default`);
  const account = await ok(h, 'POST', '/accounts', { name: 'Merchant' });
  const app = await ok(h, 'POST', '/applications', {
    accountId: account.id,
    serviceId: service.id,
    name: 'Shop',
  });
  await ok(h, 'POST', `/services/${service.id}/event-types`, {
    name: 'paymentrequest.paid',
    description: 'Paid.',
    schema: { type: 'object' },
    example: {},
  });
  const endpoint = await ok(h, 'POST', `/applications/${app.id}/webhook-endpoints`, {
    url,
    eventTypes: ['paymentrequest.paid'],
  });
  return { appId: String(app.id), secret: String(endpoint.secret) };
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** the verified payload */
  payload: { type: string; timestamp: string; eventId: string; data: Record<string, unknown> };
  /** the worker clock's time when it arrived */
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** How the next request is answered (default 200). */
  respond: (req: Received) => { status: number; headers?: Record<string, string>; body?: string };
  /** Secrets the signature must verify with (each one, independently). */
  secrets: string[];
  /** While set, answers wait for it (requests are recorded at once): the test decides when the sender hears. */
  hold: Promise<void> | null;
  close(): Promise<void>;
}

/**
 * Verifies with the `standardwebhooks` package as a receiver whose clock reads the worker's clock would: the
 * package checks the timestamp against `Date.now()`, so Date alone is set to the worker's time while it checks.
 */
export function verifyWith(
  secret: string,
  body: string,
  headers: IncomingHttpHeaders,
  nowMs: number,
): unknown {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(nowMs);
  try {
    return new Webhook(secret).verify(body, {
      'webhook-id': String(headers['webhook-id']),
      'webhook-timestamp': String(headers['webhook-timestamp']),
      'webhook-signature': String(headers['webhook-signature']),
    });
  } finally {
    vi.useRealTimers();
  }
}

export async function startReceiver(clock: Clock, secrets: string[] = []): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    received: [],
    respond: () => ({ status: 200 }),
    secrets,
    hold: null,
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let payload: Received['payload'] | undefined;
      let failure = '';
      for (const secret of receiver.secrets) {
        try {
          payload = verifyWith(secret, body, req.headers, clock.now()) as Received['payload'];
        } catch (err) {
          failure = `signature not verified: ${(err as Error).message}`;
        }
      }
      if (receiver.secrets.length === 0) failure = 'no secret to verify with';
      if (failure !== '' || payload === undefined) {
        res.writeHead(400).end(failure);
        receiver.received.push({
          headers: req.headers,
          body,
          payload: { type: 'unverified', timestamp: '', eventId: '', data: {} },
          at: clock.now(),
        });
        return;
      }
      const entry = { headers: req.headers, body, payload, at: clock.now() };
      receiver.received.push(entry);
      const answer = receiver.respond(entry);
      const send = () => res.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? 'ok');
      if (receiver.hold) void receiver.hold.then(send);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

export interface SimulatedOutage {
  /** The store's database as the worker should see it: queries fail as set below. */
  db: Db;
  /**
   * `settlements`: every write that settles a message (an UPDATE of webhook_messages) fails, claims and reads go
   * on, as when the database goes away between a claim and its settlement; `all`: every query fails; `none`.
   */
  fail: 'none' | 'settlements' | 'all';
  /** Queries failed so far. */
  failures: number;
}

/**
 * The store's database seen through a failing connection: the queries `fail` names are refused with the error a
 * PostgreSQL stopping under the pool gives (57P01, which `isDatabaseUnavailable` recognises), on either dialect.
 */
export function simulatedOutage(db: Db): SimulatedOutage {
  const outage: SimulatedOutage = { db, fail: 'none', failures: 0 };
  const plugin: KyselyPlugin = {
    transformQuery({ node }) {
      const settles =
        node.kind === 'UpdateQueryNode' && JSON.stringify(node.table ?? {}).includes('"webhook_messages"');
      if (outage.fail === 'all' || (outage.fail === 'settlements' && settles)) {
        outage.failures++;
        throw Object.assign(new Error('terminating connection due to administrator command'), {
          code: '57P01',
        });
      }
      return node;
    },
    transformResult: async ({ result }) => result,
  };
  outage.db = db.withPlugin(plugin);
  return outage;
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  data: object;
}

/** A logger that keeps its lines, for tests that count them. */
export function recordingLogger(): {
  lines: LogLine[];
  info(data: object, message?: string): void;
  warn(data: object, message?: string): void;
  error(data: object, message?: string): void;
} {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (data: object, message = '') =>
      lines.push({ level, message, data });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}
