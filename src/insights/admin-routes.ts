/** Management API routes of insights: findings (list, read, acknowledge, resolve), health, settings, quota alerts. */
import { Type as T } from '@sinclair/typebox';
import { getApplication } from '../access/index.js';
import { getService } from '../catalog/index.js';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  PageOf,
  Pagination,
  actorOf,
  changeDeps,
  errorResponses,
} from '../control/index.js';
import { invalid } from '../kernel/index.js';
import { applicationHealth } from './application-health.js';
import {
  changeFindingState,
  getFinding,
  listFindings,
  serviceInsightSettings,
  updateInsightSettings,
} from './insights.js';
import { selectQuotaAlerts } from './insights.store.js';
import { insightsMetrics } from './prometheus.js';
import { Finding, FindingKindSchema, FindingStateSchema } from './schemas.js';
import { InsightSettingsPatch, InsightSettingsSchema } from './settings.js';

const tags = ['Insights'];
/** The longest period one health read covers. */
const maxHealthDays = 31;

const HealthNumbers = {
  calls: T.Integer(),
  p50: T.Union([T.Number(), T.Null()], { description: 'ms, within ±9.6 % (histogram buckets)' }),
  p95: T.Union([T.Number(), T.Null()]),
  p99: T.Union([T.Number(), T.Null()]),
  clientErrorRate: T.Number({ description: 'share of 4xx (429 apart): the partner’s doing' }),
  rateLimitedRate: T.Number({ description: 'share of 429 (refused by a limit)' }),
  serverErrorRate: T.Number({ description: 'share of 5xx: the provider’s doing' }),
  byClass: T.Record(T.String(), T.Integer()),
};

const HealthView = T.Object({
  applicationId: T.String(),
  from: T.String(),
  to: T.String(),
  ...HealthNumbers,
  routes: T.Array(T.Object({ route: T.String(), label: T.String(), ...HealthNumbers })),
});

const FindingQuery = T.Composite([
  Pagination,
  T.Object({
    kind: T.Optional(FindingKindSchema),
    state: T.Optional(FindingStateSchema),
  }),
]);

