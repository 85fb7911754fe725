/**
 * Issue 8, item 12: `..`, encoded dots, doubled slashes and the like must not let a request be matched as one
 * path and served as another. Requests go through real sockets with the request target written byte for byte
 * (undici and fetch would normalise it on the client side, hiding the bug).
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileRules, matchRules } from '../../src/gateway/mapping-rules.js';
import { normalizePath } from '../../src/gateway/request-path.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';
import { Fixtures, startGateway, startUpstream, type RunningGateway, type Upstream } from './fixtures.js';

interface RawReply {
  status: number;
  code: string | undefined;
  body: string;
}

/** Sends one request with the request target exactly as given, and reads the answer until the server closes. */
function raw(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string>,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const head = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
    for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`);
    socket.on('connect', () => socket.write(`${head.join('\r\n')}\r\n\r\n`));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(text.slice(9, 12));
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      let code: string | undefined;
      try {
        code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
      } catch {
        code = undefined;
      }
      resolve({ status, code, body });
    });
  });
}

describe('path normalisation (unit)', () => {
  it('leaves normal paths as they are (the fast path)', () => {
    for (const p of ['/', '/a', '/a/b/', '/v1/users/12.json', '/a-b_c~d', '/a;b', '/a:b@c'])
      expect(normalizePath(p)).toBe(p);
  });

  it('removes dot segments (RFC 3986 §5.2.4), decoded ones too, and merges slashes', () => {
    expect(normalizePath('/a/./b')).toBe('/a/b');
    expect(normalizePath('/a/b/../c')).toBe('/a/c');
    expect(normalizePath('/a/b/..')).toBe('/a/');
    expect(normalizePath('/a/.')).toBe('/a/');
    expect(normalizePath('/a/%2e%2E/b')).toBe('/b');
    expect(normalizePath('/a/.%2e/b')).toBe('/b');
    expect(normalizePath('/a//b///c')).toBe('/a/b/c');
    expect(normalizePath('//a')).toBe('/a');
    expect(normalizePath('/a/..')).toBe('/');
    expect(normalizePath('/.well-known/x')).toBe('/.well-known/x');
    expect(normalizePath('/a/...')).toBe('/a/...');
  });

  it('decodes unreserved characters only and upper-cases the other escapes', () => {
    expect(normalizePath('/%41%7a%30%2D%5f%7E')).toBe('/Az0-_~');
    expect(normalizePath('/a%3fb%20c%25')).toBe('/a%3Fb%20c%25');
    expect(normalizePath('/%c3%a9')).toBe('/%C3%A9');
  });

  it('refuses what cannot be normalised safely', () => {
    for (const p of [
      '',
      '*',
      'a/b',
      '/..',
      '/a/../..',
      '/%2e%2e/x',
      '/a%2fb',
      '/a%2Fb',
      '/a%5cb',
      '/a\\b',
      '/a%00b',
      '/a%0d%0ab',
      '/a%7f',
      '/a\u0000b',
      '/a%zz',
      '/a%4',
      '/a/..;/b',
      '/a/.;/b',
      '/a/%2e%2e;x/b',
    ])
      expect([p, normalizePath(p)]).toEqual([p, null]);
  });
});

describe('{param} never matches a dot segment', () => {
  const rules = compileRules([
    { httpMethod: 'GET', pattern: '/files/{name}', metricId: 'file', delta: 1, position: 0, last: false },
    { httpMethod: 'GET', pattern: '/s/{id}.json$', metricId: 'json', delta: 1, position: 1, last: false },
  ]);
  it('refuses . and .. as a parameter value', () => {
    expect(matchRules(rules, 'GET', '/files/report', '')).toHaveLength(1);
    expect(matchRules(rules, 'GET', '/files/..', '')).toHaveLength(0);
    expect(matchRules(rules, 'GET', '/files/.', '')).toHaveLength(0);
    expect(matchRules(rules, 'GET', '/files/../x', '')).toHaveLength(0);
    expect(matchRules(rules, 'GET', '/files/.hidden', '')).toHaveLength(1);
    expect(matchRules(rules, 'GET', '/s/12.json', '')).toHaveLength(1);
    expect(matchRules(rules, 'GET', '/s/..json', '')).toHaveLength(0);
    expect(matchRules(rules, 'GET', '/s/...json', '')).toHaveLength(0);
    expect(matchRules(rules, 'GET', '/s/a..json', '')).toHaveLength(1);
  });
});

describe('patterns are put in the normal form of paths', () => {
  it('matches a pattern written with escapes or doubled slashes against the normal path', () => {
    const rules = compileRules([
      { httpMethod: 'GET', pattern: '/v1/%7euser$', metricId: 'u', delta: 1, position: 0, last: false },
      { httpMethod: 'GET', pattern: '/a//b/./c', metricId: 'abc', delta: 1, position: 1, last: false },
    ]);
    expect(matchRules(rules, 'GET', '/v1/~user', '')).toHaveLength(1);
    expect(matchRules(rules, 'GET', '/a/b/c', '')).toHaveLength(1);
  });
});

describe('HEAD stands for GET in mapping rules', () => {
  const rule = (httpMethod: string, pattern: string, metricId: string, position: number) => ({
    httpMethod,
    pattern,
    metricId,
    delta: 1,
    position,
    last: false,
  });
  it('matches GET rules unless the service has HEAD rules of its own; OPTIONS only its own', () => {
    const getOnly = compileRules([rule('GET', '/a', 'a', 0), rule('ANY', '/', 'hits', 1)]);
    expect(matchRules(getOnly, 'HEAD', '/a', '')).toEqual([
      { metricId: 'a', delta: 1 },
      { metricId: 'hits', delta: 1 },
    ]);
    expect(matchRules(getOnly, 'OPTIONS', '/a', '')).toEqual([{ metricId: 'hits', delta: 1 }]);
    const withHead = compileRules([rule('GET', '/a', 'a', 0), rule('HEAD', '/a', 'head', 1)]);
    expect(matchRules(withHead, 'HEAD', '/a', '')).toEqual([{ metricId: 'head', delta: 1 }]);
  });
});

describe.each(dialects)('path normalisation through the gateway (%s)', (dialect) => {
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

  /** A service with `/public` and `/private` methods, `/private` disabled, and `/limited` at 2 a minute. */
  async function plannedService(prefix: string, base = '') {
    const service = await f.service({ upstream: `${upstream.url}${base}`, prefix, defaultRule: false });
    const pub = await f.metric(service.id, 'public', service.hitsId);
    const priv = await f.metric(service.id, 'private', service.hitsId);
    const limited = await f.metric(service.id, 'limited', service.hitsId);
    await f.rule(service.id, { method: 'GET', pattern: '/public', metricId: pub });
    await f.rule(service.id, { method: 'GET', pattern: '/private', metricId: priv });
    await f.rule(service.id, { method: 'GET', pattern: '/limited', metricId: limited });
    await f.rule(service.id, { method: 'GET', pattern: '/files/{name}$', metricId: pub });
    const planId = await f.plan(service.id);
    await f.disable(planId, priv);
    await f.limit(planId, limited, 'minute', 2);
    const app = await f.application(service.id, planId);
    const { secret } = await f.key(app.id);
    return { key: secret };
  }

  it('keeps a disabled method disabled whatever the spelling of its path', async () => {
    const { key } = await plannedService('/p1');
    gw = await startGateway({ store });
    const h = { 'X-User-Key': key };
    for (const target of [
      '/p1/public/../private',
      '/p1/public/%2e%2e/private',
      '/p1/public/%2E./private',
      '/p1/./private',
      '/p1//private',
      '/p1/public/./../private',
      '/p1/%70rivate',
    ]) {
      const reply = await raw(gw.port, 'GET', target, h);
      expect([target, reply.status, reply.code]).toEqual([target, 403, 'method_disabled']);
    }
    // the same disabled method through HEAD
    const head = await raw(gw.port, 'HEAD', '/p1/private', h);
    expect(head.status).toBe(403);
    expect((await raw(gw.port, 'HEAD', '/p1/public', h)).status).toBe(200);
    // a {param} cannot be a dot segment, so this is not a file
    expect((await raw(gw.port, 'GET', '/p1/files/..', h)).status).toBe(404);
    // Tomcat-style `..;` is refused rather than guessed at
    const semicolon = await raw(gw.port, 'GET', '/p1/public/..;/private', h);
    expect([semicolon.status, semicolon.code]).toEqual([400, 'path_invalid']);
    await gw.close();
  });

  it('holds a limit whatever the spelling of the path, and forwards the normalised path', async () => {
    const { key } = await plannedService('/p2');
    gw = await startGateway({ store });
    const h = { 'X-User-Key': key };
    const before = upstream.seen.length;
    expect((await raw(gw.port, 'GET', '/p2/limited', h)).status).toBe(200);
    expect((await raw(gw.port, 'GET', '/p2/public/../limited?x=%2e%2e/a', h)).status).toBe(200);
    const third = await raw(gw.port, 'GET', '/p2/public/%2e%2e/limited', h);
    expect([third.status, third.code]).toEqual([429, 'limit_exceeded']);
    expect(upstream.seen.slice(before).map((s) => s.url)).toEqual(['/limited', '/limited?x=%2e%2e/a']);
    await gw.close();
  });

  it('cannot climb out of the service prefix or the upstream base path', async () => {
    const a = await plannedService('/sa', '/a-base');
    await plannedService('/sb', '/b-base');
    gw = await startGateway({ store });
    const h = { 'X-User-Key': a.key };
    const before = upstream.seen.length;
    // leaving /sa lands on /sb, where A's key is not valid
    const other = await raw(gw.port, 'GET', '/sa/%2e%2e/sb/public', h);
    expect([other.status, other.code]).toEqual([401, 'credentials_invalid']);
    for (const target of [
      '/sa/%2e%2e/%2e%2e/b-base/public',
      '/sa/../../b-base/public',
      '/sa/public%2f..%2f..%2fb-base',
    ]) {
      const reply = await raw(gw.port, 'GET', target, h);
      expect([target, reply.status, reply.code]).toEqual([target, 400, 'path_invalid']);
    }
    const inside = await raw(gw.port, 'GET', '/sa/x/%2e%2e/public/%7Ea%3f', h);
    expect(inside.status).toBe(200);
    expect(upstream.seen.slice(before).map((s) => s.url)).toEqual(['/a-base/public/~a%3F']);
    await gw.close();
  });

  it('answers 400 path_invalid in the one error shape for encoded slashes, backslashes and control characters', async () => {
    const { key } = await plannedService('/p3');
    gw = await startGateway({ store });
    for (const target of [
      '/p3/public%2Fx',
      '/p3/public%5cx',
      '/p3/public\\x',
      '/p3/public%00',
      '/p3/%0d%0aX:y',
      '*',
    ]) {
      const reply = await raw(gw.port, target === '*' ? 'OPTIONS' : 'GET', target, { 'X-User-Key': key });
      expect([target, reply.status, reply.code]).toEqual([target, 400, 'path_invalid']);
      expect(JSON.parse(reply.body).error.requestId).toEqual(expect.any(String));
    }
    // absolute-form targets are normalised the same way
    const absolute = await raw(gw.port, 'GET', `http://127.0.0.1:${gw.port}/p3/public/%2e%2e/x%2fy`, {
      'X-User-Key': key,
    });
    expect([absolute.status, absolute.code]).toEqual([400, 'path_invalid']);
    await gw.close();
  });
});
