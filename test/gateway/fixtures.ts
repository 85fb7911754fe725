/**
 * Test fixtures: rows inserted directly with Kysely (the domain layer is not needed to test the gateway), a real
 * upstream server, and a gateway on port 0.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request as undiciRequest, type Agent } from 'undici';
import { type Config, loadConfig } from '../../src/config/index.js';
import { recordChange, systemActor } from '../../src/events/index.js';
import { createGateway, type Gateway, type GatewayDeps } from '../../src/gateway/index.js';
import { type Clock, ManualClock, generateSecret, hashSecret, newId } from '../../src/kernel/index.js';
import { type Store, migrateToLatest, openStore } from '../../src/store/index.js';

export async function openTestStore(): Promise<Store> {
  const store = openStore('sqlite::memory:');
  await migrateToLatest(store.db);
  return store;
}

export function testConfig(overrides: Partial<Config> = {}): Config {
  return loadConfig(
    {},
    {
      databaseUrl: 'sqlite::memory:',
      redisUrl: '',
      usageFlushMs: 60_000,
      snapshotRefreshMs: 100,
      ...overrides,
    },
  );
}

const iso = () => new Date().toISOString();

export interface ServiceFixture {
  id: string;
  hitsId: string;
  systemName: string;
}

export interface AppFixture {
  id: string;
  appId: string;
  accountId: string;
}

/** Inserts rows; every name is unique, so tests can share nothing. */
export class Fixtures {
  constructor(
    readonly store: Store,
    readonly clock: Clock = new ManualClock(),
  ) {}

  get db() {
    return this.store.db;
  }

  async service(
    fields: Partial<{
      upstream: string;
      sandbox: string;
      authMode: string;
      location: string;
      userKeyName: string;
      appIdName: string;
      appKeyName: string;
      secretToken: string | null;
      host: string;
      prefix: string;
      limiterMode: string;
      failureMode: string;
      maxBodyBytes: number;
      defaultRule: boolean;
    }> = {},
  ): Promise<ServiceFixture> {
    const id = newId('service');
    const systemName = `svc${randomBytes(4).toString('hex')}`;
    await this.db
      .insertInto('services')
      .values({
        id,
        name: systemName,
        system_name: systemName,
        description: '',
        upstream_production: fields.upstream ?? 'http://127.0.0.1:9',
        upstream_sandbox: fields.sandbox ?? fields.upstream ?? 'http://127.0.0.1:9',
        auth_mode: fields.authMode ?? 'user_key',
        credentials_location: fields.location ?? 'header',
        user_key_name: fields.userKeyName ?? 'X-User-Key',
        app_id_name: fields.appIdName ?? 'X-App-Id',
        app_key_name: fields.appKeyName ?? 'X-App-Key',
        secret_token: fields.secretToken === undefined ? null : fields.secretToken,
        gateway_host: fields.host ?? '',
        gateway_path_prefix: fields.prefix ?? '',
        limiter_mode: fields.limiterMode ?? 'strict',
        limiter_failure_mode: fields.failureMode ?? 'open',
        max_body_bytes: fields.maxBodyBytes ?? 100 * 1024 * 1024,
        openapi: null,
        created_at: iso(),
        updated_at: iso(),
      })
      .execute();
    const hitsId = await this.metric(id, 'hits');
    if (fields.defaultRule !== false) await this.rule(id, { pattern: '/', metricId: hitsId, method: 'ANY' });
    return { id, hitsId, systemName };
  }

  async metric(serviceId: string, systemName: string, parentId: string | null = null): Promise<string> {
    const id = newId('metric');
    await this.db
      .insertInto('metrics')
      .values({
        id,
        service_id: serviceId,
        system_name: systemName,
        friendly_name: systemName,
        unit: 'hit',
        description: '',
        parent_id: parentId,
        created_at: iso(),
      })
      .execute();
    return id;
  }

  private position = 0;

  async rule(
    serviceId: string,
    r: {
      pattern: string;
      metricId: string;
      method?: string;
      delta?: number;
      position?: number;
      last?: boolean;
    },
  ): Promise<string> {
    const id = newId('mappingRule');
    await this.db
      .insertInto('mapping_rules')
      .values({
        id,
        service_id: serviceId,
        http_method: r.method ?? 'GET',
        pattern: r.pattern,
        metric_id: r.metricId,
        delta: r.delta ?? 1,
        position: r.position ?? ++this.position,
        last: r.last ? 1 : 0,
        created_at: iso(),
      })
      .execute();
    return id;
  }

  async plan(
    serviceId: string,
    fields: Partial<{ endUserSource: string; endUserName: string }> = {},
  ): Promise<string> {
    const id = newId('plan');
    await this.db
      .insertInto('plans')
      .values({
        id,
        service_id: serviceId,
        name: 'Plan',
        system_name: `plan${randomBytes(4).toString('hex')}`,
        description: '',
        state: 'published',
        approval_required: 0,
        is_default: 0,
        trial_days: 0,
        end_user_key_source: fields.endUserSource ?? 'header',
        end_user_key_name: fields.endUserName ?? '',
        created_at: iso(),
        updated_at: iso(),
      })
      .execute();
    return id;
  }

