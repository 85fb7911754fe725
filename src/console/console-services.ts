/**
 * Services: settings, metrics and methods, mapping rules, the OpenAPI upload (which creates methods and rules),
 * plans, and a plan's limits in a grid of every metric × period.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  EndUserLimitSet,
  MappingRuleCreate,
  MetricCreate,
  PlanCreate,
  PlanUpdate,
  ServiceCreate,
  ServiceUpdate,
  createMappingRule,
  createMetric,
  createPlan,
  createService,
  deleteMappingRule,
  deleteMetric,
  deletePlan,
  deletePlanLimit,
  deleteEndUserLimit,
  deleteService,
  getPlan,
  limitWarnings,
  getService,
  importOpenapi,
  publishOpenapi,
  listEndUserLimits,
  listMappingRules,
  listMetrics,
  listPlans,
  listServices,
  makeDefaultPlan,
  periods,
  setEndUserLimit,
  setMetricEnabled,
  setPlanLimit,
  updatePlan,
  updateService,
} from '../catalog/index.js';
import { type FieldProblem, TrellisError, invalid, notFound, readClientYaml } from '../kernel/index.js';
import {
  createSealer,
  generateLoginSecret,
  getServiceOAuthSettings,
  updateServiceOAuthSettings,
} from '../oauth/index.js';
import { Redirect, checked, formOf, problemsOf, setFlash, takeFlash } from '../portal/index.js';
import { type ConsoleFace, adminActor, cursorOf, nextPageUrl, refusalOf } from './console-face.js';

/** The rows of the limits grid: limits per application, and per end user of an application. */
const limitScopes = [
  { scope: 'application', field: 'limit', label: 'per application' },
  { scope: 'end_user', field: 'eulimit', label: 'per end user' },
] as const;

/** Optional text fields: an empty input means "leave as it is". */
function present(fields: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== ''));
}

/** A rule the service has already (same verb, pattern and metric), as a problem of the rules form: 409. */
function sameRuleProblems(err: unknown): FieldProblem[] | undefined {
  return err instanceof TrellisError && err.code === 'mapping_rule_exists'
    ? [{ field: 'pattern', message: err.message }]
    : undefined;
}

/** The periods the limits grid shows first. */
const commonPeriods: ReadonlySet<string> = new Set(['minute', 'hour', 'day', 'month']);

