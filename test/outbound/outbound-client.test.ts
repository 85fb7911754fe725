/**
 * The guarded outbound client (SSRF, issue 8 item 15): refused address ranges, names resolving into them,
 * the allow-list, no redirects, a size bound and a time bound, against real local servers.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, type Socket, createServer as createNetServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type HostResolver,
  type OutboundClient,
  OutboundError,
  createOutboundClient,
  refusedRangeOf,
} from '../../src/outbound/index.js';

/** What a promise rejected with, as an OutboundError code. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof OutboundError ? err.code : `not an OutboundError: ${String(err)}`;
  }
}

/** A resolver that knows a few test names, so no test depends on the real DNS. */
const testResolver: HostResolver = async (hostname) => {
  const names: Record<string, string> = {
    'loopback.example.test': '127.0.0.1',
    'private.example.test': '10.0.0.1',
    'metadata.example.test': '169.254.169.254',
    'mapped.example.test': '::ffff:127.0.0.1',
  };
  const address = names[hostname];
  if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return [{ address, family: address.includes(':') ? 6 : 4 }];
};

describe('address policy', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['169.254.10.10', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['0.0.0.0', 'this network'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'unspecified'],
    ['fd00:ec2::254', 'metadata'],
    ['fc00::1', 'unique local'],
    ['fe80::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback (127.0.0.0/8) inside IPv6'],
    ['::ffff:7f00:1', 'loopback (127.0.0.0/8) inside IPv6'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['64:ff9b::a00:1', 'private'],
    ['not-an-ip', 'not an IP address'],
  ])('refuses %s (%s)', (address, label) => {
    expect(refusedRangeOf(address)).toContain(label);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    'allows the public address %s',
    (address) => {
      expect(refusedRangeOf(address)).toBeNull();
    },
  );
});

