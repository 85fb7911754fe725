/**
 * Every answer of the control server that refuses a request has the one error shape
 * `{"error": {"code", "message", "requestId"}}`, whatever refused it: a route, fastify's router (a broken
 * percent-encoding, a path parameter too long) or node's HTTP parser (headers too large, a broken request line),
 * which only a real socket reaches.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlHarness, startControl } from '../support/control.js';

let h: ControlHarness;
let port = 0;
beforeAll(async () => {
  h = await startControl('sqlite');
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  port = (h.app.server.address() as { port: number }).port;
});
afterAll(() => h.close());

function expectShape(status: number, actual: number, body: string, code: string): void {
  expect(actual, body).toBe(status);
  const parsed = JSON.parse(body) as { error: Record<string, unknown> };
  expect(parsed.error).toMatchObject({ code, message: expect.any(String), requestId: expect.any(String) });
}

/** Sends raw bytes on a fresh connection; resolves with the status and body of what comes back. */
function rawRequest(bytes: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      data += chunk;
    });
    socket.on('error', () => {
      // the server closes after answering; what it wrote is what counts
    });
    socket.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (!status) reject(new Error(`no HTTP answer: ${JSON.stringify(data.slice(0, 200))}`));
      else resolve({ status, headers: head, body });
    });
    socket.setTimeout(5000, () => socket.destroy());
    socket.write(bytes);
  });
}

const auth = () => `Authorization: Bearer ${h.writeToken}\r\n`;

describe('one error shape for every refusal', () => {
  it('a broken percent-encoding in a path parameter → 400 validation_failed', async () => {
    const res = await h.call('GET', '/admin/api/services/%ff');
    expectShape(400, res.statusCode, res.body, 'validation_failed');
    expect(res.headers['x-request-id']).toBe(res.json().error.requestId);
  });

  it('a path parameter longer than the router takes → 414 uri_too_long', async () => {
    const res = await h.call('GET', `/admin/api/services/${'x'.repeat(500)}`);
    expectShape(414, res.statusCode, res.body, 'uri_too_long');
  });

  it('an unknown route → 404 route_not_found', async () => {
    const res = await h.call('POST', '/admin/api/services/x/nothing-here', {});
    expectShape(404, res.statusCode, res.body, 'route_not_found');
  });

  it('headers too large (on a real socket) → 431 headers_too_large', async () => {
    const res = await rawRequest(
      `GET /admin/api/services HTTP/1.1\r\nHost: x\r\n${auth()}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expectShape(431, res.status, res.body, 'headers_too_large');
    expect(res.headers).toMatch(/content-type: application\/json/i);
  });

  it('a URL too long for the parser (on a real socket) → 431 headers_too_large', async () => {
    const res = await rawRequest(
      `GET /admin/api/services?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expectShape(431, res.status, res.body, 'headers_too_large');
  });

  it('a request that is not HTTP (on a real socket) → 400 malformed_request', async () => {
    const res = await rawRequest('GET /admin/api/services HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n');
    expectShape(400, res.status, res.body, 'malformed_request');
    const garbage = await rawRequest('\u0001\u0002\u0003 nonsense\r\n\r\n');
    expectShape(400, garbage.status, garbage.body, 'malformed_request');
  });

  it('a broken percent-encoding and a NUL (on a real socket) → 400 validation_failed', async () => {
    const bad = await rawRequest(
      `GET /admin/api/services/%ff HTTP/1.1\r\nHost: x\r\n${auth()}Connection: close\r\n\r\n`,
    );
    expectShape(400, bad.status, bad.body, 'validation_failed');
    const nul = await rawRequest(
      `GET /admin/api/services/%00 HTTP/1.1\r\nHost: x\r\n${auth()}Connection: close\r\n\r\n`,
    );
    expectShape(400, nul.status, nul.body, 'validation_failed');
  });
});
