/**
 * The favicon at /favicon.ico (issue 13): Trellis's own by default, a redirect to the settings' favicon URL, an
 * uploaded image (type told by its bytes; SVG and other files refused with 415, more than 64 KiB with 413) from
 * the management API and from the console's multipart form (with its CSRF token), on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updatePortalSettings } from '../../src/access/index.js';
import { systemActor } from '../../src/events/index.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';
import { type PortalHarness, startPortal } from './portal-harness.js';
import type { WebAgent } from './web-agent.js';

/** The smallest PNG: a 1×1 transparent pixel. */
const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

function multipart(fields: Record<string, string>, file: { name: string; bytes: Buffer; type: string }) {
  const boundary = '----trellis-test-boundary';
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${file.name}"; filename="icon"\r\nContent-Type: ${file.type}\r\n\r\n`,
    ),
    file.bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  );
  return { payload: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

describe.each(dialects)('the favicon (%s)', (dialect) => {
  let h: PortalHarness;
  let api: ControlHarness;
  beforeAll(async () => {
    [h, api] = await Promise.all([startPortal(dialect), startControl(dialect)]);
  }, 60_000);
  afterAll(async () => {
    await h.close();
    await api.close();
  });

  it('serves Trellis’s own, then redirects to the settings’ URL', async () => {
    const own = await h.app.inject({ method: 'GET', url: '/favicon.ico' });
    expect(own.statusCode).toBe(200);
    expect(own.headers['content-type']).toBe('image/svg+xml');
    expect(own.headers['x-content-type-options']).toBe('nosniff');
    expect(String(own.headers['content-security-policy'])).toContain('sandbox');
    await updatePortalSettings({ db: h.store.db, clock: h.clock }, systemActor, {
      faviconUrl: 'https://cdn.provider.example/icon.png',
    });
    const moved = await h.app.inject({ method: 'GET', url: '/favicon.ico' });
    expect(moved.statusCode).toBe(302);
    expect(moved.headers.location).toBe('https://cdn.provider.example/icon.png');
    // the layout of both faces names /favicon.ico
    expect((await h.agent().get('/')).body).toContain('<link rel="icon" href="/favicon.ico">');
    expect((await h.agent().get('/admin/login')).body).toContain('<link rel="icon" href="/favicon.ico">');
  });

  it('takes an uploaded image through the management API; refuses SVG, other files and large images', async () => {
    const svg = await api.call('PUT', '/admin/api/portal-settings/favicon', {
      image: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>').toString(
        'base64',
      ),
    });
    expect(svg.statusCode).toBe(415);
    expect(svg.json().error.code).toBe('unsupported_media_type');
    const large = await api.call('PUT', '/admin/api/portal-settings/favicon', {
      image: Buffer.concat([png, Buffer.alloc(70 * 1024)]).toString('base64'),
    });
    expect([400, 413]).toContain(large.statusCode);
    const saved = await api.call('PUT', '/admin/api/portal-settings/favicon', {
      image: png.toString('base64'),
    });
    expect(saved.statusCode).toBe(200);
    expect(saved.json()).toMatchObject({ contentType: 'image/png', size: png.length });
    const served = await api.app.inject({ method: 'GET', url: '/favicon.ico' });
    expect(served.statusCode).toBe(404); // the management API harness mounts no portal
    expect((await api.call('DELETE', '/admin/api/portal-settings/favicon')).statusCode).toBe(204);
    expect(
      (await api.call('PUT', '/admin/api/portal-settings/favicon', { image: 'x' }, api.readToken)).statusCode,
    ).toBe(403);
  });

  it('takes an upload from the console’s form (with its CSRF token) and serves it', async () => {
    const admin: WebAgent = h.agent();
    await admin.get('/admin/login');
    await admin.post('/admin/login', { email: h.adminEmail, password: h.adminPassword });
    const settings = await admin.get('/admin/portal-settings');
    expect(settings.body).toContain('enctype="multipart/form-data"');
    const cookie = [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const send = (fields: Record<string, string>, bytes: Buffer) => {
      const body = multipart(fields, { name: 'favicon', bytes, type: 'image/png' });
      return h.app.inject({
        method: 'POST',
        url: '/admin/portal-settings/favicon',
        headers: { cookie, 'content-type': body.contentType },
        payload: body.payload,
      });
    };
    expect((await send({}, png)).statusCode).toBe(403);
    const refused = await send({ _csrf: admin.csrf() }, Buffer.from('GIF? no, text'));
    expect(refused.statusCode).toBe(303);
    const uploaded = await send({ _csrf: admin.csrf() }, png);
    expect(uploaded.statusCode).toBe(303);
    expect(uploaded.headers.location).toBe('/admin/portal-settings#favicon');
    const icon = await h.app.inject({ method: 'GET', url: '/favicon.ico' });
    expect(icon.statusCode).toBe(200);
    expect(icon.headers['content-type']).toBe('image/png');
    expect(icon.rawPayload.equals(png)).toBe(true);
    // the page the form returns to says what happened
    for (const c of uploaded.cookies) admin.cookies.set(c.name, c.value);
    expect((await admin.get('/admin/portal-settings')).body).toContain('Favicon uploaded (image/png');
    await admin.get('/admin/portal-settings');
    expect((await admin.post('/admin/portal-settings/favicon/delete', {})).statusCode).toBe(303);
    // back to the settings' URL
    expect((await h.app.inject({ method: 'GET', url: '/favicon.ico' })).statusCode).toBe(302);
  });
});