describe('outbound client', () => {
  let server: Server;
  let port: number;
  const hits: string[] = [];
  const clients: OutboundClient[] = [];
  const client = (options: Parameters<typeof createOutboundClient>[0] = {}) => {
    const c = createOutboundClient({ resolve: testResolver, ...options });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      hits.push(req.url ?? '');
      if (req.url === '/jwks') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
      } else if (req.url === '/redirect') {
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      } else if (req.url === '/big') {
        // chunked: no content-length announces the size, the client must count
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        for (let i = 0; i < 32; i++) res.write(chunk);
        res.end();
      } else if (req.url === '/big-declared') {
        res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
        res.write(Buffer.alloc(1024));
      } else if (req.url === '/hang') {
        // never answers; the client's total timeout ends it
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('refuses loopback, private, metadata and IPv6 loopback literals without connecting', async () => {
    const outbound = client();
    const before = hits.length;
    for (const url of [
      `http://127.0.0.1:${port}/jwks`,
      'http://10.0.0.1/jwks',
      'http://169.254.169.254/latest/meta-data/',
      `http://[::1]:${port}/jwks`,
      `http://[::ffff:127.0.0.1]:${port}/jwks`,
      'http://2130706433/',
    ]) {
      expect(await codeOf(outbound.fetchJson(url)), url).toBe('outbound_address_refused');
      expect(outbound.checkUrl(url)?.code, url).toBe('outbound_address_refused');
    }
    expect(hits.length).toBe(before);
  });

  it('refuses names that resolve to refused addresses, checked when connecting', async () => {
    const outbound = client();
    const before = hits.length;
    for (const host of [
      `loopback.example.test:${port}`,
      'private.example.test',
      'metadata.example.test',
      `mapped.example.test:${port}`,
    ]) {
      // a name passes the registration check (its address is known only when connecting) …
      expect(outbound.checkUrl(`http://${host}/jwks`)).toBeNull();
      // … and is refused when it resolves
      expect(await codeOf(outbound.fetchJson(`http://${host}/jwks`)), host).toBe('outbound_address_refused');
    }
    expect(hits.length).toBe(before);
  });

  it('refuses localhost through the system resolver', async () => {
    const outbound = createOutboundClient();
    clients.push(outbound);
    expect(await codeOf(outbound.fetchJson(`http://localhost:${port}/jwks`))).toBe(
      'outbound_address_refused',
    );
  });

  it('fetches from hosts the allow-list names, by name, by name and port, or by address', async () => {
    expect(await client({ allowHosts: ['127.0.0.1'] }).fetchJson(`http://127.0.0.1:${port}/jwks`)).toEqual({
      keys: [],
    });
    expect(
      await client({ allowHosts: [`loopback.example.test:${port}`] }).fetchJson(
        `http://loopback.example.test:${port}/jwks`,
      ),
    ).toEqual({ keys: [] });
    const system = createOutboundClient({ allowHosts: ['localhost'] });
    clients.push(system);
    expect(await system.fetchJson(`http://localhost:${port}/jwks`)).toEqual({ keys: [] });
    // another port of an allowed host:port is not allowed
    expect(
      await codeOf(
        client({ allowHosts: ['loopback.example.test:1'] }).fetchJson(
          `http://loopback.example.test:${port}/jwks`,
        ),
      ),
    ).toBe('outbound_address_refused');
  });

  it('does not follow a redirect', async () => {
    const outbound = client({ allowHosts: ['127.0.0.1'] });
    expect(await codeOf(outbound.fetchJson(`http://127.0.0.1:${port}/redirect`))).toBe(
      'outbound_redirect_refused',
    );
    const res = outbound.request(`http://127.0.0.1:${port}/redirect`);
    expect(await codeOf(res)).toBe('outbound_redirect_refused');
  });

  it('aborts a body larger than maxBytes, announced or not', async () => {
    const outbound = client({ allowHosts: ['127.0.0.1'], maxBytes: 256 * 1024 });
    expect(await codeOf(outbound.fetchJson(`http://127.0.0.1:${port}/big`))).toBe('outbound_too_large');
    expect(await codeOf(outbound.fetchJson(`http://127.0.0.1:${port}/big-declared`))).toBe(
      'outbound_too_large',
    );
    // a small body is fine with the same client
    expect(await outbound.fetchJson(`http://127.0.0.1:${port}/jwks`)).toEqual({ keys: [] });
  });

  it('times out a server that does not answer', async () => {
    const outbound = client({ allowHosts: ['127.0.0.1'], timeoutMs: 150 });
    const started = performance.now();
    expect(await codeOf(outbound.fetchJson(`http://127.0.0.1:${port}/hang`))).toBe('outbound_timeout');
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('bounds the connection: a TLS handshake that never completes times out on connectTimeoutMs', async () => {
    // a TCP server that accepts and then says nothing: the TLS handshake never ends
    const sockets: Socket[] = [];
    const silent = createNetServer((socket) => void sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      const outbound = client({ allowHosts: ['127.0.0.1'], connectTimeoutMs: 150, timeoutMs: 10_000 });
      const started = performance.now();
      expect(await codeOf(outbound.fetchJson(`https://127.0.0.1:${silentPort}/jwks`))).toBe(
        'outbound_timeout',
      );
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('fetches http and https only', async () => {
    const outbound = client();
    for (const url of ['file:///etc/passwd', 'ftp://example.org/jwks', 'gopher://example.org/']) {
      expect(outbound.checkUrl(url)?.code, url).toBe('outbound_scheme_refused');
      expect(await codeOf(outbound.fetchJson(url)), url).toBe('outbound_scheme_refused');
    }
    expect(outbound.checkUrl('not a url')?.code).toBe('outbound_url_invalid');
    expect(outbound.checkUrl('https://idp.example.org/.well-known/jwks.json')).toBeNull();
  });

  it('says a non-2xx answer is not a document', async () => {
    const outbound = client({ allowHosts: ['127.0.0.1'] });
    expect(await codeOf(outbound.fetchJson(`http://127.0.0.1:${port}/missing`))).toBe('outbound_status');
    expect((await outbound.request(`http://127.0.0.1:${port}/missing`)).status).toBe(404);
  });
});
