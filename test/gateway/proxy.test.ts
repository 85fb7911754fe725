import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import {
  call,
  Fixtures,
  startGateway,
  startUpstream,
  type RunningGateway,
  type Upstream,
} from './fixtures.js';

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe.each(dialects)('proxy (%s)', (dialect) => {
  let store: TestStore;
  let f: Fixtures;
  let upstream: Upstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    store = await freshStore(dialect);
    f = new Fixtures(store);
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream.close();
    await store.cleanup();
  });

  it('answers 502 upstream_unreachable when the upstream refuses connections', async () => {
    const { key } = await f.keyed({ upstream: `http://127.0.0.1:${await freePort()}`, prefix: '/down' });
    gw = await startGateway({ store });
    const res = await call(`${gw.url}/down/x`, { headers: { 'X-User-Key': key } });
    expect([res.status, res.json.error?.code]).toEqual([502, 'upstream_unreachable']);
    expect(res.json.error?.requestId).toBe(res.headers['x-request-id']);
    await gw.close();
  });

  it('answers 504 upstream_timeout when the upstream is slow to answer', async () => {
    const { key } = await f.keyed({ upstream: upstream.url, prefix: '/slow' });
    let release = () => {};
    upstream.routes.set('/hang', (_req, res) => {
      release = () => res.end('late');
    });
    gw = await startGateway({ store, options: { responseTimeoutMs: 150 } });
    const started = Date.now();
    const res = await call(`${gw.url}/slow/hang`, { headers: { 'X-User-Key': key } });
    expect([res.status, res.json.error?.code]).toEqual([504, 'upstream_timeout']);
    expect(Date.now() - started).toBeLessThan(2000);
    release();
    await gw.close();
  });

  it('drops hop-by-hop headers both ways, including those named in Connection', async () => {
    const { key } = await f.keyed({ upstream: upstream.url, prefix: '/hop' });
    upstream.routes.set('/hop-response', (req, res) => {
      res.writeHead(200, {
        connection: 'x-secret-hop',
        'x-secret-hop': '1',
        'keep-alive': 'timeout=5',
        'x-kept': 'yes',
        'x-seen': JSON.stringify(req.headers),
      });
      res.end('ok');
    });
    gw = await startGateway({ store });
    // node:http sends a Connection header as given (undici would drop it)
    const res = await new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>(
      (resolve, reject) => {
        httpRequest(
          `${gw.url}/hop/hop-response`,
          {
            headers: {
              'X-User-Key': key,
              connection: 'x-client-hop',
              'x-client-hop': '1',
              'x-client-kept': 'yes',
            },
          },
          (r) => {
            r.resume();
            r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers }));
          },
        )
          .on('error', reject)
          .end();
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers['x-secret-hop']).toBeUndefined();
    expect(res.headers['x-kept']).toBe('yes');
    const seen = JSON.parse(String(res.headers['x-seen'])) as Record<string, string>;
    expect(seen['x-client-hop']).toBeUndefined();
    expect(seen['x-client-kept']).toBe('yes');
    expect(seen['x-user-key']).toBeUndefined();
    await gw.close();
  });

  it('refuses bodies over the service limit with 413, declared or chunked', async () => {
    const { key } = await f.keyed({ upstream: upstream.url, prefix: '/small', maxBodyBytes: 1000 });
    gw = await startGateway({ store });
    const declared = await call(`${gw.url}/small/x`, {
      method: 'POST',
      headers: { 'X-User-Key': key },
      body: Buffer.alloc(1001),
    });
    expect([declared.status, declared.json.error?.code]).toEqual([413, 'body_too_large']);
    const fits = await call(`${gw.url}/small/x`, {
      method: 'POST',
      headers: { 'X-User-Key': key },
      body: Buffer.alloc(1000),
    });
    expect([fits.status, fits.json.bodyBytes]).toEqual([200, 1000]);
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        `${gw.url}/small/x`,
        { method: 'POST', headers: { 'X-User-Key': key, 'transfer-encoding': 'chunked' } },
        (res) => {
          let body = '';
          res.on('data', (c) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write(Buffer.alloc(300));
      req.end();
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body).error.code).toBe('body_too_large');
    await gw.close();
  });

  it('streams a 50 MB response without buffering it whole', { timeout: 30_000 }, async () => {
    const { key } = await f.keyed({ upstream: upstream.url, prefix: '/big' });
    const total = 50 * 1024 * 1024;
    const chunk = randomBytes(1024 * 1024);
    let clientSawFirstBytes: () => void = () => {};
    const firstBytesSeen = new Promise<void>((r) => {
      clientSawFirstBytes = r;
    });
    const expected = createHash('sha256');
    for (let i = 0; i < 50; i++) expected.update(chunk);
    upstream.routes.set('/download', async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      res.write(chunk);
      // the rest is sent only once the client has the first megabyte: a gateway that buffered the whole body
      // would never pass it on, and this test would time out
      await firstBytesSeen;
      for (let i = 1; i < 50; i++) if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      res.end();
    });
    gw = await startGateway({ store });
    const result = await new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
      httpRequest(`${gw.url}/big/download`, { headers: { 'X-User-Key': key } }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          if (bytes === 0) clientSawFirstBytes();
          bytes += c.length;
          hash.update(c);
        });
        res.on('end', () => resolve({ bytes, sha: hash.digest('hex') }));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    expect(result.bytes).toBe(total);
    expect(result.sha).toBe(expected.digest('hex'));
    await gw.close();
  });

  it('streams a 50 MB upload without buffering it whole', { timeout: 30_000 }, async () => {
    const { key } = await f.keyed({ upstream: upstream.url, prefix: '/up' });
    const chunk = randomBytes(1024 * 1024);
    let upstreamSawFirstBytes: () => void = () => {};
    const firstBytesSeen = new Promise<void>((r) => {
      upstreamSawFirstBytes = r;
    });
    upstream.routes.set('/upload', (req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        if (bytes === 0) upstreamSawFirstBytes();
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes, sha: hash.digest('hex') })));
    });
    gw = await startGateway({ store });
    const expected = createHash('sha256');
    for (let i = 0; i < 50; i++) expected.update(chunk);
    const reply = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        `${gw.url}/up/upload`,
        { method: 'PUT', headers: { 'X-User-Key': key, 'content-length': 50 * chunk.length } },
        (res) => {
          let body = '';
          res.on('data', (c) => {
            body += c;
          });
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
      void (async () => {
        req.write(chunk);
        // the rest only after the upstream has the first megabyte
        await firstBytesSeen;
        for (let i = 1; i < 50; i++) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        req.end();
      })();
    });
    expect(JSON.parse(reply)).toEqual({ bytes: 50 * chunk.length, sha: expected.digest('hex') });
    await gw.close();
  });
});
