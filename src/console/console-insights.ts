/**
 * The Insights page: findings by severity (per service and application, with the evidence chart and the advice),
 * acknowledge and resolve, and the most engaged partners of the last 7 days.
 */
import type { FastifyInstance } from 'fastify';
import {
  changeFindingState,
  type FindingView,
  listFindings,
  selectTopApplications,
} from '../insights/index.js';
import { Redirect } from '../portal/index.js';
import { type ConsoleFace, adminActor } from './console-face.js';

const severityOrder: Record<string, number> = { high: 0, medium: 1, low: 2 };
const states = ['open', 'acknowledged', 'resolved'] as const;

/** The evidence timeline as the charts of the console draw it (calls per minute). */
export function evidenceChart(f: FindingView): {
  unit: string;
  labels: string[];
  values: number[];
  limit: null;
} {
  const timeline = f.evidence.timeline;
  return {
    unit: 'minute',
    labels: timeline.map((p) => String(p.at)),
    values: timeline.map((p) => Number(p.calls ?? 0)),
    limit: null,
  };
}

export function insightsRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  const { db } = face;

  scope.get('/insights', async (req, reply) => {
    await face.requireAdmin(req);
    const q = req.query as Record<string, unknown>;
    const state = states.find((s) => s === q.state) ?? 'open';
    const serviceId = typeof q.serviceId === 'string' && q.serviceId.length <= 64 ? q.serviceId : undefined;
    const page = await listFindings(db, { state, serviceId, limit: 200 });
    const findings = [...page.data].sort(
      (a, b) =>
        (severityOrder[a.severity] ?? 3) - (severityOrder[b.severity] ?? 3) ||
        (a.lastSeen < b.lastSeen ? 1 : -1),
    );
    const appIds = [...new Set(findings.map((f) => f.applicationId))];
    const names = new Map(
      appIds.length === 0
        ? []
        : (
            await db.selectFrom('applications').select(['id', 'name']).where('id', 'in', appIds).execute()
          ).map((a) => [a.id, a.name]),
    );
    const services = new Map(
      (await db.selectFrom('services').select(['id', 'name']).execute()).map((s) => [s.id, s.name]),
    );
    const now = face.cd.clock.now();
    const top = await selectTopApplications(db, {
      from: new Date(now - 7 * 86_400_000).toISOString(),
      to: new Date(now + 60_000).toISOString(),
      limit: 10,
    });
    return face.page(req, reply, 'insights', {
      title: 'Insights',
      state,
      serviceId: serviceId ?? '',
      services: [...services].map(([id, name]) => ({ id, name })),
      findings: findings.map((f) => ({
        ...f,
        applicationName: names.get(f.applicationId) ?? f.applicationId,
        serviceName: services.get(f.serviceId) ?? f.serviceId,
        numbers: Object.entries(f.evidence.numbers),
        chart: evidenceChart(f),
      })),
      top,
    });
  });

  scope.post('/insights/:id/:action', async (req) => {
    const admin = await face.requireAdmin(req);
    const { id, action } = req.params as { id: string; action: string };
    if (action !== 'acknowledge' && action !== 'resolve') throw new Redirect('/admin/insights');
    await changeFindingState(
      face.cd,
      adminActor(admin),
      id,
      action === 'resolve' ? 'resolved' : 'acknowledged',
    );
    throw new Redirect('/admin/insights');
  });
}
