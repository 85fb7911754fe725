/**
 * Developer accounts and applications: search, approve, suspend, resume, change an application's plan, see
 * credentials' prefixes and usage, and — when its service has a certification plan — the report card of the
 * application's latest certification run (or of a past one, `?run=`) with links to every run (issue 11).
 */
import type { FastifyInstance } from 'fastify';
import {
  changeApplicationPlan,
  declineApplicationPlan,
  deleteApplication,
  getAccount,
  getApplication,
  listAccounts,
  listApplications,
  listUsers,
  transitionAccount,
  transitionApplication,
} from '../access/index.js';
import { getPlan, getService, listMetrics, listPlans } from '../catalog/index.js';
import { findCertificationPlan, listCertificationRuns, reportCard } from '../golive/index.js';
import { applicationHealth, listFindings } from '../insights/index.js';
import { type FieldProblem, notFound } from '../kernel/index.js';
import { getClientOAuthSettings, updateClientOAuthSettings } from '../oauth/index.js';
import {
  type ChartData,
  Redirect,
  bucketsBetween,
  formOf,
  problemsOf,
  safeNext,
  tokensOn,
  valuesOn,
} from '../portal/index.js';
import { queryUsage } from '../usage/index.js';
import { type ConsoleFace, adminActor, cursorOf, nextPageUrl, refusalOf } from './console-face.js';

const hour = 3_600_000;
const day = 24 * hour;
const accountActions = ['approve', 'suspend', 'resume'] as const;
type Action = (typeof accountActions)[number];

function actionOf(raw: string): Action {
  const action = accountActions.find((a) => a === raw);
  if (!action) throw notFound('action', raw);
  return action;
}

/** Search text and state filter from the query string, bounded. */
function filterOf(query: unknown): { q: string; state: string } {
  const q = (query ?? {}) as Record<string, unknown>;
  const text = typeof q.q === 'string' ? q.q.trim().slice(0, 200) : '';
  const state = typeof q.state === 'string' && /^[a-z]{1,20}$/.test(q.state) ? q.state : '';
  return { q: text, state };
}

