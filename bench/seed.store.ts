/** The bench's fixtures, written straight to the database (SQL lives in *.store.ts files). */
import { createHash } from 'node:crypto';
import type { Db } from '../src/store/index.js';

export const BENCH_PREFIX = '/bench';
export const BENCH_KEY_HEADER = 'X-User-Key';

/** The plaintext of bench credential i: deterministic, so a seeded database can be reused between runs. */
export function benchKey(i: number): string {
  return `trk_bench${String(i).padStart(10, '0')}`;
}

const now = () => new Date().toISOString();

/**
 * One service (user key in a header, a mapping rule, two limits too high to trigger) and `credentials` keys
 * spread over 1,000 applications (key i belongs to application i mod 1,000), so a sample of keys touches as many
 * applications whatever the store's size. Returns false when the database was already seeded.
 */
export async function seedBench(
  db: Db,
  options: { upstream: string; credentials: number; limiterMode: string },
): Promise<boolean> {
  const existing = await db
    .selectFrom('services')
    .select('id')
    .where('id', '=', 'svc_bench')
    .executeTakeFirst();
  if (existing) {
    await db
      .updateTable('services')
      .set({
        upstream_production: options.upstream,
        upstream_sandbox: options.upstream,
        limiter_mode: options.limiterMode,
      })
      .where('id', '=', 'svc_bench')
      .execute();
    return false;
  }
  await db.transaction().execute(async (tx) => {
    await tx
      .insertInto('services')
      .values({
        id: 'svc_bench',
        name: 'Bench',
        system_name: 'bench',
        description: '',
        upstream_production: options.upstream,
        upstream_sandbox: options.upstream,
        auth_mode: 'user_key',
        credentials_location: 'header',
        user_key_name: BENCH_KEY_HEADER,
        app_id_name: 'app_id',
        app_key_name: 'app_key',
        secret_token: 'bench-secret',
        gateway_host: '',
        gateway_path_prefix: BENCH_PREFIX,
        limiter_mode: options.limiterMode,
        limiter_failure_mode: 'open',
        max_body_bytes: 10_485_760,
        openapi: null,
        created_at: now(),
        updated_at: now(),
      })
      .execute();
    await tx
      .insertInto('metrics')
      .values({
        id: 'met_bench',
        service_id: 'svc_bench',
        system_name: 'hits',
        friendly_name: 'Hits',
        unit: 'hit',
        description: '',
        parent_id: null,
        created_at: now(),
      })
      .execute();
    await tx
      .insertInto('mapping_rules')
      .values({
        id: 'mr_bench',
        service_id: 'svc_bench',
        http_method: 'GET',
        pattern: '/items',
        metric_id: 'met_bench',
        delta: 1,
        position: 1,
        last: 0,
        created_at: now(),
      })
      .execute();
    await tx
      .insertInto('plans')
      .values({
        id: 'pln_bench',
        service_id: 'svc_bench',
        name: 'Bench',
        system_name: 'bench',
        description: '',
        state: 'published',
        approval_required: 0,
        is_default: 1,
        trial_days: 0,
        end_user_key_source: 'header',
        end_user_key_name: '',
        created_at: now(),
        updated_at: now(),
      })
      .execute();
    await tx
      .insertInto('plan_limits')
      .values([
        {
          id: 'lim_bench_minute',
          plan_id: 'pln_bench',
          metric_id: 'met_bench',
          period: 'minute',
          value: 1_000_000_000,
          scope: 'application',
          created_at: now(),
        },
        {
          id: 'lim_bench_month',
          plan_id: 'pln_bench',
          metric_id: 'met_bench',
          period: 'month',
          value: 1_000_000_000_000,
          scope: 'application',
          created_at: now(),
        },
      ])
      .execute();
    await tx
      .insertInto('accounts')
      .values({
        id: 'acc_bench',
        name: 'Bench',
        state: 'approved',
        custom_fields: '{}',
        created_at: now(),
        updated_at: now(),
      })
      .execute();
    const apps = Math.min(1000, options.credentials);
    for (let a = 0; a < apps; a += 500) {
      const rows = [];
      for (let i = a; i < Math.min(apps, a + 500); i++) {
        rows.push({
          id: `app_bench${i}`,
          account_id: 'acc_bench',
          service_id: 'svc_bench',
          plan_id: 'pln_bench',
          name: `Bench ${i}`,
          description: '',
          state: 'live',
          environment: 'production',
          app_id: `bench${i}`,
          allowed_ips: '[]',
          custom_fields: '{}',
          requested_plan_id: null,
          created_at: now(),
          updated_at: now(),
        });
      }
      await tx.insertInto('applications').values(rows).execute();
    }
    const created = now();
    for (let c = 0; c < options.credentials; c += 1000) {
      const rows = [];
      for (let i = c; i < Math.min(options.credentials, c + 1000); i++) {
        rows.push({
          id: `key_bench${i}`,
          application_id: `app_bench${i % apps}`,
          kind: 'user_key',
          secret_hash: createHash('sha256').update(benchKey(i)).digest('hex'),
          display_prefix: 'trk_be',
          state: 'active',
          created_at: created,
          revoked_at: null,
        });
      }
      await tx.insertInto('credentials').values(rows).execute();
    }
  });
  return true;
}
