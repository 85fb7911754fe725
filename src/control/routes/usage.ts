/** Management API: usage per application, account, service and metric, and traffic, for charts and reports. */
import { Type as T } from '@sinclair/typebox';
import { getAccount, getApplication, listApplications } from '../../access/index.js';
import { getMetric, getService, listMetrics } from '../../catalog/index.js';
import { invalid } from '../../kernel/index.js';
import { queryTraffic, queryUsage } from '../../usage/index.js';
import { type ControlApp, type ControlDeps, Id, errorResponses } from '../context.js';

const tags = ['Usage'];
const stepMs = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
/** A chart needs no more points than this; a larger range is a mistake or a report job, not a request. */
const maxPoints = 5000;
/** The applications one account-usage read covers. */
const maxAccountApplications = 200;

const Range = T.Object({
  granularity: T.Union([T.Literal('minute'), T.Literal('hour'), T.Literal('day')], { default: 'hour' }),
  from: T.String({ format: 'date-time', description: 'start, inclusive (ISO 8601)' }),
  to: T.String({ format: 'date-time', description: 'end, exclusive (ISO 8601)' }),
  serviceId: T.Optional(T.String({ maxLength: 64 })),
  applicationId: T.Optional(T.String({ maxLength: 64 })),
});

function checkRange(q: { granularity: keyof typeof stepMs; from: string; to: string }): void {
  const span = Date.parse(q.to) - Date.parse(q.from);
  if (!(span > 0)) throw invalid([{ field: 'to', message: 'must be after from' }]);
  if (span / stepMs[q.granularity] > maxPoints) {
    throw invalid([
      {
        field: 'granularity',
        message: `the range holds more than ${maxPoints} ${q.granularity}s; use a coarser granularity`,
      },
    ]);
  }
}

export function usageRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;

  app.get('/usage', {
    schema: {
      tags,
      summary: 'Usage per metric and method over a range (one series per metric, zero-filled)',
      querystring: T.Composite([
        Range,
        T.Object({
          accountId: T.Optional(T.String({ maxLength: 64 })),
          metricId: T.Optional(T.String({ maxLength: 64 })),
        }),
      ]),
      response: {
        200: T.Object({
          data: T.Array(
            T.Object({
              metricId: T.String(),
              total: T.Integer(),
              points: T.Array(T.Object({ at: T.String(), value: T.Integer() })),
            }),
          ),
        }),
        ...errorResponses,
      },
    },
    handler: async (req) => {
      const q = req.query;
      checkRange(q);
      if (q.applicationId) await getApplication(db, q.applicationId);
      if (q.accountId) await getAccount(db, q.accountId);
      if (q.serviceId) await getService(db, q.serviceId);
      if (q.metricId && q.serviceId) await getMetric(db, q.serviceId, q.metricId);
      return { data: await queryUsage(db, q) };
    },
  });

  app.get('/accounts/:id/usage', {
    schema: {
      tags,
      summary: "An account's usage per application and metric over a range (the numbers the portal shows)",
      description:
        'For a provider showing usage statistics in its own product: every application of the account (up to ' +
        `${maxAccountApplications}), every metric and method of its service (total 0 when unused).`,
      params: Id('account id'),
      querystring: T.Object({
        granularity: T.Union([T.Literal('hour'), T.Literal('day')], { default: 'day' }),
        from: Range.properties.from,
        to: Range.properties.to,
      }),
      response: {
        200: T.Object({
          accountId: T.String(),
          applications: T.Array(
            T.Object({
              applicationId: T.String(),
              name: T.String(),
              serviceId: T.String(),
              planId: T.String(),
              metrics: T.Array(
                T.Object({
                  metricId: T.String(),
                  systemName: T.String(),
                  kind: T.String(),
                  total: T.Integer(),
                  points: T.Array(T.Object({ at: T.String(), value: T.Integer() })),
                }),
              ),
            }),
          ),
        }),
        ...errorResponses,
      },
    },
    handler: async (req) => {
      const q = req.query;
      checkRange(q);
      await getAccount(db, req.params.id);
      const apps = await listApplications(
        db,
        { accountId: req.params.id },
        { limit: maxAccountApplications },
      );
      const metricsOf = new Map<string, Awaited<ReturnType<typeof listMetrics>>>();
      const applications = [];
      for (const app of apps.data) {
        let metrics = metricsOf.get(app.serviceId);
        if (!metrics) {
          metrics = await listMetrics(db, app.serviceId);
          metricsOf.set(app.serviceId, metrics);
        }
        const series = await queryUsage(db, {
          applicationId: app.id,
          granularity: q.granularity,
          from: q.from,
          to: q.to,
        });
        applications.push({
          applicationId: app.id,
          name: app.name,
          serviceId: app.serviceId,
          planId: app.planId,
          metrics: metrics.map((m) => {
            const s = series.find((x) => x.metricId === m.id);
            const points = s?.points ?? (series[0]?.points ?? []).map((p) => ({ at: p.at, value: 0 }));
            return { metricId: m.id, systemName: m.systemName, kind: m.kind, total: s?.total ?? 0, points };
          }),
        });
      }
      return { accountId: req.params.id, applications };
    },
  });

  app.get('/traffic', {
    schema: {
      tags,
      summary: 'Calls, client and server errors, latency and bytes per bucket (refused calls included)',
      querystring: Range,
      response: {
        200: T.Object({
          data: T.Array(
            T.Object({
              at: T.String(),
              calls: T.Integer(),
              clientErrors: T.Integer(),
              serverErrors: T.Integer(),
              latencyMsAvg: T.Number(),
              latencyMsMax: T.Number(),
              bytesIn: T.Integer(),
              bytesOut: T.Integer(),
            }),
          ),
        }),
        ...errorResponses,
      },
    },
    handler: async (req) => {
      const q = req.query;
      checkRange(q);
      if (q.applicationId) await getApplication(db, q.applicationId);
      if (q.serviceId) await getService(db, q.serviceId);
      return { data: await queryTraffic(db, q) };
    },
  });
}
