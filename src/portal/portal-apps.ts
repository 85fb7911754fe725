/**
 * A developer's applications: create one for an API and a published plan, see its state and keys, add a key and
 * revoke an old one (rotation without downtime), edit allowed IPs and custom fields, ask for another plan, and
 * see its usage against the plan's limits.
 */
import type { FastifyInstance } from 'fastify';
import {
  ApplicationCreate,
  addApplicationKey,
  createApplication,
  listApplications,
  listCustomFields,
  requestApplicationPlan,
  revokeApplicationKey,
  updateApplication,
} from '../access/index.js';
import {
  getPlan,
  getService,
  getServiceOpenapi,
  listMetrics,
  listPlans,
  listServices,
} from '../catalog/index.js';
import { findCertificationPlan } from '../golive/index.js';
import { partnerInsights } from '../insights/index.js';
import { TrellisError, invalid } from '../kernel/index.js';
import { type Period, isPeriod, windowOf } from '../gateway/index.js';
import { queryUsage } from '../usage/index.js';
import { type ChartData, bucketsBetween, tokensOn, valuesOn } from './usage-charts.js';
import { type PortalFace, developerActor, ownApplication } from './portal-face.js';
import { setFlash, takeFlash } from './flash.js';
import { inPortal, portalServices } from './portal-catalog.js';
import { buildSnippets, firstGetPath } from './snippets.js';
import { Redirect, checked, formOf, problemsOf } from './web-pages.js';

const hour = 3600_000;
const day = 24 * hour;

