/**
 * Migration 0022 on a database that has doubled mapping rules (the same service, verb, pattern and metric, as
 * two POSTs of one rule left them): it keeps the rule the gateway tries first (lowest position, then the oldest)
 * and deletes the others, leaves rules that differ in verb, pattern, metric or service alone, and from then on
 * the database refuses a second such rule, on SQLite and PostgreSQL.
 */
import { type Kysely, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { newId } from '../../src/kernel/index.js';
import { isUniqueViolation, migrateTo, migrateToLatest, openStore } from '../../src/store/index.js';
import { dialects, freshDatabaseUrl } from '../support/stores.js';

const at = '2026-06-01T12:00:00.000Z';

interface RuleRow {
  service_id: string;
  http_method: string;
  pattern: string;
  metric_id: string;
  delta?: number;
  position: number;
  last?: number;
}

/*
 * Rows are written as the tables stood at 0021 (not through the catalog, which writes the latest schema), and
 * rules with no check, as the management API wrote them before 0022.
 */
async function insertService(db: Kysely<unknown>, systemName: string): Promise<{ id: string; hits: string }> {
  const id = newId('service');
  const hits = newId('metric');
  await sql`insert into services (id, name, system_name, upstream_production, upstream_sandbox, auth_mode,
      credentials_location, user_key_name, app_id_name, app_key_name, max_body_bytes, created_at, updated_at)
    values (${id}, ${systemName}, ${systemName}, 'https://api.test', '', 'user_key', 'header', 'X-API-Key',
      'X-App-Id', 'X-App-Key', 1024, ${at}, ${at})`.execute(db);
  await insertMetric(db, id, hits, 'hits', null);
  return { id, hits };
}

async function insertMetric(
  db: Kysely<unknown>,
  serviceId: string,
  id: string,
  systemName: string,
  parentId: string | null,
): Promise<void> {
  await sql`insert into metrics (id, service_id, system_name, friendly_name, parent_id, kind, created_at)
    values (${id}, ${serviceId}, ${systemName}, ${systemName}, ${parentId},
      ${parentId === null ? 'metric' : 'method'}, ${at})`.execute(db);
}

async function insertRule(db: Kysely<unknown>, rule: RuleRow): Promise<string> {
  const id = newId('mappingRule');
  const { delta = 1, last = 0 } = rule;
  await sql`insert into mapping_rules (id, service_id, http_method, pattern, metric_id, delta, position, last,
      created_at)
    values (${id}, ${rule.service_id}, ${rule.http_method}, ${rule.pattern}, ${rule.metric_id}, ${delta},
      ${rule.position}, ${last}, ${at})`.execute(db);
  return id;
}

describe.each(dialects)(
  'migration 0022: one mapping rule per service, verb, pattern and metric (%s)',
  (dialect) => {
    it('deletes the doubled rules, keeping the one tried first, then refuses another', async () => {
      const { url, drop } = await freshDatabaseUrl(dialect);
      const store = openStore(url);
      const db = store.db as unknown as Kysely<unknown>;
      try {
        await migrateTo(store.db, '0021_usage_journal');
        const mail = await insertService(db, 'mail');
        const other = await insertService(db, 'other');
        const hits = mail.hits;
        const send = newId('metric');
        await insertMetric(db, mail.id, send, 'send', hits);
        const rule = (r: Partial<RuleRow> & { position: number }) =>
          insertRule(db, {
            service_id: mail.id,
            http_method: 'GET',
            pattern: '/a',
            metric_id: hits,
            ...r,
          });

        // the same position: the older (lower id) stays
        const first = await rule({ position: 1 });
        await rule({ position: 1 });
        // a lower position wins over an older rule, whatever the delta or `last`
        await rule({ http_method: 'POST', pattern: '/send$', metric_id: send, position: 5 });
        const tried = await rule({
          http_method: 'POST',
          pattern: '/send$',
          metric_id: send,
          position: 2,
          delta: 3,
          last: 1,
        });
        // three copies: one stays
        const three = await rule({ pattern: '/three', position: 7 });
        await rule({ pattern: '/three', position: 8 });
        await rule({ pattern: '/three', position: 9 });
        // differ in metric, verb, pattern or service: all stay
        const otherMetric = await rule({ metric_id: send, position: 3 });
        const otherVerb = await rule({ http_method: 'ANY', position: 4 });
        const otherPattern = await rule({ pattern: '/a$', position: 6 });
        const otherService = await insertRule(db, {
          service_id: other.id,
          http_method: 'GET',
          pattern: '/a',
          metric_id: other.hits,
          position: 1,
        });
        expect(await store.db.selectFrom('mapping_rules').select('id').execute()).toHaveLength(11);

        expect(await migrateToLatest(store.db)).toContain('0022_unique_mapping_rules');

        const left = await store.db.selectFrom('mapping_rules').select('id').execute();
        expect(left.map((r) => r.id).sort()).toEqual(
          [first, tried, three, otherMetric, otherVerb, otherPattern, otherService].sort(),
        );
        const refused = await insertRule(db, {
          service_id: mail.id,
          http_method: 'POST',
          pattern: '/send$',
          metric_id: send,
          position: 10,
          delta: 5,
        }).catch((err: unknown) => err);
        expect(isUniqueViolation(refused)).toBe(true);
        // the longest pattern the API takes, in characters of 3 bytes: more than a PostgreSQL btree entry holds
        const long = `/${'天'.repeat(999)}`;
        await rule({ pattern: long, position: 11 });
        const again = await rule({ pattern: long, position: 12 }).catch((err: unknown) => err);
        expect(isUniqueViolation(again)).toBe(true);
      } finally {
        await store.destroy();
        await drop();
      }
    });
  },
);
