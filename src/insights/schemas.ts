/**
 * Shapes of insights as the management API shows them (shapes only: the event catalogue imports this module
 * directly, not the context's index).
 */
import { Type as T } from '@sinclair/typebox';

export const FindingKindSchema = T.Union(
  [
    T.Literal('token_churn'),
    T.Literal('poll_after_create'),
    T.Literal('retry_storm'),
    T.Literal('error_rate'),
    T.Literal('latency_rise'),
    T.Literal('dormant'),
  ],
  { description: 'what pattern the finding is about' },
);

export const FindingStateSchema = T.Union([
  T.Literal('open'),
  T.Literal('acknowledged'),
  T.Literal('resolved'),
]);

export const Finding = T.Object(
  {
    id: T.String(),
    serviceId: T.String(),
    applicationId: T.String(),
    accountId: T.String(),
    kind: T.String({
      description: 'token_churn | poll_after_create | retry_storm | error_rate | latency_rise | dormant',
    }),
    subject: T.String({ description: 'what within the kind: a route pair, a status class, or empty' }),
    severity: T.String({ description: 'low | medium | high' }),
    state: T.String({ description: 'open | acknowledged | resolved' }),
    firstSeen: T.String(),
    lastSeen: T.String(),
    resolvedAt: T.Union([T.String(), T.Null()]),
    evidence: T.Object({
      numbers: T.Record(T.String(), T.Union([T.Number(), T.String()])),
      timeline: T.Array(T.Record(T.String(), T.Union([T.Number(), T.String()])), {
        description:
          'per minute: calls, clientErrors, rateLimited, serverErrors, earlyRetries, readsAfterCreate',
      }),
    }),
    advice: T.String({ description: 'what the partner can do, in plain words' }),
  },
  { description: 'A call pattern or health problem of one application' },
);

export const FindingPayload = T.Object({
  finding: Finding,
  findingId: T.String(),
  applicationId: T.String(),
  accountId: T.String(),
  serviceId: T.String(),
});

export const QuotaAlertPayload = T.Object({
  applicationId: T.String(),
  accountId: T.String(),
  serviceId: T.String(),
  limitId: T.String(),
  metricId: T.String(),
  period: T.String(),
  level: T.Integer({ description: '50, 80, 90 or 100 (% of the limit used)' }),
  used: T.Integer(),
  limit: T.Integer(),
  windowStart: T.String(),
  windowEnd: T.Union([T.String(), T.Null()]),
});
