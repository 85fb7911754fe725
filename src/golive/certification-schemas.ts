/**
 * Shapes of certification (issue 11) as the management API, `trellis apply` and the event catalogue show them:
 * a service's certification plan, a run of it by a sandbox application, and a run's results (the report card).
 * This module declares shapes only (the event catalogue imports it directly).
 */
import { type Static, Type as T } from '@sinclair/typebox';

export const checkKinds = [
  'retry_after',
  'backoff_5xx',
  'token_reuse',
  'webhook_not_poll',
  'idempotency_key',
  'key_rotation',
  'expired_token',
  'slow_answer',
] as const;
export type CheckKind = (typeof checkKinds)[number];

export const CheckKindSchema = T.Union(
  checkKinds.map((k) => T.Literal(k)),
  {
    description:
      'retry_after: waits at least Retry-After after a 429 · backoff_5xx: backs off after a 500/503 · token_reuse: reuses OAuth tokens (the insights token-churn definition) · webhook_not_poll: no polling after a create when the service has webhook events · idempotency_key: an Idempotency-Key on retried POSTs · key_rotation: keeps working across a key rotation · expired_token: fetches a new token after a 401 for an expired one · slow_answer: after a slow answer, waits for it or retries once after its timeout, never in parallel',
  },
);

const every = (what: string) =>
  T.Integer({
    minimum: 0,
    maximum: 10000,
    default: 0,
    description: `${what} on every Nth call of the run (0 = off)`,
  });

export const CertificationFaults = T.Object(
  {
    rateLimitEvery: every('a 429 with Retry-After'),
    retryAfterSeconds: T.Integer({
      minimum: 1,
      maximum: 60,
      default: 2,
      description: 'the Retry-After of the 429',
    }),
    serverErrorEvery: every('a 500'),
    unavailableEvery: every('a 503'),
    slowEvery: every('a slow answer (slowMs late)'),
    slowMs: T.Integer({ minimum: 0, maximum: 30000, default: 0, description: 'how late a slow answer is' }),
    expiredTokenEvery: every('the 401 the gateway answers for an expired token'),
  },
  { additionalProperties: false },
);
export type CertificationFaults = Static<typeof CertificationFaults>;

export const CertificationCheck = T.Object(
  {
    kind: CheckKindSchema,
    required: T.Boolean({ default: true, description: 'a required check must pass for the run to pass' }),
  },
  { additionalProperties: false },
);
export type CertificationCheck = Static<typeof CertificationCheck>;

export const ManualItem = T.Object(
  {
    key: T.String({
      pattern: '^[a-z0-9][a-z0-9_-]{0,63}$',
      description: 'stable key of the item (evidence refers to it)',
    }),
    title: T.String({ minLength: 1, maxLength: 200 }),
    description: T.String({ maxLength: 2000, default: '' }),
    required: T.Boolean({ default: true }),
  },
  { additionalProperties: false },
);
export type ManualItem = Static<typeof ManualItem>;

export const CertificationPlan = T.Object(
  {
    checks: T.Array(CertificationCheck, { maxItems: checkKinds.length, default: [] }),
    faults: CertificationFaults,
    manualItems: T.Array(ManualItem, { maxItems: 20, default: [] }),
    windowMinutes: T.Integer({
      minimum: 1,
      maximum: 1440,
      default: 30,
      description: 'how long a run lasts at most; it is judged at the end, or earlier once minCalls are seen',
    }),
    minCalls: T.Integer({
      minimum: 0,
      maximum: 100000,
      default: 20,
      description: 'calls of the application a run needs to see before its checks are judged',
    }),
    autoApprove: T.Boolean({
      default: false,
      description: 'a go-live request of an application with a passed run is approved at once',
    }),
  },
  { additionalProperties: false },
);
export type CertificationPlan = Static<typeof CertificationPlan>;

const CheckInput = T.Object(
  { kind: CheckKindSchema, required: T.Optional(CertificationCheck.properties.required) },
  { additionalProperties: false },
);
const ManualItemInput = T.Object(
  {
    key: ManualItem.properties.key,
    title: ManualItem.properties.title,
    description: T.Optional(ManualItem.properties.description),
    required: T.Optional(ManualItem.properties.required),
  },
  { additionalProperties: false },
);

/** The body of `PUT /services/{id}/certification-plan`: every field optional (defaults as shown). */
export const CertificationPlanInput = T.Object(
  {
    checks: T.Optional(T.Array(CheckInput, { maxItems: checkKinds.length })),
    faults: T.Optional(T.Partial(CertificationFaults, { additionalProperties: false })),
    manualItems: T.Optional(T.Array(ManualItemInput, { maxItems: 20 })),
    windowMinutes: T.Optional(CertificationPlan.properties.windowMinutes),
    minCalls: T.Optional(CertificationPlan.properties.minCalls),
    autoApprove: T.Optional(CertificationPlan.properties.autoApprove),
  },
  { additionalProperties: false },
);
export type CertificationPlanInput = Static<typeof CertificationPlanInput>;

export const CertificationPlanView = T.Object({
  serviceId: T.String(),
  plan: CertificationPlan,
  updatedAt: T.String(),
  updatedBy: T.String(),
});
export type CertificationPlanView = Static<typeof CertificationPlanView>;

export const RunState = T.Union(
  [T.Literal('running'), T.Literal('passed'), T.Literal('failed'), T.Literal('cancelled')],
  { description: 'running → passed | failed (judged) | cancelled' },
);
export type RunState = Static<typeof RunState>;

export const TimelineEntry = T.Object({
  at: T.String({ description: 'when the gateway answered the call (ISO 8601)' }),
  method: T.String(),
  path: T.String(),
  status: T.Integer(),
  fault: T.Union([T.String(), T.Null()], { description: 'the fault injected into this call, if any' }),
  note: T.Optional(T.String()),
});
export type TimelineEntry = Static<typeof TimelineEntry>;

export const CheckResult = T.Object({
  kind: T.String({ description: 'a check kind, or `manual:<key>` for a manual item' }),
  required: T.Boolean(),
  passed: T.Union([T.Boolean(), T.Null()], {
    description: 'null: not judged yet (a manual item waiting for review)',
  }),
  evidence: T.Object({
    numbers: T.Record(T.String(), T.Number()),
    timeline: T.Array(TimelineEntry),
  }),
  advice: T.String({ description: 'what to fix (empty when passed)' }),
});
export type CheckResult = Static<typeof CheckResult>;

export const CertificationRun = T.Object({
  id: T.String(),
  applicationId: T.String(),
  serviceId: T.String(),
  accountId: T.String(),
  state: RunState,
  plan: CertificationPlan,
  startedAt: T.String(),
  endsAt: T.String(),
  finishedAt: T.Union([T.String(), T.Null()]),
  results: T.Array(CheckResult),
  startedBy: T.String(),
});
export type CertificationRun = Static<typeof CertificationRun>;
