import { type Kysely, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrateToLatest, migrations, openStore } from '../../src/store/index.js';
import { dialects, freshDatabaseUrl } from '../support/stores.js';

describe.each(dialects)('migrations (%s)', (dialect) => {
  it('run once, then are a no-op', async () => {
    const { url, drop } = await freshDatabaseUrl(dialect);
    const store = openStore(url);
    try {
      expect(await migrateToLatest(store.db)).toEqual(Object.keys(migrations));
      expect(await migrateToLatest(store.db)).toEqual([]);
    } finally {
      await store.destroy();
      await drop();
    }
  });

  it('leave the database as it was when one fails', async () => {
    const { url, drop } = await freshDatabaseUrl(dialect);
    const store = openStore(url);
    const names = Object.keys(migrations);
    migrations['9999_broken'] = {
      up: async (db: Kysely<unknown>) => {
        await db.schema.createTable('half_done').addColumn('id', 'integer').execute();
        await sql`this is not sql`.execute(db);
      },
    };
    try {
      await expect(migrateToLatest(store.db)).rejects.toThrow(
        /9999_broken failed; the database is unchanged/,
      );
      const tables = await store.db.introspection.getTables();
      expect(tables.map((t) => t.name)).not.toContain('half_done');
      expect(tables.map((t) => t.name)).not.toContain('services');
    } finally {
      delete migrations['9999_broken'];
      await store.destroy();
      await drop();
    }
    expect(Object.keys(migrations)).toEqual(names);
  });
});
