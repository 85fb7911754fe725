/** A start that fails halfway stops what it had started, and says why in one line. */
import { type Server, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/cli-error.js';
import { startTrellis } from '../../src/cli/start.js';
import { loadConfig } from '../../src/config/index.js';

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

describe('trellis start failures', () => {
  it('names the busy port and leaves nothing running', async () => {
    const squatter = createServer();
    const busy = await listen(squatter);
    // a free port for the demo upstream, so we can check it is released again
    const probe = createServer();
    const demoPort = await listen(probe);
    await new Promise<void>((r) => probe.close(() => r()));
    const config = loadConfig(
      {},
      {
        databaseUrl: 'sqlite::memory:',
        gatewayPort: 0,
        controlPort: busy,
        host: '127.0.0.1',
        demoUpstreamPort: demoPort,
        logLevel: 'silent',
      },
    );
    const failure = await startTrellis(config, () => {}).then(
      () => null,
      (err: unknown) => err,
    );
    await new Promise<void>((r) => squatter.close(() => r()));
    expect(failure).toBeInstanceOf(CliError);
    expect((failure as Error).message).toBe(
      `Cannot listen for the control server on port ${busy}: another program uses it. Set TRELLIS_CONTROL_PORT to another port.`,
    );
    // the demo upstream started before the failure and was stopped again
    const again = createServer();
    expect(await listen(again, demoPort)).toBe(demoPort);
    await new Promise<void>((r) => again.close(() => r()));
  });
});
