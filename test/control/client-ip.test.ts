/**
 * The control server's client address (issue 8, item 18): `request.clientIp` follows the one trusted-proxy rule of
 * `kernel/client-address.ts`, and fastify's own `request.ip` / `request.protocol` believe the same proxies only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { type TestStore, freshStore } from '../support/stores.js';

describe('the client address on the control server', () => {
  let store: TestStore;
  const apps: ControlApp[] = [];

  async function appTrusting(trustedProxies: string[]): Promise<ControlApp> {
    const config = loadConfig({}, { databaseUrl: store.url, logLevel: 'silent', trustedProxies });
    const app = await buildControlApp(
      { config, store, clock: new ManualClock() },
      {
        modules: [
          (a) => {
            a.get('/whoami', async (req) => ({ clientIp: req.clientIp, ip: req.ip, protocol: req.protocol }));
          },
        ],
      },
    );
    await app.ready();
    apps.push(app);
    return app;
  }

  const ask = async (app: ControlApp, remoteAddress: string, headers: Record<string, string> = {}) =>
    (await app.inject({ method: 'GET', url: '/whoami', remoteAddress, headers })).json();

  beforeAll(async () => {
    store = await freshStore('sqlite');
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await store.cleanup();
  });

  it('is the socket address, and X-Forwarded-* are ignored, when no proxy is trusted', async () => {
    const app = await appTrusting([]);
    expect(
      await ask(app, '198.51.100.1', { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' }),
    ).toEqual({ clientIp: '198.51.100.1', ip: '198.51.100.1', protocol: 'http' });
  });

  it('walks X-Forwarded-For behind a trusted proxy, and believes its X-Forwarded-Proto', async () => {
    const app = await appTrusting(['10.0.0.0/8']);
    expect(
      await ask(app, '10.0.0.1', {
        'x-forwarded-for': '1.1.1.1, 203.0.113.7, 10.0.0.2',
        'x-forwarded-proto': 'https',
      }),
    ).toEqual({ clientIp: '203.0.113.7', ip: '203.0.113.7', protocol: 'https' });
    // from a peer that is not trusted, nothing of it
    expect(
      await ask(app, '198.51.100.1', { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' }),
    ).toEqual({ clientIp: '198.51.100.1', ip: '198.51.100.1', protocol: 'http' });
    // a malformed entry: the last good address, where fastify's proxy-addr would take the garbage itself
    const odd = await ask(app, '10.0.0.1', { 'x-forwarded-for': 'unknown, 10.0.0.2' });
    expect(odd.clientIp).toBe('10.0.0.2');
  });
});
