/**
 * Issue 13: the HTML faces' error handler answered 500 when the database refused a duplicate (two forms creating
 * the same name at once). It is the visitor's conflict: a 409 page with a sentence, on both databases.
 */
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installHtmlErrors } from '../../src/portal/web-pages.js';
import { type TestStore, dialects, freshStore } from '../support/stores.js';

describe.each(dialects)('HTML error pages on %s', (dialect) => {
  let store: TestStore;
  const app = Fastify({ logger: false });
  beforeAll(async () => {
    store = await freshStore(dialect);
    await app.register(async (scope) => {
      installHtmlErrors(scope, (_req, reply, page) =>
        reply.status(page.status).type('text/html').send(`<h1>${page.title}</h1><p>${page.message}</p>`),
      );
      // the same primary key twice: what two forms creating the same name at once meet in the database
      scope.post('/make/:key', async (req) => {
        const key = (req.params as { key: string }).key;
        await store.db.insertInto('settings').values({ key, value: '{}', updated_at: 'now' }).execute();
        return { made: key };
      });
    });
    await app.ready();
  }, 60_000);
  afterAll(async () => {
    await app.close();
    await store.cleanup();
  });

  it('answers a unique-constraint violation with a 409 page that says what happened', async () => {
    expect((await app.inject({ method: 'POST', url: '/make/twice' })).statusCode).toBe(200);
    const second = await app.inject({ method: 'POST', url: '/make/twice' });
    expect(second.statusCode).toBe(409);
    expect(second.body).toContain('already exists');
    expect(second.body).not.toMatch(/SQLITE|duplicate key|constraint/i);
  });
});
