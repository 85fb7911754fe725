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
import { getPlan, getService, listMetrics, listPlans, listServices } from '../catalog/index.js';
import { TrellisError, invalid } from '../kernel/index.js';
import { queryUsage } from '../usage/index.js';
import { type ChartData, bucketsBetween, tokensOn, valuesOn } from './usage-charts.js';
import { type PortalFace, developerActor, ownApplication } from './portal-face.js';
import { Redirect, checked, formOf, problemsOf } from './web-pages.js';

const hour = 3600_000;
const day = 24 * hour;

export function applicationRoutes(scope: FastifyInstance, face: PortalFace): void {
  const { db, cd } = face;

  scope.get('/apps', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const apps = (await listApplications(db, { accountId: me.account.id }, { limit: 200 })).data;
    const services = Object.fromEntries((await listServices(db, { limit: 200 })).data.map((s) => [s.id, s]));
    return face.page(req, reply, 'apps', { title: 'Your applications', apps, services });
  });

  async function newAppForm(serviceId: string) {
    const services = (await listServices(db, { limit: 200 })).data;
    const service = services.find((s) => s.id === serviceId) ?? services[0];
    const plans = service
      ? (await listPlans(db, { serviceId: service.id })).filter((p) => p.state === 'published')
      : [];
    const fields = await listCustomFields(db, 'application');
    return { services, service, plans, fields };
  }

  scope.get('/apps/new', async (req, reply) => {
    await face.requireDeveloper(req);
    const q = req.query as Record<string, string | undefined>;
    return face.page(req, reply, 'app-new', {
      title: 'New application',
      ...(await newAppForm(q.service ?? '')),
      values: {},
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
      if (!plan || plan.serviceId !== serviceId || plan.state !== 'published') {
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
      const service = await getService(db, serviceId);
      return face.page(
        req,
        reply,
        'app',
        await appView(face, created, service.id, { secret: created.secret.value }),
        201,
      );
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
    return face.page(req, reply, 'app', await appView(face, app, app.serviceId, {}));
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
    const updated = await ownApplication(face, me, app.id);
    return face.page(
      req,
      reply,
      'app',
      await appView(face, updated, app.serviceId, { secret: secret.value }),
      201,
    );
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
    return face.page(req, reply, 'usage', {
      title: `Usage of ${app.name}`,
      app,
      plan,
      service,
      charts,
      tokens: oauth ? { day: sum(tokensHourly), month: sum(tokensDaily) } : null,
    });
  });
}

/** What the application page shows; `secret` is a key value shown this once. */
async function appView(
  face: PortalFace,
  app: Awaited<ReturnType<typeof ownApplication>>,
  serviceId: string,
  extra: { secret?: string; notice?: string; problems?: { field: string; message: string }[] },
) {
  const [service, plan, fields] = await Promise.all([
    getService(face.db, serviceId),
    getPlan(face.db, app.planId),
    listCustomFields(face.db, 'application'),
  ]);
  const plans = (await listPlans(face.db, { serviceId })).filter((p) => p.state === 'published');
  const requested = app.requestedPlanId
    ? await getPlan(face.db, app.requestedPlanId).catch(() => undefined)
    : undefined;
  return {
    title: app.name,
    app,
    service,
    plan,
    plans,
    requested,
    fields,
    gatewayUrl: face.deps.config.gatewayPublicUrl,
    tokenUrl: `${face.deps.config.publicUrl.replace(/\/+$/, '')}/oauth/token`,
    secret: extra.secret ?? '',
    notice: extra.notice ?? '',
    problems: extra.problems ?? [],
  };
}