export function accountRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  const { db, cd } = face;
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;

  scope.get('/accounts', async (req, reply) => {
    await face.requireAdmin(req);
    const filter = filterOf(req.query);
    const page = await listAccounts(
      db,
      { ...(filter.q && { q: filter.q }), ...(filter.state && { state: filter.state }) },
      { limit: face.pageSize, cursor: cursorOf(req.query) },
    );
    return face.page(req, reply, 'accounts', {
      title: 'Accounts',
      accounts: page.data,
      filter,
      next: nextPageUrl('/admin/accounts', filter, page.nextCursor),
    });
  });

  scope.get('/accounts/:id', async (req, reply) => {
    await face.requireAdmin(req);
    const account = await getAccount(db, id(req));
    const [users, apps] = await Promise.all([
      listUsers(db, account.id),
      listApplications(db, { accountId: account.id }, { limit: 200 }),
    ]);
    return face.page(req, reply, 'account', { title: account.name, account, users, apps: apps.data });
  });

  scope.post('/accounts/:id/:action', async (req) => {
    const admin = await face.requireAdmin(req);
    const { action } = req.params as { action: string };
    await transitionAccount(cd, adminActor(admin), id(req), actionOf(action));
    // one click from the dashboard's inbox goes back there
    throw new Redirect(safeNext(formOf(req).text('back', 200), `/admin/accounts/${id(req)}`));
  });

  scope.get('/applications', async (req, reply) => {
    await face.requireAdmin(req);
    const filter = filterOf(req.query);
    const page = await listApplications(
      db,
      { ...(filter.q && { q: filter.q }), ...(filter.state && { state: filter.state }) },
      { limit: face.pageSize, cursor: cursorOf(req.query) },
    );
    const services = Object.fromEntries(
      await Promise.all(
        [...new Set(page.data.map((a) => a.serviceId))].map(
          async (serviceId) => [serviceId, (await getService(db, serviceId)).name] as const,
        ),
      ),
    );
    // the account and the plan of each row, named (issue 13): one lookup per distinct id on the page
    const named = async (ids: string[], name: (id: string) => Promise<string>) =>
      Object.fromEntries(await Promise.all([...new Set(ids)].map(async (i) => [i, await name(i)] as const)));
    const [accounts, plans] = await Promise.all([
      named(
        page.data.map((a) => a.accountId),
        async (i) => (await getAccount(db, i)).name,
      ),
      named(
        page.data.flatMap((a) => (a.requestedPlanId ? [a.planId, a.requestedPlanId] : [a.planId])),
        async (i) => (await getPlan(db, i)).name,
      ),
    ]);
    return face.page(req, reply, 'applications', {
      title: 'Applications',
      apps: page.data,
      accounts,
      plans,
      services,
      filter,
      next: nextPageUrl('/admin/applications', filter, page.nextCursor),
    });
  });

  /**
   * The certification panel: null when the service has no plan, or for a production application without runs (its
   * runs are its sandbox application's); otherwise the runs, newest first, and the card of the latest or asked run.
   */
  async function certificationView(
    app: { id: string; serviceId: string; environment: string },
    runId?: string,
  ) {
    const plan = await findCertificationPlan(db, app.serviceId);
    if (plan === null) return null;
    const runs = await listCertificationRuns(db, app.id);
    if (runs.length === 0 && app.environment !== 'sandbox') return null;
    const shown = runId === undefined ? runs[0] : runs.find((r) => r.id === runId);
    if (runId !== undefined && shown === undefined) throw notFound('certification run', runId);
    const back = `/admin/applications/${app.id}${runId === undefined ? '' : `?run=${runId}`}`;
    return { runs, card: shown ? await reportCard(db, shown) : null, back };
  }

  async function applicationView(
    appId: string,
    extra: { notice?: string; problems?: FieldProblem[]; refusal?: string; runId?: string } = {},
  ) {
    const app = await getApplication(db, appId);
    const [account, service, plan, plans, metrics] = await Promise.all([
      getAccount(db, app.accountId),
      getService(db, app.serviceId),
      getPlan(db, app.planId),
      listPlans(db, { serviceId: app.serviceId }),
      listMetrics(db, app.serviceId),
    ]);
    const oauth = service.authMode === 'oauth2';
    const now = cd.clock.now();
    const hourBuckets = bucketsBetween(now - day + hour, now + 1, 'hour');
    const dayBuckets = bucketsBetween(now - 29 * day, now + 1, 'day');
    const [usage, hourly, client, tokensHourly, tokensDaily] = await Promise.all([
      queryUsage(db, {
        applicationId: app.id,
        granularity: 'day',
        from: new Date(now - 29 * day),
        to: new Date(now + 1),
      }),
      queryUsage(db, {
        applicationId: app.id,
        granularity: 'hour',
        from: new Date(now - day + hour),
        to: new Date(now + 1),
      }),
      oauth ? getClientOAuthSettings(db, app.id) : undefined,
      oauth ? tokensOn(db, app.id, hourBuckets, 'hour') : undefined,
      oauth ? tokensOn(db, app.id, dayBuckets, 'day') : undefined,
    ]);
    const totals = metrics.map((m) => ({
      metric: m,
      total: usage.find((u) => u.metricId === m.id)?.total ?? 0,
    }));
    // Calls are every call (the `hits` metric); OAuth clients' tokens issued are drawn beside them.
    const hitsId = metrics.find((m) => m.systemName === 'hits')?.id;
    const charts: { hourly: ChartData; daily: ChartData } = {
      hourly: {
        unit: 'hour',
        labels: hourBuckets,
        values: valuesOn(hourBuckets, hourly.find((u) => u.metricId === hitsId)?.points),
        limit: null,
        ...(tokensHourly && { tokens: tokensHourly }),
      },
      daily: {
        unit: 'day',
        labels: dayBuckets,
        values: valuesOn(dayBuckets, usage.find((u) => u.metricId === hitsId)?.points),
        limit: null,
        ...(tokensDaily && { tokens: tokensDaily }),
      },
    };
    const sum = (xs: number[] | undefined) => (xs ?? []).reduce((a, b) => a + b, 0);
    const requested = plans.find((p) => p.id === app.requestedPlanId);
    // the health panel (issue 10): the last 24 hours as the partner saw them, and findings not yet resolved
    const [health, openFindings, certification] = await Promise.all([
      applicationHealth(db, app.id, app.serviceId, now - day, now - (now % 60_000) + 60_000),
      listFindings(db, { applicationId: app.id, state: 'open', limit: 20 }),
      certificationView(app, extra.runId),
    ]);
    return {
      title: app.name,
      app,
      account,
      service,
      plan,
      plans,
      requested,
      totals,
      charts,
      client,
      tokens: oauth ? { day: sum(tokensHourly), month: sum(tokensDaily) } : null,
      health,
      findings: openFindings.data,
      certification,
      notice: extra.notice ?? '',
      problems: extra.problems ?? [],
      refusal: extra.refusal ?? '',
    };
  }

  scope.get('/applications/:id', async (req, reply) => {
    await face.requireAdmin(req);
    const run = (req.query as Record<string, unknown>).run;
    const runId = typeof run === 'string' && run.length <= 64 ? run : undefined;
    return face.page(req, reply, 'application', await applicationView(id(req), { ...(runId && { runId }) }));
  });

  scope.post('/applications/:id/plan', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const planId = formOf(req).text('planId', 64);
    await changeApplicationPlan(cd, adminActor(admin), id(req), planId);
    const back = safeNext(formOf(req).text('back', 200), '');
    if (back) throw new Redirect(back);
    return face.page(req, reply, 'application', await applicationView(id(req), { notice: 'Plan changed.' }));
  });

  /** Declines the plan the developer asked for (the dashboard's inbox). */
  scope.post('/applications/:id/decline-plan', async (req) => {
    const admin = await face.requireAdmin(req);
    await declineApplicationPlan(cd, adminActor(admin), id(req));
    throw new Redirect(safeNext(formOf(req).text('back', 200), `/admin/applications/${id(req)}`));
  });

  /** Redirect URIs of an OAuth client (one per line), for the authorization-code flow. */
  scope.post('/applications/:id/oauth', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const app = await getApplication(db, id(req));
    const redirectUris = formOf(req).text('redirectUris', 50_000).split(/\s+/).filter(Boolean);
    try {
      await updateClientOAuthSettings(cd, adminActor(admin), app.id, { redirectUris });
      return face.page(
        req,
        reply,
        'application',
        await applicationView(app.id, { notice: 'Redirect URIs saved.' }),
      );
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      return face.page(req, reply, 'application', await applicationView(app.id, { problems }), 400);
    }
  });

  /** Deletes an application with its keys; its calls are refused from the next configuration reload on. */
  scope.post('/applications/:id/delete', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const app = await getApplication(db, id(req));
    try {
      await deleteApplication(cd, adminActor(admin), app.id);
    } catch (err) {
      const refusal = refusalOf(err);
      if (refusal === undefined) throw err;
      return face.page(req, reply, 'application', await applicationView(app.id, { refusal }), 409);
    }
    throw new Redirect(`/admin/accounts/${app.accountId}`);
  });

  scope.post('/applications/:id/:action', async (req) => {
    const admin = await face.requireAdmin(req);
    const { action } = req.params as { action: string };
    await transitionApplication(cd, adminActor(admin), id(req), actionOf(action));
    throw new Redirect(safeNext(formOf(req).text('back', 200), `/admin/applications/${id(req)}`));
  });
}
