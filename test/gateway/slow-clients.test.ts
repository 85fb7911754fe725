/**
 * Issue 8, item 13: a client's slowness must not hold upstream connections. Slow uploads of one application
 * must not make another application's call hang: small bodies are read whole before an upstream connection is
 * taken, idle bodies are cut off (408), streamed uploads are bounded per application (429), and a full pool
 * answers 503 `upstream_busy` within its queue deadline. Real sockets, short timeouts, bounded waits.
 */
import { type Socket, connect } from 'node:net';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayOptions } from '../../src/gateway/index.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import {
  Fixtures,
  startGateway,
  startUpstream,
  until,
  type RunningGateway,
  type Upstream,
} from './fixtures.js';

/** A call that must be answered within `ms`: a hang fails the test instead of timing it out. */
async function answeredWithin(url: string, key: string, ms: number) {
  const started = Date.now();
  const res = await request(url, { headers: { 'X-User-Key': key }, signal: AbortSignal.timeout(ms) });
  const text = await res.body.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.statusCode, code, ms: Date.now() - started };
}

interface SlowUpload {
  socket: Socket;
  /** The status line's code once the gateway answers (0 until then). */
  status(): number;
  code(): string | undefined;
  closed: Promise<void>;
}

/** Starts an upload that declares `length` bytes, sends `sent` of them, then stalls. */
function slowUpload(
  port: number,
  path: string,
  key: string,
  length: number,
  sent: number,
): Promise<SlowUpload> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (c: Buffer) => {
      answer += c.toString('latin1');
    });
    socket.on('error', () => {});
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('connect', () => {
      const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User-Key: ${key}\r\nContent-Length: ${length}\r\n\r\n`;
      socket.write(Buffer.concat([Buffer.from(head), Buffer.alloc(sent, 97)]), (err) => {
        if (err) reject(err);
        else
          resolve({
            socket,
            closed,
            status: () => (answer.startsWith('HTTP/1.1 ') ? Number(answer.slice(9, 12)) : 0),
            code: () => /"code":"([a-z_]+)"/.exec(answer)?.[1],
          });
      });
    });
  });
}

describe.each(dialects)('slow clients (%s)', (dialect) => {
  let store: TestStore;
  let f: Fixtures;
  let upstream: Upstream;
  let gw: RunningGateway | null = null;
  const uploads: SlowUpload[] = [];
  let upstreamUploads = 0;

  beforeAll(async () => {
    store = await freshStore(dialect);
    f = new Fixtures(store);
    upstream = await startUpstream();
    // an upstream that reads the whole body before answering, as most do
    upstream.routes.set('/upload', (req, res) => {
      upstreamUploads++;
      req.resume();
      req.on('end', () => res.end('stored'));
    });
  });
  afterEach(async () => {
    for (const u of uploads.splice(0)) u.socket.destroy();
    await gw?.close();
    gw = null;
  });
  afterAll(async () => {
    await upstream.close();
    await store.cleanup();
  });

  /** One service on one upstream; application A uploads, application B only reads. */
  async function world(prefix: string, options: GatewayOptions) {
    const service = await f.service({ upstream: upstream.url, prefix });
    const planId = await f.plan(service.id);
    const a = await f.application(service.id, planId);
    const b = await f.application(service.id, planId);
    const keyA = (await f.key(a.id)).secret;
    const keyB = (await f.key(b.id)).secret;
    gw = await startGateway({ store, options: { upstreamConnections: 4, ...options } });
    // warm the credential cache, so every later request is decided as soon as it arrives
    expect((await answeredWithin(`${gw.url}${prefix}/x`, keyA, 5000)).status).toBe(200);
    expect((await answeredWithin(`${gw.url}${prefix}/x`, keyB, 5000)).status).toBe(200);
    return { keyA, keyB, gateway: gw };
  }

  /** Lets the gateway take in every upload's head: one round trip on another connection. */
  async function settle(url: string) {
    await request(`${url}/__trellis/health`).then((r) => r.body.text());
  }

  it('small slow uploads take no upstream connection: another application is answered at once', async () => {
    const { keyA, keyB, gateway } = await world('/sc1', { bodyIdleTimeoutMs: 20_000 });
    upstreamUploads = 0;
    for (let i = 0; i < 12; i++) uploads.push(await slowUpload(gateway.port, '/sc1/upload', keyA, 1000, 10));
    await settle(gateway.url);
    const b = await answeredWithin(`${gateway.url}/sc1/x`, keyB, 4000);
    expect(b.status).toBe(200);
    expect(upstreamUploads).toBe(0);
    // the uploads finish normally once their bodies are in
    const first = uploads[0]!;
    first.socket.write(Buffer.alloc(990, 97));
    await until(() => first.status() !== 0, 5000);
    expect(first.status()).toBe(200);
  });

  it('an idle request body is cut off with 408 request_timeout, buffered or streamed', async () => {
    const { keyA, gateway } = await world('/sc2', { bodyIdleTimeoutMs: 300, bufferedBodyBytes: 1000 });
    const small = await slowUpload(gateway.port, '/sc2/upload', keyA, 500, 10);
    const large = await slowUpload(gateway.port, '/sc2/upload', keyA, 100_000, 10);
    uploads.push(small, large);
    const started = Date.now();
    await Promise.all([small.closed, large.closed]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect([small.status(), small.code()]).toEqual([408, 'request_timeout']);
    expect([large.status(), large.code()]).toEqual([408, 'request_timeout']);
  });

  it('bounds the streamed uploads of one application, so the others keep their connections', async () => {
    const { keyA, keyB, gateway } = await world('/sc3', {
      bodyIdleTimeoutMs: 20_000,
      bufferedBodyBytes: 1000,
      uploadsPerApplication: 2,
    });
    for (let i = 0; i < 6; i++)
      uploads.push(await slowUpload(gateway.port, '/sc3/upload', keyA, 100_000, 10));
    await settle(gateway.url);
    const b = await answeredWithin(`${gateway.url}/sc3/x`, keyB, 4000);
    expect(b.status).toBe(200);
    await Promise.all(uploads.slice(2).map((u) => u.closed));
    expect(uploads.slice(2).map((u) => [u.status(), u.code()])).toEqual(
      Array(4).fill([429, 'too_many_uploads']),
    );
    expect(uploads.slice(0, 2).map((u) => u.status())).toEqual([0, 0]);
  });

  it('calls waiting for a connection go in arrival order as connections come free', async () => {
    const { keyB, gateway } = await world('/sc5', { upstreamConnections: 1, upstreamQueueTimeoutMs: 5000 });
    const order: string[] = [];
    const held: (() => void)[] = [];
    upstream.routes.set('/held', (req, res) => {
      order.push(new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? '');
      held.push(() => res.end('done'));
    });
    const calls = [1, 2, 3].map((n) => answeredWithin(`${gateway.url}/sc5/held?n=${n}`, keyB, 8000));
    await until(() => held.length === 1, 4000);
    // one connection: the other two wait in the lane, not on the upstream
    expect(order).toEqual(['1']);
    for (let i = 0; i < 3; i++) {
      await until(() => held.length > i, 4000);
      held[i]!();
    }
    expect((await Promise.all(calls)).map((c) => c.status)).toEqual([200, 200, 200]);
    expect(order).toEqual(['1', '2', '3']);
  });

  it('a full pool answers 503 upstream_busy within its queue deadline, never hangs', async () => {
    const { keyA, keyB, gateway } = await world('/sc4', {
      bodyIdleTimeoutMs: 20_000,
      bufferedBodyBytes: 1000,
      uploadsPerApplication: 8,
      upstreamQueueTimeoutMs: 300,
    });
    for (let i = 0; i < 6; i++)
      uploads.push(await slowUpload(gateway.port, '/sc4/upload', keyA, 100_000, 10));
    await settle(gateway.url);
    const b = await answeredWithin(`${gateway.url}/sc4/x`, keyB, 4000);
    expect([b.status, b.code]).toEqual([503, 'upstream_busy']);
    expect(b.ms).toBeLessThan(3000);
    // the two uploads beyond the pool waited in the queue, and were answered the same way
    await Promise.all(uploads.slice(4).map((u) => u.closed));
    expect(uploads.slice(4).map((u) => u.status())).toEqual([503, 503]);
    // once an upload finishes, its connection serves the next call
    const first = uploads[0]!;
    first.socket.write(Buffer.alloc(100_000 - 10, 97));
    await until(() => first.status() !== 0, 5000);
    expect(first.status()).toBe(200);
    expect((await answeredWithin(`${gateway.url}/sc4/x`, keyB, 4000)).status).toBe(200);
  });
});