export function applicationRoutes(scope: FastifyInstance, face: PortalFace): void {
  const { db, cd } = face;
  const flashDeps = { db, clock: cd.clock, publicUrl: face.deps.config.publicUrl };

  scope.get('/apps', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const apps = (await listApplications(db, { accountId: me.account.id }, { limit: 200 })).data;
    const services = Object.fromEntries((await listServices(db, { limit: 200 })).data.map((s) => [s.id, s]));
    return face.page(req, reply, 'apps', { title: 'Your applications', apps, services });
  });

  async function newAppForm(serviceId: string) {
    const services = await portalServices(face);
    const service = services.find((s) => s.id === serviceId) ?? services[0];
    const plans = service
      ? (await listPlans(db, { serviceId: service.id })).filter((p) => p.state === 'published')
      : [];
    const fields = await listCustomFields(db, 'application');
    return { services, service, plans, fields };
  }

  scope.get('/apps/new', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const q = req.query as Record<string, string | undefined>;
    // First run (no application yet): the form is filled in, one click from a key and a snippet (issue 13).
    const firstRun =
      (await listApplications(db, { accountId: me.account.id }, { limit: 1 })).data.length === 0;
    return face.page(req, reply, 'app-new', {
      title: firstRun ? 'Your first key' : 'New application',
      ...(await newAppForm(q.service ?? '')),
      values: firstRun ? { name: `${me.account.name} app` } : {},
      firstRun,
      problems: [],
    });
  });

  scope.post('/apps/new', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const form = formOf(req);
    const serviceId = form.text('serviceId', 64);
    const planId = form.text('planId', 64);
    try {
      if (me.account.state !== 'approved') {
        throw new TrellisError('invalid_state', 'Your account awaits the approval of the provider.');
      }
      // Only a published plan of the chosen API may be picked here; a hidden plan id is as unknown as a wrong one.
      const plan = planId ? await getPlan(db, planId).catch(() => undefined) : undefined;
      if (
        !plan ||
        plan.serviceId !== serviceId ||
        plan.state !== 'published' ||
        !(await inPortal(face, await getService(db, serviceId)))
      ) {
        throw invalid([{ field: 'planId', message: 'choose one of the plans of the API' }]);
      }
      const input = checked(ApplicationCreate, {
        accountId: me.account.id,
        serviceId,
        planId,
        name: form.text('name', 200),
        description: form.text('description', 10_000),
        environment: 'sandbox',
        customFields: form.prefixed('cf_'),
      });
      const created = await createApplication(cd, developerActor(me), input);
      // POST → redirect → GET: a reload shows the application, it never creates a second one (issue 13)
      await setFlash(flashDeps, req, reply, `/apps/${created.id}`, me.session.tokenHash, {
        secret: created.secret.value,
      });
      throw new Redirect(`/apps/${created.id}`);
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      return face.page(
        req,
        reply,
        'app-new',
        { title: 'New application', ...(await newAppForm(serviceId)), values: form.values(), problems },
        400,
      );
    }
  });

  scope.get('/apps/:id', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const flash = await takeFlash(flashDeps, req, reply, `/apps/${app.id}`, me.session.tokenHash);
    return face.page(req, reply, 'app', await appView(face, app, app.serviceId, flash));
  });

  scope.post('/apps/:id', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const form = formOf(req);
    const ips = form
      .text('allowedIps', 5000)
      .split(/[\s,]+/)
      .filter(Boolean);
    try {
      const updated = await updateApplication(cd, developerActor(me), app.id, {
        name: form.text('name', 200) || app.name,
        description: form.text('description', 10_000),
        allowedIps: ips,
        customFields: form.prefixed('cf_'),
      });
      return face.page(req, reply, 'app', await appView(face, updated, app.serviceId, { notice: 'Saved.' }));
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      return face.page(req, reply, 'app', await appView(face, app, app.serviceId, { problems }), 400);
    }
  });

  scope.post('/apps/:id/keys', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const secret = await addApplicationKey(cd, developerActor(me), app.id);
    await setFlash(flashDeps, req, reply, `/apps/${app.id}`, me.session.tokenHash, {
      secret: secret.value,
    });
    throw new Redirect(`/apps/${app.id}`);
  });

  scope.post('/apps/:id/keys/:keyId/revoke', async (req) => {
    const me = await face.requireDeveloper(req);
    const { id, keyId } = req.params as { id: string; keyId: string };
    const app = await ownApplication(face, me, id);
    if (app.credentials.filter((c) => c.state === 'active' && c.id !== keyId).length === 0) {
      throw new TrellisError('invalid_state', 'Add a new key before revoking the last one.');
    }
    await revokeApplicationKey(cd, developerActor(me), app.id, keyId);
    throw new Redirect(`/apps/${app.id}`);
  });

  scope.post('/apps/:id/plan', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const planId = formOf(req).text('planId', 64);
    // requestApplicationPlan refuses hidden plans and plans of other APIs.
    const updated = await requestApplicationPlan(cd, developerActor(me), app.id, planId);
    const notice =
      updated.planId === planId
        ? 'Your plan was changed.'
        : 'Your request was sent; the provider will review it.';
    return face.page(req, reply, 'app', await appView(face, updated, app.serviceId, { notice }));
  });

  scope.get('/apps/:id/usage', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const [metrics, plan, service] = await Promise.all([
      listMetrics(db, app.serviceId),
      getPlan(db, app.planId),
      getService(db, app.serviceId),
    ]);
    const now = cd.clock.now();
    const hourBuckets = bucketsBetween(now - day + hour, now + 1, 'hour');
    const dayBuckets = bucketsBetween(now - 29 * day, now + 1, 'day');
    const [hourly, daily] = await Promise.all([
      queryUsage(db, {
        applicationId: app.id,
        granularity: 'hour',
        from: new Date(now - day + hour),
        to: new Date(now + 1),
      }),
      queryUsage(db, {
        applicationId: app.id,
        granularity: 'day',
        from: new Date(now - 29 * day),
        to: new Date(now + 1),
      }),
    ]);
    // Tokens issued are drawn beside the calls of the `hits` chart (every call), for OAuth clients.
    const oauth = service.authMode === 'oauth2';
    const [tokensHourly, tokensDaily] = oauth
      ? await Promise.all([
          tokensOn(db, app.id, hourBuckets, 'hour'),
          tokensOn(db, app.id, dayBuckets, 'day'),
        ])
      : [undefined, undefined];
    const sum = (xs: number[] | undefined) => (xs ?? []).reduce((a, b) => a + b, 0);
    const quotas = await remainingQuotas(face, app.id, plan, metrics, now);
    const charts = metrics.map((m) => {
      const limitOf = (period: string) =>
        plan.limits.find((l) => l.metricId === m.id && l.period === period && l.scope === 'application')
          ?.value ?? null;
      const h = hourly.find((s) => s.metricId === m.id);
      const d = daily.find((s) => s.metricId === m.id);
      const withTokens = oauth && m.systemName === 'hits';
      const hourlyChart: ChartData = {
        unit: 'hour',
        labels: hourBuckets,
        values: valuesOn(hourBuckets, h?.points),
        limit: limitOf('hour'),
        ...(withTokens && tokensHourly && { tokens: tokensHourly }),
      };
      const dailyChart: ChartData = {
        unit: 'day',
        labels: dayBuckets,
        values: valuesOn(dayBuckets, d?.points),
        limit: limitOf('day'),
        ...(withTokens && tokensDaily && { tokens: tokensDaily }),
      };
      return {
        metric: m,
        hourly: hourlyChart,
        daily: dailyChart,
        totalDay: h?.total ?? 0,
        totalMonth: d?.total ?? 0,
        withTokens,
      };
    });
    // findings with their advice, health, calls refused with 429 and quota levels reached (issue 10)
    const insights = await partnerInsights(db, app.id, app.serviceId, now);
    return face.page(req, reply, 'usage', {
      title: `Usage of ${app.name}`,
      quotas,
      insights,
      app,
      plan,
      service,
      charts,
      tokens: oauth ? { day: sum(tokensHourly), month: sum(tokensDaily) } : null,
    });
  });
}

