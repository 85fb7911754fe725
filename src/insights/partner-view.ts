/**
 * What a partner sees of insights for one of its applications (the portal's usage page): its findings not yet
 * resolved, with the advice; its health over the last 24 hours; the calls refused with 429; the quota levels
 * announced.
 */
import type { Executor } from '../store/index.js';
import { type ApplicationHealth, applicationHealth } from './application-health.js';
import { type FindingView, listFindings } from './insights.js';
import { selectQuotaAlerts } from './insights.store.js';

export interface PartnerInsights {
  findings: FindingView[];
  health: ApplicationHealth;
  quotaAlerts: { limitId: string; level: number; used: number; limit: number; announcedAt: string }[];
}

export async function partnerInsights(
  db: Executor,
  applicationId: string,
  serviceId: string,
  now: number,
): Promise<PartnerInsights> {
  const [open, acknowledged, health, alerts] = await Promise.all([
    listFindings(db, { applicationId, state: 'open', limit: 20 }),
    listFindings(db, { applicationId, state: 'acknowledged', limit: 20 }),
    applicationHealth(db, applicationId, serviceId, now - 86_400_000, now - (now % 60_000) + 60_000),
    selectQuotaAlerts(db, applicationId),
  ]);
  return {
    findings: [...open.data, ...acknowledged.data],
    health,
    quotaAlerts: alerts.slice(0, 10).map((a) => ({
      limitId: a.limit_id,
      level: a.level,
      used: a.used,
      limit: a.limit_value,
      announcedAt: a.announced_at,
    })),
  };
}
