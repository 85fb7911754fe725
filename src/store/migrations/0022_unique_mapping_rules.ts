import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../dialect.js';

/**
 * One mapping rule per service, verb, pattern and metric. Every rule that matches a call adds its delta, so a
 * second such rule (the same rule POSTed twice, or twice at once) counted each call twice on its metric. Delta and
 * `last` are not part of a rule's identity: two rules that differ only there still count a call twice.
 *
 * The rules already doubled are deleted first, keeping the one the gateway tries first (lowest position, then
 * lowest id: the oldest, ids being time-ordered), so a call's route in usage stays the rule it was. Then a unique
 * index keeps them single. On PostgreSQL the index holds `md5(pattern)`: a btree entry may not exceed 2704 bytes,
 * and a pattern may be 1000 characters of up to 4 bytes each. SQLite has no such limit and indexes the pattern.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    delete from mapping_rules
     where exists (
       select 1 from mapping_rules kept
        where kept.service_id = mapping_rules.service_id
          and kept.http_method = mapping_rules.http_method
          and kept.pattern = mapping_rules.pattern
          and kept.metric_id = mapping_rules.metric_id
          and (kept.position < mapping_rules.position
               or (kept.position = mapping_rules.position and kept.id < mapping_rules.id)))
  `.execute(db);
  const index = db.schema
    .createIndex('mapping_rules_service_method_pattern_metric')
    .unique()
    .on('mapping_rules')
    .columns(['service_id', 'http_method', 'metric_id']);
  await (isPostgres(db) ? index.expression(sql`md5(pattern)`) : index.column('pattern')).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('mapping_rules_service_method_pattern_metric').execute();
}
