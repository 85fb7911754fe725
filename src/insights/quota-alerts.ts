/**
 * Quota alerts: for every live application and every application-scoped limit of its plan, the share of the
 * limit used in the current window (from the flushed usage) is compared with the levels 50, 80, 90 and 100 %.
 * Each level is announced once per limit window — to the partner (a mail to the account's admins) and as a
 * `quota.level_reached` event — and kept in `quota_alerts`, where the provider sees it. A level reached by a
 * jump claims the lower ones too; one mail names the highest.
 */
import { type ChangeDeps, runChange, systemActor } from '../events/index.js';
import { isPeriod, windowOf } from '../gateway/index.js';
import { type Mailer, composeMail } from '../mail/index.js';
import type { Executor } from '../store/index.js';
import { claimQuotaAlert } from './insights.store.js';

export const QUOTA_LEVELS = [50, 80, 90, 100] as const;

export interface QuotaAlertsRun {
  announced: number;
}

interface LimitRow {
  application_id: string;
  account_id: string;
  service_id: string;
  application_name: string;
  limit_id: string;
  metric_id: string;
  metric_name: string;
  period: string;
  value: number;
}

async function usedInWindow(
  db: Executor,
  applicationId: string,
  metricId: string,
  period: string,
  start: number,
  end: number,
): Promise<number> {
  const granularity = period === 'minute' ? 'minute' : period === 'hour' ? 'hour' : 'day';
  let q = db
    .withTables<{
      usage_metric_counts: {
        granularity: string;
        application_id: string;
        metric_id: string;
        bucket: string;
        value: number;
      };
    }>()
    .selectFrom('usage_metric_counts')
    .select((eb) => eb.fn.sum<number>('value').as('used'))
    .where('granularity', '=', granularity)
    .where('application_id', '=', applicationId)
    .where('metric_id', '=', metricId)
    .where('bucket', '>=', new Date(start).toISOString());
  if (Number.isFinite(end)) q = q.where('bucket', '<', new Date(end).toISOString());
  const row = await q.executeTakeFirst();
  return Number(row?.used ?? 0);
}

/** Announces the quota levels reached since the last run. */
export async function runQuotaAlerts(
  deps: ChangeDeps & { mailer?: Mailer | undefined; portalUrl?: string | undefined },
  now: number = deps.clock.now(),
): Promise<QuotaAlertsRun> {
  const limits: LimitRow[] = await deps.db
    .selectFrom('applications as a')
    .innerJoin('plan_limits as l', 'l.plan_id', 'a.plan_id')
    .innerJoin('metrics as m', 'm.id', 'l.metric_id')
    .select([
      'a.id as application_id',
      'a.account_id',
      'a.service_id',
      'a.name as application_name',
      'l.id as limit_id',
      'l.metric_id',
      'm.friendly_name as metric_name',
      'l.period',
      'l.value',
    ])
    .where('a.state', '=', 'live')
    .where('l.scope', '=', 'application')
    .where('l.value', '>', 0)
    .execute();
  const run: QuotaAlertsRun = { announced: 0 };
  const nowIso = new Date(now).toISOString();
  for (const l of limits) {
    if (!isPeriod(l.period)) continue;
    const w = windowOf(l.period, now);
    const value = Number(l.value);
    const used = await usedInWindow(deps.db, l.application_id, l.metric_id, l.period, w.start, w.end);
    const reached = QUOTA_LEVELS.filter((level) => used * 100 >= value * level);
    if (reached.length === 0) continue;
    const windowStart = new Date(w.start).toISOString();
    const windowEnd = Number.isFinite(w.end) ? new Date(w.end).toISOString() : null;
    const fresh: number[] = [];
    await runChange(deps, systemActor, async (tx, record) => {
      for (const level of reached) {
        const claimed = await claimQuotaAlert(tx, {
          application_id: l.application_id,
          limit_id: l.limit_id,
          window_start: windowStart,
          level,
          used,
          limit_value: value,
          announced_at: nowIso,
        });
        if (!claimed) continue;
        fresh.push(level);
        await record({
          type: 'quota.level_reached',
          entityType: 'application',
          entityId: l.application_id,
          payload: {
            applicationId: l.application_id,
            accountId: l.account_id,
            serviceId: l.service_id,
            limitId: l.limit_id,
            metricId: l.metric_id,
            period: l.period,
            level,
            used,
            limit: value,
            windowStart,
            windowEnd,
          },
        });
      }
    });
    if (fresh.length === 0) continue;
    run.announced += fresh.length;
    if (deps.mailer)
      await mailPartner(deps.db, deps.mailer, l, Math.max(...fresh), used, value, windowEnd, deps.portalUrl);
  }
  return run;
}

async function mailPartner(
  db: Executor,
  mailer: Mailer,
  l: LimitRow,
  level: number,
  used: number,
  value: number,
  windowEnd: string | null,
  portalUrl: string | undefined,
): Promise<void> {
  const admins = await db
    .selectFrom('users')
    .select('email')
    .where('account_id', '=', l.account_id)
    .where('role', '=', 'admin')
    .execute();
  // the provider's template (console → Portal → Mail templates), or the default (issue 13)
  const values = {
    applicationName: l.application_name,
    metricName: l.metric_name,
    period: l.period,
    used: String(used),
    limit: String(value),
    percent: String(level),
    resetsAt: windowEnd ? `The window resets at ${windowEnd}.` : 'This limit does not reset.',
    usageUrl: portalUrl ?? '',
  };
  const key = level >= 100 ? 'quota_reached' : 'quota_alert';
  for (const a of admins) await mailer.send(await composeMail(db, key, a.email, values, portalUrl ?? ''));
}