export function serviceRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  const { db, cd } = face;
  const sealer = createSealer(face.deps.config.oauthKeySecret);
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;
  const flashDeps = { db, clock: cd.clock, publicUrl: face.deps.config.publicUrl };
  /** POST → redirect → GET: the notice (and a secret shown once) go to the service page, at the form's place. */
  async function backToService(
    req: FastifyRequest,
    reply: FastifyReply,
    serviceId: string,
    formName: string,
    flash: { notice?: string; secret?: string },
  ): Promise<never> {
    const admin = await face.requireAdmin(req);
    await setFlash(flashDeps, req, reply, `/admin/services/${serviceId}`, admin.session.tokenHash, {
      ...flash,
      place: formName,
    });
    throw new Redirect(`/admin/services/${serviceId}#${formName}`);
  }

  async function serviceView(
    serviceId: string,
    extra: {
      problems?: FieldProblem[];
      notice?: string;
      form?: string;
      refusal?: string;
      loginSecret?: string;
    } = {},
  ) {
    const service = await getService(db, serviceId);
    const [metrics, rules, plans, oauth, endUserLimits] = await Promise.all([
      listMetrics(db, serviceId),
      listMappingRules(db, serviceId),
      listPlans(db, { serviceId }),
      service.authMode === 'oauth2' ? getServiceOAuthSettings(db, serviceId) : undefined,
      listEndUserLimits(db, serviceId),
    ]);
    return {
      title: service.name,
      service,
      metrics,
      rules,
      plans,
      endUserLimits,
      periods,
      metricName: Object.fromEntries(metrics.map((m) => [m.id, m.systemName])),
      problems: extra.problems ?? [],
      notice: extra.notice ?? '',
      refusal: extra.refusal ?? '',
      form: extra.form ?? '',
      oauth,
      loginSecret: extra.loginSecret ?? '',
      issuer: `${face.deps.config.publicUrl.replace(/\/+$/, '')}/oauth`,
    };
  }

  /** Runs a change of a service page; a validation problem re-renders the page with it. */
  async function onService(
    req: FastifyRequest,
    reply: FastifyReply,
    serviceId: string,
    formName: string,
    change: () => Promise<string | undefined>,
  ) {
    try {
      const notice = await change();
      return await backToService(req, reply, serviceId, formName, notice === undefined ? {} : { notice });
    } catch (err) {
      const problems = problemsOf(err) ?? sameRuleProblems(err);
      if (!problems || !(err instanceof TrellisError)) throw err;
      return face.page(
        req,
        reply,
        'service',
        await serviceView(serviceId, { problems, form: formName }),
        err.status,
      );
    }
  }

  scope.get('/services', async (req, reply) => {
    await face.requireAdmin(req);
    const page = await listServices(db, { limit: face.pageSize, cursor: cursorOf(req.query) });
    return face.page(req, reply, 'services', {
      title: 'Services',
      services: page.data,
      next: nextPageUrl('/admin/services', {}, page.nextCursor),
      problems: [],
      values: {},
    });
  });

  scope.post('/services', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    try {
      const input = checked(
        ServiceCreate,
        present({
          name: form.text('name', 200),
          systemName: form.text('systemName', 100),
          upstreamProduction: form.text('upstreamProduction', 2000),
          description: form.text('description'),
        }),
      );
      // a new service is a draft: the portal shows it once the provider publishes it (issue 13)
      const service = await createService(cd, adminActor(admin), { ...input, portalState: 'draft' });
      throw new Redirect(`/admin/services/${service.id}`);
    } catch (err) {
      const problems =
        problemsOf(err) ??
        (err instanceof TrellisError && err.code === 'conflict'
          ? [{ field: 'systemName', message: err.message }]
          : undefined);
      if (!problems) throw err;
      const services = (await listServices(db, { limit: face.pageSize })).data;
      return face.page(
        req,
        reply,
        'services',
        { title: 'Services', services, next: '', problems, values: form.values() },
        400,
      );
    }
  });

  scope.get('/services/:id', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const path = `/admin/services/${id(req)}`;
    const flash = await takeFlash(flashDeps, req, reply, path, admin.session.tokenHash);
    return face.page(
      req,
      reply,
      'service',
      await serviceView(id(req), {
        ...(flash.notice && { notice: flash.notice }),
        ...(flash.secret && { loginSecret: flash.secret }),
        ...(flash.place && { form: flash.place }),
      }),
    );
  });

  /** Deletes a service; the domain refuses while it has applications, and the page says so. */
  scope.post('/services/:id/delete', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    try {
      await deleteService(cd, adminActor(admin), id(req));
    } catch (err) {
      const refusal = refusalOf(err);
      if (refusal === undefined) throw err;
      return face.page(req, reply, 'service', await serviceView(id(req), { refusal }), 409);
    }
    throw new Redirect('/admin/services');
  });

  scope.post('/services/:id', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    return onService(req, reply, id(req), 'settings', async () => {
      const fields = present({
        name: form.text('name', 200),
        upstreamProduction: form.text('upstreamProduction', 2000),
        upstreamSandbox: form.text('upstreamSandbox', 2000),
        authMode: form.text('authMode', 20),
        credentialsLocation: form.text('credentialsLocation', 10),
        userKeyName: form.text('userKeyName', 100),
        appIdName: form.text('appIdName', 100),
        appKeyName: form.text('appKeyName', 100),
        gatewayPathPrefix: form.text('gatewayPathPrefix', 255),
        portalState: form.text('portalState', 10),
      });
      // the "Publish in the portal" button posts its field alone: fields not sent are left as they are
      const input = checked(ServiceUpdate, {
        ...fields,
        ...(form.has('description') && { description: form.text('description') }),
        ...(form.has('gatewayHost') && { gatewayHost: form.text('gatewayHost', 255) }),
        // An empty secret token field keeps the current one; "none" removes it.
        ...(form.text('secretToken', 500) === 'none'
          ? { secretToken: null }
          : form.text('secretToken', 500)
            ? { secretToken: form.text('secretToken', 500) }
            : {}),
      });
      await updateService(cd, adminActor(admin), id(req), input);
      if (input.portalState !== undefined && Object.keys(input).length === 1) {
        return input.portalState === 'published'
          ? 'Published: the portal shows the service while it has a published plan.'
          : 'Back to draft: the portal no longer shows the service.';
      }
      return 'Settings saved.';
    });
  });

  // End-user limits of the whole service (every plan's end users, unless a plan sets its own), and where the end
  // user is named.

  scope.post('/services/:id/end-user-limits', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    return onService(req, reply, id(req), 'end-users', async () => {
      const source = form.text('endUserKeySource', 10) === 'claim' ? 'claim' : 'header';
      await updateService(
        cd,
        adminActor(admin),
        id(req),
        checked(ServiceUpdate, {
          endUserKeySource: source,
          endUserKeyName: form.text('endUserKeyName', 100),
        }),
      );
      const metricId = form.text('metricId', 64);
      const value = form.text('value', 20);
      if (metricId && value !== '') {
        const input = checked(EndUserLimitSet, {
          metricId,
          period: form.text('period', 10),
          value: Number(value),
        });
        await setEndUserLimit(cd, adminActor(admin), id(req), input);
      }
      return 'End-user limits saved.';
    });
  });

  scope.post('/services/:id/end-user-limits/:limitId/delete', async (req) => {
    const admin = await face.requireAdmin(req);
    const { limitId } = req.params as { limitId: string };
    await deleteEndUserLimit(cd, adminActor(admin), id(req), limitId);
    throw new Redirect(`/admin/services/${id(req)}#end-users`);
  });

  // OAuth settings of an `oauth2` service: token lifetimes, the provider's login page, the login secret.

  scope.post('/services/:id/oauth', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    return onService(req, reply, id(req), 'oauth', async () => {
      const seconds = (name: string) => {
        const raw = form.text(name, 12);
        return /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
      };
      await updateServiceOAuthSettings(cd, adminActor(admin), id(req), {
        loginUrl: form.text('loginUrl', 2000),
        accessTokenTtl: seconds('accessTokenTtl'),
        refreshTokenTtl: seconds('refreshTokenTtl'),
      });
      return 'OAuth settings saved.';
    });
  });

  /** A new login-assertion secret, shown on the page this once (it is stored sealed). */
  scope.post('/services/:id/oauth/login-secret', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const { loginSecret } = await generateLoginSecret(cd, adminActor(admin), sealer, id(req));
    return backToService(req, reply, id(req), 'oauth', {
      secret: loginSecret,
      notice: 'New login secret generated.',
    });
  });

  scope.post('/services/:id/metrics', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    return onService(req, reply, id(req), 'metrics', async () => {
      const chosen = form.text('kind', 12);
      const kind = chosen === 'metric' || chosen === 'metric-hits' ? 'metric' : 'method';
      const input = checked(
        MetricCreate,
        present({
          systemName: form.text('systemName', 100),
          friendlyName: form.text('friendlyName', 200),
          description: form.text('description'),
        }),
      );
      if (chosen === 'metric-hits') input.parent = 'hits';
      await createMetric(cd, adminActor(admin), id(req), kind, input);
      return undefined;
    });
  });

  scope.post('/services/:id/metrics/:metricId/delete', async (req) => {
    const admin = await face.requireAdmin(req);
    const { metricId } = req.params as { metricId: string };
    await deleteMetric(cd, adminActor(admin), id(req), metricId);
    throw new Redirect(`/admin/services/${id(req)}#metrics`);
  });

  scope.post('/services/:id/rules', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    return onService(req, reply, id(req), 'rules', async () => {
      const delta = Number(form.text('delta', 10) || '1');
      const input = checked(MappingRuleCreate, {
        httpMethod: form.text('httpMethod', 10),
        pattern: form.text('pattern', 1000),
        metricId: form.text('metricId', 64),
        delta: Number.isInteger(delta) ? delta : Number.NaN,
        last: form.has('last'),
      });
      await createMappingRule(cd, adminActor(admin), id(req), input);
      return undefined;
    });
  });

  scope.post('/services/:id/rules/:ruleId/delete', async (req) => {
    const admin = await face.requireAdmin(req);
    const { ruleId } = req.params as { ruleId: string };
    await deleteMappingRule(cd, adminActor(admin), id(req), ruleId);
    throw new Redirect(`/admin/services/${id(req)}#rules`);
  });

  scope.post('/services/:id/openapi', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    const text = form.raw('document', 5 * 1024 * 1024);
    const intent = form.text('intent', 10);
    return onService(req, reply, id(req), 'openapi', async () => {
      // YAML is a superset of JSON: one parser reads both forms of an OpenAPI document (depth bounded first).
      const document = readClientYaml(text, 'document');
      if (typeof document !== 'object' || document === null || Array.isArray(document)) {
        throw invalid([{ field: 'document', message: 'paste or choose an OpenAPI document' }]);
      }
      const doc = document as Record<string, unknown>;
      if (intent !== 'import') {
        const published = await publishOpenapi(cd, adminActor(admin), id(req), doc);
        return `Published the docs (${published.version}, ${published.operations} operations); mapping rules unchanged.`;
      }
      const result = await importOpenapi(cd, adminActor(admin), id(req), doc);
      const skipped = result.skipped.length
        ? ` Skipped ${result.skipped.length} already counted by a rule: ${result.skipped.map((s) => s.operation).join(', ')}.`
        : '';
      return `Imported ${result.operations} operations: ${result.methodsCreated.length} new methods, ${result.rulesCreated} new mapping rules.${skipped}`;
    });
  });

  scope.post('/services/:id/plans', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    return onService(req, reply, id(req), 'plans', async () => {
      const input = checked(PlanCreate, {
        ...present({ name: form.text('name', 200), systemName: form.text('systemName', 100) }),
        state: form.text('state', 10) === 'hidden' ? 'hidden' : 'published',
        approvalRequired: form.has('approvalRequired'),
      });
      const plan = await createPlan(cd, adminActor(admin), id(req), input);
      throw new Redirect(`/admin/plans/${plan.id}`);
    });
  });

  // plans

  async function planView(
    planId: string,
    extra: { problems?: FieldProblem[]; notice?: string; refusal?: string; allPeriods?: boolean } = {},
  ) {
    const plan = await getPlan(db, planId).catch(() => {
      throw notFound('plan', planId);
    });
    const [service, metrics, warnings] = await Promise.all([
      getService(db, plan.serviceId),
      listMetrics(db, plan.serviceId),
      limitWarnings(db, plan),
    ]);
    // Keyed by `<scope>:<metric>:<period>`: a row per metric for the application, another for each end user.
    const grid = Object.fromEntries(
      plan.limits.map((l) => [`${l.scope}:${l.metricId}:${l.period}`, l.value]),
    );
    // The grid fits a laptop (issue 13): the common periods, and any other that has a limit; the rest on request.
    const shown = periods.filter(
      (p) => extra.allPeriods || commonPeriods.has(p) || plan.limits.some((l) => l.period === p),
    );
    return {
      title: plan.name,
      plan,
      service,
      metrics,
      periods: shown,
      hiddenPeriods: periods.filter((p) => !shown.includes(p)),
      allPeriods: extra.allPeriods === true,
      grid,
      limitScopes,
      warnings,
      problems: extra.problems ?? [],
      notice: extra.notice ?? '',
      refusal: extra.refusal ?? '',
    };
  }

  scope.get('/plans/:id', async (req, reply) => {
    await face.requireAdmin(req);
    const allPeriods = (req.query as Record<string, string | undefined>).periods === 'all';
    return face.page(req, reply, 'plan', await planView(id(req), { allPeriods }));
  });

  scope.post('/plans/:id', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    try {
      const input = checked(PlanUpdate, {
        ...present({ name: form.text('name', 200) }),
        description: form.text('description'),
        state: form.text('state', 10) === 'hidden' ? 'hidden' : 'published',
        approvalRequired: form.has('approvalRequired'),
        endUserKeySource: form.text('endUserKeySource', 10),
        endUserKeyName: form.text('endUserKeyName', 100),
      });
      await updatePlan(cd, adminActor(admin), id(req), input);
      return face.page(req, reply, 'plan', await planView(id(req), { notice: 'Plan saved.' }));
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      return face.page(req, reply, 'plan', await planView(id(req), { problems }), 400);
    }
  });

  /** Deletes a plan; the domain refuses while applications are on it, and the page says so. */
  scope.post('/plans/:id/delete', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const plan = await getPlan(db, id(req));
    try {
      await deletePlan(cd, adminActor(admin), plan.id);
    } catch (err) {
      const refusal = refusalOf(err);
      if (refusal === undefined) throw err;
      return face.page(req, reply, 'plan', await planView(plan.id, { refusal }), 409);
    }
    throw new Redirect(`/admin/services/${plan.serviceId}#plans`);
  });

  scope.post('/plans/:id/default', async (req) => {
    const admin = await face.requireAdmin(req);
    await makeDefaultPlan(cd, adminActor(admin), id(req));
    throw new Redirect(`/admin/plans/${id(req)}`);
  });

  /**
   * Saves the limits grid: a number sets the limit of that metric, period and scope (per application, or per end
   * user of an application), an empty cell removes it; the checkboxes enable or disable each metric and method in
   * the plan. Every cell is checked before any change.
   */
  scope.post('/plans/:id/limits', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const planId = id(req);
    const { plan, metrics } = await planView(planId);
    const form = formOf(req);
    const problems: FieldProblem[] = [];
    const wanted = new Map<string, number | null>();
    // the periods the page showed (its hidden field); without it, every period
    const gridPeriods = new Set<string>(form.has('periods') ? form.text('periods', 100).split(',') : periods);
    for (const limitScope of limitScopes) {
      for (const m of metrics) {
        for (const period of periods) {
          // a period the grid did not show is left as it is
          if (!gridPeriods.has(period)) continue;
          const raw = form.text(`${limitScope.field}_${m.id}_${period}`, 20);
          if (raw !== '' && !/^\d{1,15}$/.test(raw)) {
            problems.push({
              field: `${m.systemName}.${period}${limitScope.scope === 'end_user' ? ' (per end user)' : ''}`,
              message: 'a whole number, or empty for no limit',
            });
          }
          wanted.set(`${limitScope.scope}:${m.id}:${period}`, raw === '' ? null : Number(raw));
        }
      }
    }
    if (problems.length > 0) return face.page(req, reply, 'plan', await planView(planId, { problems }), 400);
    const actor = adminActor(admin);
    for (const { scope: limitScope } of limitScopes) {
      for (const m of metrics) {
        for (const period of periods) {
          if (!wanted.has(`${limitScope}:${m.id}:${period}`)) continue;
          const value = wanted.get(`${limitScope}:${m.id}:${period}`) ?? null;
          const existing = plan.limits.find(
            (l) => l.metricId === m.id && l.period === period && l.scope === limitScope,
          );
          if (value === null && existing) await deletePlanLimit(cd, actor, planId, existing.id);
          if (value !== null && existing?.value !== value) {
            await setPlanLimit(cd, actor, planId, { metricId: m.id, period, value, scope: limitScope });
          }
        }
      }
    }
    for (const m of metrics) {
      const enabled = form.list('enabled').includes(m.id);
      if (enabled === plan.disabledMetricIds.includes(m.id))
        await setMetricEnabled(cd, actor, planId, m.id, enabled);
    }
    return face.page(req, reply, 'plan', await planView(planId, { notice: 'Limits saved.' }));
  });
}