/** Adds the insights routes to the management API. Registered in `adminApiModules` (src/cli/compose.ts). */
export function insightsAdminRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.get('/findings', {
    schema: {
      tags,
      summary: 'List findings (call patterns and health problems), newest first',
      querystring: T.Composite([
        FindingQuery,
        T.Object({
          serviceId: T.Optional(T.String({ maxLength: 64 })),
          applicationId: T.Optional(T.String({ maxLength: 64 })),
          accountId: T.Optional(T.String({ maxLength: 64 })),
        }),
      ]),
      response: { 200: PageOf(Finding), ...errorResponses },
    },
    handler: (req) => listFindings(db, req.query),
  });

  app.get('/applications/:id/findings', {
    schema: {
      tags,
      summary: "An application's findings, newest first",
      params: Id('application id'),
      querystring: FindingQuery,
      response: { 200: PageOf(Finding), ...errorResponses },
    },
    handler: async (req) => {
      await getApplication(db, req.params.id);
      return listFindings(db, { ...req.query, applicationId: req.params.id });
    },
  });

  app.get('/findings/:id', {
    schema: {
      tags,
      summary: 'Get a finding with its evidence and advice',
      params: Id('finding id'),
      response: { 200: Finding, ...errorResponses },
    },
    handler: (req) => getFinding(db, req.params.id),
  });

  app.post('/findings/:id/acknowledge', {
    schema: {
      tags,
      summary: 'Acknowledge a finding (seen; it stays until its pattern stops or it is resolved)',
      params: Id('finding id'),
      response: { 200: Finding, ...errorResponses },
    },
    handler: (req) => changeFindingState(cd, actorOf(req), req.params.id, 'acknowledged'),
  });

  app.post('/findings/:id/resolve', {
    schema: {
      tags,
      summary: 'Resolve a finding by hand (a new one opens if the pattern shows again)',
      params: Id('finding id'),
      response: { 200: Finding, ...errorResponses },
    },
    handler: (req) => changeFindingState(cd, actorOf(req), req.params.id, 'resolved'),
  });

  app.get('/applications/:id/health', {
    schema: {
      tags,
      summary:
        "An application's health over a period: latency percentiles and error rates, overall and per route",
      description: `Percentiles come from log-spaced histogram buckets (within ±9.6 %). The period is at most ${maxHealthDays} days; default the last hour.`,
      params: Id('application id'),
      querystring: T.Object({
        from: T.Optional(
          T.String({ format: 'date-time', description: 'start, inclusive (default: an hour ago)' }),
        ),
        to: T.Optional(T.String({ format: 'date-time', description: 'end, exclusive (default: now)' })),
      }),
      response: { 200: HealthView, ...errorResponses },
    },
    handler: async (req) => {
      const application = await getApplication(db, req.params.id);
      const now = deps.clock.now();
      // by default up to the end of the current minute, whose calls are counted already
      const to = req.query.to ? Date.parse(req.query.to) : now - (now % 60_000) + 60_000;
      const from = req.query.from ? Date.parse(req.query.from) : to - 3_600_000;
      if (!(to > from)) throw invalid([{ field: 'to', message: 'must be after from' }]);
      if (to - from > maxHealthDays * 86_400_000)
        throw invalid([{ field: 'from', message: `the period is at most ${maxHealthDays} days` }]);
      return applicationHealth(db, application.id, application.serviceId, from, to);
    },
  });

  app.get('/services/:id/insight-settings', {
    schema: {
      tags,
      summary: "A service's insight thresholds (defaults where not set)",
      params: Id('service id'),
      response: { 200: InsightSettingsSchema, ...errorResponses },
    },
    handler: async (req) => {
      await getService(db, req.params.id);
      return serviceInsightSettings(db, req.params.id);
    },
  });

  app.patch('/services/:id/insight-settings', {
    schema: {
      tags,
      summary: "Change a service's insight thresholds, or declare create → read pairs (pollPairs)",
      params: Id('service id'),
      body: InsightSettingsPatch,
      response: { 200: InsightSettingsSchema, ...errorResponses },
    },
    handler: async (req) => {
      await getService(db, req.params.id);
      return updateInsightSettings(db, deps.clock, req.params.id, req.body);
    },
  });

  app.get('/insights/metrics', {
    schema: {
      tags,
      summary: 'Insights as Prometheus gauges (text format): open findings and health per service',
      description:
        'Labels are bounded: per service, never per application. Health covers the last 5 minutes. Scrape with the ' +
        'bearer token of a read-only admin token.',
      response: {
        200: T.String({ description: 'Prometheus text exposition format 0.0.4' }),
        ...errorResponses,
      },
    },
    handler: async (_req, reply) => {
      const text = await insightsMetrics(db, deps.clock.now());
      reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8');
      return text;
    },
  });

  app.get('/applications/:id/quota-alerts', {
    schema: {
      tags,
      summary: 'The quota levels (50/80/90/100 % of a limit) announced to an application, newest first',
      params: Id('application id'),
      response: {
        200: T.Object({
          data: T.Array(
            T.Object({
              limitId: T.String(),
              windowStart: T.String(),
              level: T.Integer(),
              used: T.Integer(),
              limit: T.Integer(),
              announcedAt: T.String(),
            }),
          ),
        }),
        ...errorResponses,
      },
    },
    handler: async (req) => {
      await getApplication(db, req.params.id);
      const rows = await selectQuotaAlerts(db, req.params.id);
      return {
        data: rows.map((r) => ({
          limitId: r.limit_id,
          windowStart: r.window_start,
          level: r.level,
          used: r.used,
          limit: r.limit_value,
          announcedAt: r.announced_at,
        })),
      };
    },
  });
}
