/**
 * `trellis start`: gateway, control and the demo upstream in one process (or N gateway processes with
 * `--workers N`), on the embedded defaults unless configured otherwise.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { buildControlApp } from '../control/index.js';
import { createDemoUpstream } from '../demo/index.js';
import type { ChangeDeps } from '../events/index.js';
import {
  type Gateway,
  type GatewayWorkers,
  createGateway,
  publishChange,
  startGatewayWorkers,
} from '../gateway/index.js';
import { systemClock } from '../kernel/index.js';
import { OAuthTokenVerifier, issuerOf } from '../oauth/index.js';
import { type Bootstrap, bootstrap } from './bootstrap.js';
import { adminApiModules, controlModules } from './compose.js';
import { connectStore, migrate, redact } from './connect.js';

export interface Running {
  controlUrl: string;
  gatewayUrl: string;
  bootstrap: Bootstrap;
  stop(): Promise<void>;
}

function listenServer(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

/** Starts everything and resolves once every server listens. */
export async function startTrellis(
  config: Config,
  log: (line: string) => void = console.log,
): Promise<Running> {
  const store = await connectStore(config);
  const applied = await migrate(store);
  if (applied.length > 0) log(`Database ${redact(config.databaseUrl)}: applied ${applied.join(', ')}`);
  const clock = systemClock;

  const closers: (() => Promise<void>)[] = [];
  let demoUrl = `http://127.0.0.1:${config.demoUpstreamPort}`;
  if (config.demo) {
    const upstream = createDemoUpstream();
    const addr = await listenServer(upstream, config.demoUpstreamPort, '127.0.0.1');
    demoUrl = `http://127.0.0.1:${addr.port}`;
    closers.push(() => new Promise((r) => upstream.close(() => r())));
  }

  // After a change commits, tell every gateway at once (without Redis they notice on their next poll).
  const publisher = config.redisUrl
    ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true })
    : null;
  publisher?.on('error', () => {});
  const deps: ChangeDeps = {
    db: store.db,
    clock,
    ...(publisher && { onCommitted: () => void publishChange(publisher).catch(() => {}) }),
  };

  const seeded = await bootstrap(deps, config, demoUrl);

  let gatewayPort: number;
  let gateway: Gateway | null = null;
  let workers: GatewayWorkers | null = null;
  if (config.gatewayWorkers > 1) {
    workers = await startGatewayWorkers(config.gatewayWorkers, { config });
    gatewayPort = workers.port;
  } else {
    // OAuth 2.0 tokens of oauth2 services are checked locally against the signing keys in the store
    const tokenVerifier = await OAuthTokenVerifier.create({
      db: store.db,
      clock,
      issuer: issuerOf(config.publicUrl),
    });
    closers.push(async () => tokenVerifier.close());
    gateway = createGateway({ config, store, clock, tokenVerifier });
    gatewayPort = (await gateway.listen(config.gatewayPort, config.host)).port;
  }

  const gatewayUrl = config.gatewayPort === 0 ? `http://localhost:${gatewayPort}` : config.gatewayPublicUrl;
  // With a port chosen by the system, the portal's try-it relay must learn the gateway's real address.
  const controlConfig = Object.freeze({ ...config, gatewayPublicUrl: gatewayUrl });

  const control = await buildControlApp(
    { config: controlConfig, store, clock, ...(deps.onCommitted && { onCommitted: deps.onCommitted }) },
    { adminApi: adminApiModules, modules: controlModules, logger: { level: config.logLevel } },
  );
  await control.listen({ port: config.controlPort, host: config.host });
  const controlAddr = control.server.address() as AddressInfo;

  const controlUrl = config.controlPort === 0 ? `http://localhost:${controlAddr.port}` : config.publicUrl;
  return {
    controlUrl,
    gatewayUrl,
    bootstrap: seeded,
    stop: async () => {
      await control.close();
      await gateway?.close();
      await workers?.close();
      for (const close of closers) await close();
      publisher?.disconnect();
      await store.destroy();
    },
  };
}

/** The lines `trellis start` prints: where everything is, and the secrets made now (shown this once). */
export function describeStart(running: Running): string {
  const { bootstrap: b } = running;
  const lines = [
    '',
    'Trellis is running.',
    `  Developer portal   ${running.controlUrl}/`,
    `  Admin console      ${running.controlUrl}/admin`,
    `  Management API     ${running.controlUrl}/admin/api  (reference: ${running.controlUrl}/admin/api/docs)`,
    `  Gateway            ${running.gatewayUrl}`,
  ];
  if (b.admin) {
    lines.push('', 'First admin user (shown once):', `  e-mail    ${b.admin.email}`);
    lines.push(`  password  ${b.admin.generated ? b.admin.password : '(from TRELLIS_ADMIN_PASSWORD)'}`);
  }
  if (b.adminToken) lines.push('', 'Admin API token (shown once):', `  ${b.adminToken}`);
  if (b.demo) {
    lines.push(
      '',
      'Demo: the built-in Quotes API behind the gateway, a developer account (developer@example.com /',
      'demo-developer-password) and its application on the Free plan (10 calls a minute). Try it:',
      `  curl -H '${b.demo.keyHeader}: ${b.demo.userKey}' ${running.gatewayUrl}${b.demo.pathPrefix}/quotes/1`,
    );
  }
  if (b.adminToken) {
    lines.push(
      '',
      'And the management API:',
      `  curl -H 'Authorization: Bearer ${b.adminToken}' ${running.controlUrl}/admin/api/services`,
    );
  }
  lines.push('', 'Stop with Ctrl-C.', '');
  return lines.join('\n');
}