  async limit(
    planId: string,
    metricId: string,
    period: string,
    value: number,
    scope = 'application',
  ): Promise<string> {
    const id = newId('planLimit');
    await this.db
      .insertInto('plan_limits')
      .values({ id, plan_id: planId, metric_id: metricId, period, value, scope, created_at: iso() })
      .execute();
    return id;
  }

  async disable(planId: string, metricId: string): Promise<void> {
    await this.db
      .insertInto('plan_disabled_metrics')
      .values({ plan_id: planId, metric_id: metricId })
      .execute();
  }

  async account(state = 'approved'): Promise<string> {
    const id = newId('account');
    await this.db
      .insertInto('accounts')
      .values({ id, name: 'Acme', state, custom_fields: '{}', created_at: iso(), updated_at: iso() })
      .execute();
    return id;
  }

  async application(
    serviceId: string,
    planId: string,
    fields: Partial<{ accountId: string; state: string; environment: string; allowedIps: string[] }> = {},
  ): Promise<AppFixture> {
    const id = newId('application');
    const accountId = fields.accountId ?? (await this.account());
    const appId = randomBytes(8).toString('hex');
    await this.db
      .insertInto('applications')
      .values({
        id,
        account_id: accountId,
        service_id: serviceId,
        plan_id: planId,
        name: 'App',
        description: '',
        state: fields.state ?? 'live',
        environment: fields.environment ?? 'production',
        app_id: appId,
        allowed_ips: JSON.stringify(fields.allowedIps ?? []),
        custom_fields: '{}',
        requested_plan_id: null,
        created_at: iso(),
        updated_at: iso(),
      })
      .execute();
    return { id, appId, accountId };
  }

  /** A credential of the application; returns the plaintext secret, as the developer would have it. */
  async key(
    applicationId: string,
    kind: 'user_key' | 'app_key' = 'user_key',
    state = 'active',
  ): Promise<{ secret: string; id: string }> {
    const secret = generateSecret(kind === 'user_key' ? 'userKey' : 'appKey');
    const id = newId('credential');
    await this.db
      .insertInto('credentials')
      .values({
        id,
        application_id: applicationId,
        kind,
        secret_hash: hashSecret(secret),
        display_prefix: secret.slice(0, 10),
        state,
        created_at: iso(),
        revoked_at: null,
      })
      .execute();
    return { secret, id };
  }

  /** Active user keys of an application known by their stored hashes only (many at once). */
  async keyHashes(applicationId: string, hashes: readonly string[], displayPrefix: string): Promise<void> {
    await this.db
      .insertInto('credentials')
      .values(
        hashes.map((secret_hash) => ({
          id: newId('credential'),
          application_id: applicationId,
          kind: 'user_key',
          secret_hash,
          display_prefix: displayPrefix,
          state: 'active',
          created_at: iso(),
          revoked_at: null,
        })),
      )
      .execute();
  }

  /** A service, plan, live application and user key in one go. */
  async keyed(fields: Parameters<Fixtures['service']>[0] = {}): Promise<{
    service: ServiceFixture;
    planId: string;
    app: AppFixture;
    key: string;
  }> {
    const service = await this.service(fields);
    const planId = await this.plan(service.id);
    const app = await this.application(service.id, planId);
    const { secret } = await this.key(app.id);
    return { service, planId, app, key: secret };
  }

  /** Writes a change to the outbox, as the domain layer does after each change. */
  async change(
    entityType: string,
    entityId: string,
    payload: Record<string, unknown> = {},
    type = `${entityType}.updated`,
  ): Promise<void> {
    await recordChange(this.db, this.clock, systemActor, { type, entityType, entityId, payload });
  }
}

/** What the test upstream saw of a request. */
export interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
  bodySha256: string;
}

export interface Upstream {
  url: string;
  port: number;
  server: Server;
  seen: Seen[];
  /** Handles special paths; return true when it answered. */
  routes: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  close(): Promise<void>;
}

/** A real upstream: answers `{ok, upstream, method, url, headers}` as JSON after reading the body. */
export async function startUpstream(name = 'production'): Promise<Upstream> {
  const seen: Seen[] = [];
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const special = routes.get(path);
    if (special) {
      special(req, res);
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
      };
      seen.push(s);
      const body = JSON.stringify({ ok: true, upstream: name, ...s });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface RunningGateway {
  gateway: Gateway;
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startGateway(
  deps: Partial<GatewayDeps> & { store: Store },
  host = '127.0.0.1',
): Promise<RunningGateway> {
  const gateway = createGateway({ config: testConfig(), clock: new ManualClock(), ...deps });
  const address = await gateway.listen(0, host);
  const url = host.includes(':') ? `http://[${host}]:${address.port}` : `http://${host}:${address.port}`;
  return { gateway, url, port: address.port, close: () => gateway.close() };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: {
    error?: { code: string; message: string; requestId: string; details?: Record<string, unknown> };
  } & Record<string, unknown>;
}

/** One request through a fresh connection-pooled client. */
export async function call(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    dispatcher?: Agent;
  } = {},
): Promise<Reply> {
  const res = await undiciRequest(url, {
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers,
    body: options.body,
    dispatcher: options.dispatcher,
  });
  const text = await res.body.text();
  let json: Reply['json'] = {};
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/** Polls `check` until it is true or `timeoutMs` passes; resolves with the time it took. */
export async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  stepMs = 10,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
