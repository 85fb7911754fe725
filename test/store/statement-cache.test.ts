import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openStore, withStatementCache } from '../../src/store/index.js';

describe('SQLite prepared statements kept by text', () => {
  it('prepares a text once, keeps the most recently used, and sees every write and schema change', async () => {
    const raw = new SqliteDatabase(':memory:');
    let prepared = 0;
    const counting = new Proxy(raw, {
      get(target, name) {
        if (name === 'prepare')
          return (text: string) => {
            prepared++;
            return target.prepare(text);
          };
        const value = Reflect.get(target, name) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const db = withStatementCache(counting, 2);
    db.prepare('create table t (a integer)').run();
    const insert = 'insert into t (a) values (?)';
    const count = 'select count(*) as n from t';
    for (let i = 0; i < 5; i++) db.prepare(insert).run(i);
    expect(db.prepare(count).get()).toEqual({ n: 5 });
    expect(prepared).toBe(3);
    // a third text pushes out the least recently used (the create), not the two in use
    db.prepare(insert).run(5);
    db.prepare('select max(a) as m from t').get();
    db.prepare(insert).run(6);
    expect(prepared).toBe(4);
    expect(db.prepare(count).get()).toEqual({ n: 7 });
    expect(prepared).toBe(5);
    // a kept statement is prepared again by SQLite after the schema changed under it
    raw.prepare('alter table t add column b text').run();
    raw.prepare("update t set b = 'x'").run();
    expect(db.prepare('select * from t where a = 0').get()).toEqual({ a: 0, b: 'x' });
    db.close();
    expect(raw.open).toBe(false);
  });

  it('serves a store whose repeated queries read what was written between them', async () => {
    const store = openStore('sqlite::memory:');
    try {
      await sql`create table k (v integer)`.execute(store.db);
      for (let i = 1; i <= 3; i++) {
        await sql`insert into k (v) values (${i})`.execute(store.db);
        const { rows } = await sql<{ total: number }>`select sum(v) as total from k`.execute(store.db);
        expect(rows[0]!.total).toBe((i * (i + 1)) / 2);
      }
    } finally {
      await store.destroy();
    }
  });
});
