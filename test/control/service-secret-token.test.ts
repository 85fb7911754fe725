/**
 * A service's secret token (sent upstream as X-Trellis-Secret): only visible ASCII is accepted, in the
 * management API, the domain and declarative files (a CR, LF or NUL made every call through the service fail
 * with 502); a token is generated when none is given; read-only admin tokens never see it (issue 8, items 16, 17).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as catalog from '../../src/catalog/index.js';
import { parseDeclarative } from '../../src/cli/config-file.js';
import { systemActor } from '../../src/events/index.js';
import { TrellisError } from '../../src/kernel/index.js';
import { type ControlHarness, startControl } from '../support/control.js';
import { dialects } from '../support/stores.js';

const bad = [
  'line\r\nX-Injected: 1',
  'new\nline-token',
  'nul\u0000-in-token',
  'has a space',
  'tab\tseparated',
  'délicieux-token',
  'x'.repeat(257),
  'short',
];

describe.each(dialects)('service secret token (%s)', (dialect) => {
  let h: ControlHarness;
  let n = 0;
  beforeAll(async () => {
    h = await startControl(dialect);
  });
  afterAll(() => h.close());

  const create = (extra: Record<string, unknown> = {}) =>
    h.call('POST', '/admin/api/services', {
      name: 'Secret',
      systemName: `secret${++n}`,
      upstreamProduction: 'https://api.example.com',
      ...extra,
    });

  it('refuses a token with control characters, spaces, non-ASCII, or of a bad length, on create and update', async () => {
    for (const secretToken of bad) {
      const res = await create({ secretToken });
      expect(res.statusCode, JSON.stringify(secretToken)).toBe(400);
      expect(res.json().error.code).toBe('validation_failed');
    }
    const svc = (await create()).json();
    for (const secretToken of bad) {
      const res = await h.call('PATCH', `/admin/api/services/${svc.id}`, { secretToken });
      expect(res.statusCode, JSON.stringify(secretToken)).toBe(400);
      expect(res.json().error.code).toBe('validation_failed');
    }
    const ok = await h.call('PATCH', `/admin/api/services/${svc.id}`, { secretToken: 'Visible!Token~42' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().secretToken).toBe('Visible!Token~42');
  });

  it('refuses it in the domain too (the console and apply go through it)', async () => {
    const deps = { db: h.store.db, clock: h.clock };
    await expect(
      catalog.createService(deps, systemActor, {
        name: 'Domain',
        systemName: `domain${++n}`,
        upstreamProduction: 'https://api.example.com',
        secretToken: 'crlf\r\ntoken',
      }),
    ).rejects.toThrow(TrellisError);
    const svc = (await create()).json();
    await expect(
      catalog.updateService(deps, systemActor, svc.id, { secretToken: 'nul\u0000token' }),
    ).rejects.toMatchObject({ code: 'validation_failed' });
  });

  it('refuses it in a declarative file', () => {
    const yaml = (token: string) =>
      `services:\n  - name: Decl\n    systemName: decl\n    upstreamProduction: https://api.example.com\n    secretToken: ${JSON.stringify(token)}\n`;
    expect(() => parseDeclarative(yaml('line\r\nbreak-token'), 'trellis.yaml')).toThrow(/secretToken/);
    expect(parseDeclarative(yaml('fine-token-123'), 'trellis.yaml').services[0]?.secretToken).toBe(
      'fine-token-123',
    );
  });

  it('generates a token when a service is created without one; null asks for none', async () => {
    const generated = (await create()).json();
    expect(generated.secretToken).toMatch(/^trst_[0-9A-Za-z]{32}$/);
    const other = (await create()).json();
    expect(other.secretToken).not.toBe(generated.secretToken);
    const none = await create({ secretToken: null });
    expect(none.statusCode).toBe(201);
    expect(none.json().secretToken).toBeNull();
  });

  it('shows the token to read-write admin tokens only', async () => {
    const svc = (await create({ secretToken: 'shown-to-writers-only' })).json();
    const asWriter = await h.call('GET', `/admin/api/services/${svc.id}`);
    expect(asWriter.json().secretToken).toBe('shown-to-writers-only');
    const asReader = await h.call('GET', `/admin/api/services/${svc.id}`, undefined, h.readToken);
    expect(asReader.statusCode).toBe(200);
    expect(asReader.json()).not.toHaveProperty('secretToken');
    expect(asReader.body).not.toContain('shown-to-writers-only');
    const list = await h.call('GET', '/admin/api/services?limit=200', undefined, h.readToken);
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain('shown-to-writers-only');
    expect(list.body).not.toContain('trst_');
    for (const s of list.json().data) expect(s).not.toHaveProperty('secretToken');
    const listed = await h.call('GET', '/admin/api/services?limit=200');
    expect(listed.body).toContain('shown-to-writers-only');
  });

  it('keeps the token out of the audit log and the outbox, which read-only tokens and gateways read', async () => {
    const svc = (await create({ secretToken: 'kept-out-of-audit' })).json();
    await h.call('PATCH', `/admin/api/services/${svc.id}`, { secretToken: 'also-kept-out-of-audit' });
    const audit = await h.call('GET', `/admin/api/audit-log?entityId=${svc.id}`, undefined, h.readToken);
    expect(audit.statusCode).toBe(200);
    expect(audit.json().data.length).toBe(2);
    expect(audit.body).not.toContain('kept-out-of-audit');
    const events = await h.store.db
      .selectFrom('events')
      .select('payload')
      .where('entity_id', '=', svc.id)
      .execute();
    expect(events.length).toBe(2);
    for (const e of events) expect(e.payload).not.toContain('kept-out-of-audit');
  });
});
