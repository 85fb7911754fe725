/**
 * Unknown addresses: a browser asking for a page gets the HTML "not found" page of the portal or the console
 * (with its layout and security headers); API clients, the management API and OAuth keep the JSON error body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PortalHarness, signUp, startPortal } from './portal-harness.js';

const browserAccept = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('not found', () => {
  let h: PortalHarness;

  beforeAll(async () => {
    h = await startPortal();
  });
  afterAll(() => h.close());

  it('shows the portal 404 page to a browser, with the signed-in layout', async () => {
    const anon = await h.agent().get('/no/such/page', { accept: browserAccept });
    expect(anon.statusCode).toBe(404);
    expect(anon.headers['content-type']).toMatch(/^text\/html/);
    expect(anon.headers['content-security-policy']).toContain("script-src 'self'");
    expect(anon.body).toContain('Page not found');
    expect(anon.body).toContain('<a href="/">Back to the APIs</a>');
    const dev = await signUp(h, 'lost@notfound.test');
    const signedIn = await dev.get('/apps/x/y/z', { accept: browserAccept });
    expect(signedIn.statusCode).toBe(404);
    expect(signedIn.body).toContain('lost@notfound.test');
    // escaping: the address is never echoed into the page
    const probe = await h.agent().get('/%3Cscript%3Ealert(1)%3C/script%3E', { accept: browserAccept });
    expect(probe.statusCode).toBe(404);
    expect(probe.body).not.toContain('<script>alert');
  });

  it('shows the console 404 page to a browser', async () => {
    const res = await h.agent().get('/admin/nowhere', { accept: browserAccept });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('Trellis console');
    expect(res.body).toContain('Page not found');
  });

  it('keeps JSON for API clients, the management API and OAuth', async () => {
    const cases: [string, Record<string, string>][] = [
      ['/no/such/page', {}],
      ['/no/such/page', { accept: 'application/json' }],
      ['/no/such/page', { accept: '*/*' }],
      ['/no/such/page', { accept: 'application/json, text/html;q=0.5' }],
      ['/admin/nowhere', { accept: 'application/json' }],
      ['/admin/api/nowhere', { accept: browserAccept }],
      ['/admin/api/nowhere', {}],
      ['/.well-known/nowhere', { accept: browserAccept }],
    ];
    for (const [url, headers] of cases) {
      const res = await h.app.inject({ method: 'GET', url, headers });
      expect(res.statusCode, `${url} ${JSON.stringify(headers)}`).toBe(404);
      expect(res.headers['content-type'], url).toMatch(/^application\/json/);
      expect(res.json().error.code, url).toBe('route_not_found');
    }
    const post = await h.app.inject({
      method: 'POST',
      url: '/no/such/page',
      headers: { accept: browserAccept },
    });
    expect(post.statusCode).toBe(404);
    expect(post.json().error.code).toBe('route_not_found');
  });

  it('leaves the real pages and assets alone', async () => {
    expect((await h.agent().get('/', { accept: browserAccept })).statusCode).toBe(200);
    expect((await h.agent().get('/assets/portal.css')).statusCode).toBe(200);
    expect((await h.agent().get('/admin/login', { accept: browserAccept })).statusCode).toBe(200);
    expect((await h.agent().get(`/apis/${h.serviceId}`, { accept: browserAccept })).statusCode).toBe(200);
  });
});
