/**
 * Go-live in the console (issue 11): the requests partners made, approved in one click (the production application
 * is made; the partner collects its key), rejected or revoked with a comment the partner reads.
 */
import type { FastifyInstance } from 'fastify';
import {
  type GoLiveRequest,
  approveGoLive,
  latestRuns,
  listGoLiveRequests,
  programmeFunnel,
  rejectGoLive,
  reportCard,
  revokeProduction,
  runningRuns,
} from '../golive/index.js';
import { invalid, notFound } from '../kernel/index.js';
import { Redirect, formOf } from '../portal/index.js';
import { type ConsoleFace, adminActor } from './console-face.js';

const states = ['requested', 'approved', 'rejected', 'revoked'] as const;

export function goliveRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  const { db, cd } = face;

  scope.get('/golive', async (req, reply) => {
    await face.requireAdmin(req);
    const q = req.query as Record<string, unknown>;
    const state = states.find((s) => s === q.state) ?? 'requested';
    const requests = await listGoLiveRequests(db, { state });
    const ids = [...new Set(requests.flatMap((r) => [r.applicationId, r.accountId, r.serviceId]))];
    const names = new Map<string, string>();
    if (ids.length > 0) {
      for (const t of ['applications', 'accounts', 'services'] as const) {
        for (const row of await db.selectFrom(t).select(['id', 'name']).where('id', 'in', ids).execute())
          names.set(row.id, row.name);
      }
    }
    const rows = requests.map((r: GoLiveRequest) => ({
      ...r,
      applicationName: names.get(r.applicationId) ?? r.applicationId,
      accountName: names.get(r.accountId) ?? r.accountId,
      serviceName: names.get(r.serviceId) ?? r.serviceId,
    }));
    // issue 11: the report card of each request's latest certification run, and the runs still running (evidence
    // to review before a request is made)
    const latest = await latestRuns(db, [...new Set(requests.map((r) => r.applicationId))]);
    const cards = new Map(
      await Promise.all([...latest].map(async ([appId, run]) => [appId, await reportCard(db, run)] as const)),
    );
    const running = await Promise.all((await runningRuns(db)).map((run) => reportCard(db, run)));
    for (const row of await db
      .selectFrom('applications')
      .select(['id', 'name'])
      .where('id', 'in', ['', ...running.map((c) => c.run.applicationId)])
      .execute())
      names.set(row.id, row.name);
    return face.page(req, reply, 'golive', {
      title: 'Go-live',
      cards,
      running,
      names,
      back: `/admin/golive?state=${state}`,
      state,
      states,
      requests: rows,
      funnel: await programmeFunnel(db, {}),
    });
  });

  scope.post('/golive/:id/:action', async (req) => {
    const admin = await face.requireAdmin(req);
    const { id, action } = req.params as { id: string; action: string };
    const comment = formOf(req).text('comment', 2000).trim();
    const actor = adminActor(admin);
    if (action === 'approve') {
      await approveGoLive(cd, actor, id, { comment });
      throw new Redirect('/admin/golive?state=approved');
    }
    if (action !== 'reject' && action !== 'revoke') throw notFound('action', action);
    if (!comment) throw invalid([{ field: 'comment', message: 'say why: the partner reads it' }]);
    if (action === 'reject') await rejectGoLive(cd, actor, id, { comment });
    else await revokeProduction(cd, actor, id, { comment });
    throw new Redirect(`/admin/golive?state=${action === 'reject' ? 'rejected' : 'revoked'}`);
  });
}
