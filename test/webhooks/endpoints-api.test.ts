/** Webhook endpoints through the management API (issue 9): CRUD, the secret shown once and sealed, rotation. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialects } from '../support/stores.js';
import { type HooksHarness, startHooks } from './harness.js';

describe.each(dialects)('webhook endpoints API (%s)', (dialect) => {
  let h: HooksHarness;
  beforeAll(async () => {
    h = await startHooks(dialect);
  });
  afterAll(() => h.close());

  it('registers an endpoint; its secret is whsec_ + 32 base64 bytes, shown once, stored encrypted', async () => {
    const res = await h.call('POST', '/webhooks/endpoints', {
      url: 'https://crm.example.com/hooks',
      eventTypes: ['account.created', 'application.created'],
      description: 'CRM leads',
    });
    expect(res.statusCode).toBe(201);
    const created = res.json();
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(created.secret.slice(6), 'base64')).toHaveLength(32);
    expect(created).toMatchObject({ enabled: true, eventTypes: ['account.created', 'application.created'] });
    expect(created.secretPrefix).toBe(created.secret.slice(0, 12));

    const read = await h.call('GET', `/webhooks/endpoints/${created.id}`);
    expect(read.statusCode).toBe(200);
    expect(read.body).not.toContain(created.secret.slice(6));
    const list = await h.call('GET', '/webhooks/endpoints');
    expect(list.json().data.map((e: { id: string }) => e.id)).toContain(created.id);
    expect(list.body).not.toContain(created.secret.slice(6));

    const row = await h.store.db
      .withTables<{ webhook_endpoints: { id: string; secret: string } }>()
      .selectFrom('webhook_endpoints')
      .select('secret')
      .where('id', '=', created.id)
      .executeTakeFirstOrThrow();
    expect(row.secret.startsWith('aes256gcm.v1.')).toBe(true);
    expect(row.secret).not.toContain(created.secret.slice(6));
  });

  it('refuses private, loopback and metadata addresses, other schemes and unknown event types', async () => {
    for (const url of [
      'http://169.254.169.254/latest',
      'http://10.1.2.3/x',
      'http://[::1]/x',
      'http://127.0.0.2/x',
    ]) {
      const res = await h.call('POST', '/webhooks/endpoints', { url, eventTypes: ['*'] });
      expect(res.statusCode, url).toBe(422);
      expect(res.json().error.code).toBe('outbound_address_refused');
    }
    const ftp = await h.call('POST', '/webhooks/endpoints', {
      url: 'ftp://x.example.com/',
      eventTypes: ['*'],
    });
    expect(ftp.statusCode).toBe(400);
    const bad = await h.call('POST', '/webhooks/endpoints', {
      url: 'https://x.example.com/',
      eventTypes: ['account.created', 'account.exploded'],
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details).toEqual([
      { field: 'eventTypes[1]', message: 'account.exploded is not an event type' },
    ]);
    // allowed by TRELLIS_OUTBOUND_ALLOW_HOSTS
    const allowed = await h.call('POST', '/webhooks/endpoints', {
      url: 'http://127.0.0.1:9/x',
      eventTypes: ['*'],
    });
    expect(allowed.statusCode).toBe(201);
  });

  it('updates, disables, rotates the secret with a 24 h grace period, and deletes', async () => {
    const created = (
      await h.call('POST', '/webhooks/endpoints', { url: 'https://a.example.com/h', eventTypes: ['*'] })
    ).json();
    const patched = await h.call('PATCH', `/webhooks/endpoints/${created.id}`, {
      enabled: false,
      eventTypes: ['user.created'],
    });
    expect(patched.json()).toMatchObject({ enabled: false, eventTypes: ['user.created'] });
    const rotated = await h.call('POST', `/webhooks/endpoints/${created.id}/rotate-secret`, {});
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json().secret).toMatch(/^whsec_/);
    expect(rotated.json().secret).not.toBe(created.secret);
    expect(rotated.json().previousSecretExpiresAt).toBe(new Date(h.clock.now() + 86_400_000).toISOString());
    const shown = (await h.call('GET', `/webhooks/endpoints/${created.id}`)).json();
    expect(shown.secretPrefix).toBe(rotated.json().secret.slice(0, 12));
    const log = await h.call('GET', `/webhooks/endpoints/${created.id}/messages`);
    expect(log.json()).toEqual({ data: [], nextCursor: null });
    expect((await h.call('DELETE', `/webhooks/endpoints/${created.id}`)).statusCode).toBe(204);
    expect((await h.call('GET', `/webhooks/endpoints/${created.id}`)).statusCode).toBe(404);
    const types = (await h.call('GET', '/webhooks/event-types')).json().data;
    expect(types.find((t: { type: string }) => t.type === 'account.created')).toMatchObject({ version: 1 });
  });
});