/**
 * Every limit of the plan on the application, with what is used in its current window and what remains (issue
 * 13): the windows are the gateway's (calendar periods in UTC), the counts the usage sums as last flushed.
 */
async function remainingQuotas(
  face: PortalFace,
  applicationId: string,
  plan: Awaited<ReturnType<typeof getPlan>>,
  metrics: Awaited<ReturnType<typeof listMetrics>>,
  now: number,
) {
  const limits = plan.limits.filter((l) => l.scope === 'application' && isPeriod(l.period));
  return Promise.all(
    limits.map(async (l) => {
      const period = l.period as Period;
      const window = windowOf(period, now);
      const granularity = period === 'minute' ? 'minute' : period === 'hour' ? 'hour' : 'day';
      const series = await queryUsage(face.db, {
        applicationId,
        metricId: l.metricId,
        granularity,
        from: new Date(window.start),
        to: new Date(now + 1),
      });
      const used = series.reduce((s, x) => s + x.total, 0);
      const metric = metrics.find((m) => m.id === l.metricId);
      return {
        metric: metric?.friendlyName ?? l.metricId,
        systemName: metric?.systemName ?? l.metricId,
        period,
        limit: l.value,
        used,
        remaining: Math.max(0, l.value - used),
        resetsAt: Number.isFinite(window.end) ? new Date(window.end).toISOString() : null,
      };
    }),
  );
}

/** What the application page shows; `secret` is a key value shown this once. */
async function appView(
  face: PortalFace,
  app: Awaited<ReturnType<typeof ownApplication>>,
  serviceId: string,
  extra: { secret?: string; notice?: string; problems?: { field: string; message: string }[] },
) {
  const [service, plan, fields, certificationPlan] = await Promise.all([
    getService(face.db, serviceId),
    getPlan(face.db, app.planId),
    listCustomFields(face.db, 'application'),
    findCertificationPlan(face.db, serviceId),
  ]);
  const plans = (await listPlans(face.db, { serviceId })).filter((p) => p.state === 'published');
  const requested = app.requestedPlanId
    ? await getPlan(face.db, app.requestedPlanId).catch(() => undefined)
    : undefined;
  const tokenUrl = `${face.deps.config.publicUrl.replace(/\/+$/, '')}/oauth/token`;
  const snippets = buildSnippets({
    service,
    gatewayUrl: face.deps.config.gatewayPublicUrl,
    tokenUrl,
    path: firstGetPath(await getServiceOpenapi(face.db, serviceId)),
    appId: app.appId,
    ...(extra.secret && { secret: extra.secret }),
  });
  return {
    snippets,
    title: app.name,
    app,
    service,
    plan,
    plans,
    requested,
    fields,
    gatewayUrl: face.deps.config.gatewayPublicUrl,
    tokenUrl,
    // issue 11: the Certification link only where there is something to certify against
    certifies: app.environment === 'sandbox' && certificationPlan !== null,
    secret: extra.secret ?? '',
    notice: extra.notice ?? '',
    problems: extra.problems ?? [],
  };
}
