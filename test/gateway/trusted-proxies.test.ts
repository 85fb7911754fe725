/**
 * Behind a load balancer (issue 8, item 18): the client address is the socket's unless the socket's peer is a
 * trusted proxy (`TRELLIS_TRUSTED_PROXIES`); then `X-Forwarded-For` is walked from the right. One function decides,
 * for the gateway's allowlists and usage as for the portal and the console.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { clientAddress, compileTrustedProxies } from '../../src/kernel/client-address.js';
import type { Store } from '../../src/store/index.js';
import type { UsageRecord } from '../../src/usage/index.js';
import {
  Fixtures,
  call,
  openTestStore,
  startGateway,
  startUpstream,
  testConfig,
  type Upstream,
} from './fixtures.js';

describe('the client address', () => {
  const trusted = compileTrustedProxies(['10.0.0.0/8', '127.0.0.1', '2001:db8::/32']);

  it('is the socket address when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(compileTrustedProxies([])).toBeNull();
    expect(clientAddress('127.0.0.1', '203.0.113.7', null)).toBe('127.0.0.1');
    expect(clientAddress('::ffff:127.0.0.1', undefined, null)).toBe('127.0.0.1');
    expect(clientAddress(undefined, '203.0.113.7', null)).toBe('');
  });

  it('is the socket address when the peer is not trusted', () => {
    expect(clientAddress('198.51.100.9', '203.0.113.7', trusted)).toBe('198.51.100.9');
  });

  it('walks X-Forwarded-For from the right, skipping trusted proxies', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7', trusted)).toBe('203.0.113.7');
    expect(clientAddress('::ffff:127.0.0.1', '1.1.1.1, 203.0.113.7, 10.1.2.3', trusted)).toBe('203.0.113.7');
    expect(clientAddress('10.0.0.1', ['1.1.1.1', '203.0.113.7 , 10.9.9.9'], trusted)).toBe('203.0.113.7');
    expect(clientAddress('2001:db8::1', '2001:db9::5', trusted)).toBe('2001:db9::5');
    expect(clientAddress('127.0.0.1', '[2001:db9::5]:4711, 203.0.113.8:443', trusted)).toBe('203.0.113.8');
    expect(clientAddress('127.0.0.1', '[2001:db9::5]:4711, 10.0.0.2', trusted)).toBe('2001:db9::5');
    // every hop trusted: the left-most is the client
    expect(clientAddress('127.0.0.1', '10.0.0.3, 10.0.0.2', trusted)).toBe('10.0.0.3');
    // a trusted peer that sent none
    expect(clientAddress('127.0.0.1', undefined, trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '', trusted)).toBe('127.0.0.1');
  });

  it('stops at a malformed entry and keeps the last good address, never throwing', () => {
    expect(clientAddress('127.0.0.1', 'nonsense', trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '203.0.113.7, unknown, 10.0.0.2', trusted)).toBe('10.0.0.2');
    expect(clientAddress('127.0.0.1', '203.0.113.7,,10.0.0.2', trusted)).toBe('10.0.0.2');
    expect(clientAddress('127.0.0.1', '203.0.113.7, 10.0.0.2/8', trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '1.2.3.4%eth0', trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', `${'9'.repeat(5000)}`, trusted)).toBe('127.0.0.1');
  });

  it('matches ranges with the high bit set and single addresses at the top of IPv4', () => {
    const high = compileTrustedProxies(['128.0.0.0/1', '255.255.255.255', '::ffff:0:0/96'])!;
    expect(high.trusts('200.1.1.1')).toBe(true);
    expect(high.trusts('127.255.255.255')).toBe(false);
    expect(high.trusts('255.255.255.255')).toBe(true);
    expect(high.trusts('::ffff:200.1.1.1')).toBe(true);
    expect(high.trusts('not an address')).toBe(false);
  });

  it('is a setting: comma-separated CIDRs, IPv4 and IPv6, every bad entry reported with the other problems', () => {
    expect(loadConfig({}).trustedProxies).toEqual([]);
    const config = loadConfig({ TRELLIS_TRUSTED_PROXIES: ' 10.0.0.0/8, 2001:DB8::/32 ,127.0.0.1' });
    expect(config.trustedProxies).toEqual(['10.0.0.0/8', '2001:db8::/32', '127.0.0.1']);
    expect(Object.isFrozen(config.trustedProxies)).toBe(true);
    try {
      loadConfig({ TRELLIS_TRUSTED_PROXIES: '10.0.0.0/33, lb.internal, 10.0.0.1/', TRELLIS_DEMO: 'perhaps' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems).toHaveLength(2);
      const proxies = problems.find((p) => p.startsWith('TRELLIS_TRUSTED_PROXIES'));
      expect(proxies).toContain('"10.0.0.0/33"');
      expect(proxies).toContain('"lb.internal"');
      expect(proxies).toContain('"10.0.0.1/"');
    }
  });
});

describe('the gateway behind a load balancer', () => {
  let store: Store;
  let f: Fixtures;
  let upstream: Upstream;

  beforeAll(async () => {
    store = await openTestStore();
    f = new Fixtures(store);
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream.close();
    await store.destroy();
  });

  async function allowlisted(prefix: string) {
    const service = await f.service({ upstream: upstream.url, prefix });
    const planId = await f.plan(service.id);
    const app = await f.application(service.id, planId, { allowedIps: ['203.0.113.0/24'] });
    return (await f.key(app.id)).secret;
  }

  it('applies an application allowlist to the forwarded client when the peer is a trusted proxy', async () => {
    const key = await allowlisted('/lb');
    const records: UsageRecord[] = [];
    const gw = await startGateway({
      store,
      config: testConfig({ trustedProxies: ['127.0.0.1/32', '10.0.0.0/8'] }),
      usage: { record: (r) => records.push(r) },
    });
    try {
      const inside = await call(`${gw.url}/lb/x`, {
        headers: { 'X-User-Key': key, 'X-Forwarded-For': '203.0.113.7' },
      });
      expect(inside.status).toBe(200);
      // the upstream sees the chain with the gateway's peer appended, the client first
      expect(upstream.seen.at(-1)?.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
      const outside = await call(`${gw.url}/lb/x`, {
        headers: { 'X-User-Key': key, 'X-Forwarded-For': '198.51.100.1' },
      });
      expect([outside.status, outside.json.error?.code]).toEqual([403, 'ip_not_allowed']);
      // a forged entry left of an untrusted hop decides nothing
      const forged = await call(`${gw.url}/lb/x`, {
        headers: { 'X-User-Key': key, 'X-Forwarded-For': '203.0.113.9, 198.51.100.1, 10.0.0.2' },
      });
      expect([forged.status, forged.json.error?.code]).toEqual([403, 'ip_not_allowed']);
      // no header: the proxy itself is the client
      const direct = await call(`${gw.url}/lb/x`, { headers: { 'X-User-Key': key } });
      expect(direct.status).toBe(403);
      expect(records.map((r) => r.clientIp)).toEqual([
        '203.0.113.7',
        '198.51.100.1',
        '198.51.100.1',
        '127.0.0.1',
      ]);
    } finally {
      await gw.close();
    }
  });

  it('ignores X-Forwarded-For from a peer that is not trusted', async () => {
    const key = await allowlisted('/spoof');
    for (const trustedProxies of [[], ['10.0.0.0/8']]) {
      const records: UsageRecord[] = [];
      const gw = await startGateway({
        store,
        config: testConfig({ trustedProxies }),
        usage: { record: (r) => records.push(r) },
      });
      try {
        const spoofed = await call(`${gw.url}/spoof/x`, {
          headers: { 'X-User-Key': key, 'X-Forwarded-For': '203.0.113.7' },
        });
        expect([spoofed.status, spoofed.json.error?.code]).toEqual([403, 'ip_not_allowed']);
        expect(records.map((r) => r.clientIp)).toEqual(['127.0.0.1']);
      } finally {
        await gw.close();
      }
    }
  });

  it('appends its peer to X-Forwarded-For upstream, as without trusted proxies', async () => {
    const { key } = await f.keyed({ upstream: upstream.url, prefix: '/append' });
    const gw = await startGateway({ store, config: testConfig({ trustedProxies: ['127.0.0.1'] }) });
    try {
      await call(`${gw.url}/append/x`, {
        headers: { 'X-User-Key': key, 'X-Forwarded-For': '198.51.100.4, 10.0.0.2' },
      });
      expect(upstream.seen.at(-1)?.headers['x-forwarded-for']).toBe('198.51.100.4, 10.0.0.2, 127.0.0.1');
    } finally {
      await gw.close();
    }
  });
});
