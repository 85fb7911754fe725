/**
 * `trellis start`: gateway, control, the webhook worker and the demo upstream in one process (or N gateway
 * processes with `--workers N`), on the embedded defaults unless configured otherwise.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { createDemoUpstream } from '../demo/index.js';
import type { ChangeDeps } from '../events/index.js';
import { publishChange } from '../gateway/index.js';
import { systemClock } from '../kernel/index.js';
import { type Bootstrap, bootstrap } from './bootstrap.js';
import { CliError, exitCodes } from './cli-error.js';
import { connectStore, migrate, redact } from './connect.js';
import { startGatewayWorkers } from './gateway-workers.js';
import { composeControlRole, composeGatewayRole, composeWorkerRole, createProcessLogger } from './roles.js';

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

/** A port another program holds is a clear message, not a stack trace. */
function explainListenError(err: unknown, what: string, port: number, variable: string): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    return new CliError(
      exitCodes.failure,
      `Cannot listen for the ${what} on port ${port}: ${code === 'EADDRINUSE' ? 'another program uses it' : 'permission denied'}. Set ${variable} to another port.`,
    );
  }
  return err;
}

/**
 * Starts everything and resolves once every server listens. If any part fails to start, what was already
 * started is stopped again, so a failed start leaves nothing running.
 */
export async function startTrellis(
  config: Config,
  log: (line: string) => void = console.log,
): Promise<Running> {
  const logger = createProcessLogger(config, 'trellis');
  const store = await connectStore(config, logger);
  // Stoppers of what has started, run in reverse order by stop() or after a failed start.
  const started: (() => Promise<void>)[] = [() => store.destroy()];
  const stopAll = async () => {
    for (const stop of started.reverse()) await stop().catch(() => {});
    started.length = 0;
  };
  try {
    const applied = await migrate(store);
    if (applied.length > 0) log(`Database ${redact(config.databaseUrl)}: applied ${applied.join(', ')}`);
    const clock = systemClock;

    let demoUrl = `http://127.0.0.1:${config.demoUpstreamPort}`;
    if (config.demo) {
      const upstream = createDemoUpstream();
      const addr = await listenServer(upstream, config.demoUpstreamPort, '127.0.0.1').catch(
        (err: unknown) => {
          throw explainListenError(
            err,
            'demo upstream',
            config.demoUpstreamPort,
            'TRELLIS_DEMO_UPSTREAM_PORT',
          );
        },
      );
      demoUrl = `http://127.0.0.1:${addr.port}`;
      started.push(() => new Promise((r) => upstream.close(() => r())));
    }

    // After a change commits, tell every gateway at once (without Redis they notice on their next poll).
    const publisher = config.redisUrl
      ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true })
      : null;
    if (publisher) {
      publisher.on('error', () => {});
      started.push(async () => publisher.disconnect());
    }
    // The worker delivers webhooks from the outbox; a committed change wakes it at once, not on its next poll.
    const workerRole = await composeWorkerRole({ config, store, logger, clock });
    started.push(() => workerRole.close());
    const deps: ChangeDeps = {
      db: store.db,
      clock,
      onCommitted: () => {
        if (publisher) void publishChange(publisher).catch(() => {});
        workerRole.worker.nudge();
      },
    };

    const seeded = await bootstrap(deps, config, demoUrl);
    workerRole.start();

    let gatewayPort: number;
    if (config.gatewayWorkers > 1) {
      // each worker composes its gateway with composeGatewayRole, as below
      const workers = await startGatewayWorkers(config.gatewayWorkers, { config, logger, store });
      started.push(() => workers.close());
      gatewayPort = workers.port;
    } else {
      // the in-process worker's webhook metrics are served beside the gateway's
      const role = await composeGatewayRole({ config, store, logger, clock, metrics: workerRole.metrics });
      started.push(() => role.close());
      gatewayPort = (
        await role.gateway.listen(config.gatewayPort, config.host).catch((err: unknown) => {
          throw explainListenError(err, 'gateway', config.gatewayPort, 'TRELLIS_GATEWAY_PORT');
        })
      ).port;
    }

    const gatewayUrl = config.gatewayPort === 0 ? `http://localhost:${gatewayPort}` : config.gatewayPublicUrl;
    // With a port chosen by the system, the portal's try-it relay must learn the gateway's real address.
    const controlConfig = Object.freeze({ ...config, gatewayPublicUrl: gatewayUrl });

    const control = await composeControlRole({
      config: controlConfig,
      store,
      clock,
      ...(deps.onCommitted && { onCommitted: deps.onCommitted }),
    });
    started.push(() => control.close());
    await control.listen({ port: config.controlPort, host: config.host }).catch((err: unknown) => {
      throw explainListenError(err, 'control server', config.controlPort, 'TRELLIS_CONTROL_PORT');
    });
    const controlAddr = control.server.address() as AddressInfo;

    const controlUrl = config.controlPort === 0 ? `http://localhost:${controlAddr.port}` : config.publicUrl;
    return { controlUrl, gatewayUrl, bootstrap: seeded, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
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
