/**
 * The shapes of the catalog: services, metrics and methods, mapping rules, plans and limits. One schema per
 * operation drives request validation, the TypeScript types and the OpenAPI document.
 */
import { type Static, Type as T } from '@sinclair/typebox';

export const SystemName = T.String({
  pattern: '^[a-z0-9][a-z0-9_\\-]{0,99}$',
  description: 'lower-case identifier',
});
const Name = T.String({ minLength: 1, maxLength: 200 });
const HttpUrl = T.String({ pattern: '^https?://[^\\s]+$', maxLength: 2000 });
const HeaderName = T.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$" });
/**
 * A service's secret token travels upstream as a header value: visible ASCII only (no CR, LF, NUL, spaces or
 * other bytes a header cannot carry, which made every call through the service fail with 502), 8…256 long.
 */
export const SECRET_TOKEN_PATTERN = '^[\\x21-\\x7e]{8,256}$';
const SecretToken = T.String({
  minLength: 8,
  maxLength: 256,
  pattern: SECRET_TOKEN_PATTERN,
  description: 'sent upstream as X-Trellis-Secret: 8…256 visible ASCII characters; generated when not given',
});

export const AuthMode = T.Union([T.Literal('user_key'), T.Literal('app_id_app_key'), T.Literal('oauth2')]);
export const CredentialsLocation = T.Union([T.Literal('header'), T.Literal('query')]);
export const LimiterMode = T.Union([T.Literal('strict'), T.Literal('batched')]);
export const FailureMode = T.Union([T.Literal('open'), T.Literal('closed')]);

/** draft: invisible in the portal; published: listed once it has a published plan (issue 13). */
export const PortalState = T.Union([T.Literal('draft'), T.Literal('published')], {
  description: 'draft: the portal does not show the service; published: it does, once a plan is published',
});

export const Service = T.Object({
  id: T.String(),
  name: T.String(),
  systemName: T.String(),
  description: T.String(),
  upstreamProduction: T.String(),
  upstreamSandbox: T.String({
    description:
      "where sandbox applications' calls go; empty: the service has no sandbox (sandbox calls are refused)",
  }),
  authMode: AuthMode,
  credentialsLocation: CredentialsLocation,
  userKeyName: T.String(),
  appIdName: T.String(),
  appKeyName: T.String(),
  secretToken: T.Union([T.String(), T.Null()], { description: 'sent upstream as X-Trellis-Secret' }),
  gatewayHost: T.String({ description: 'route requests with this Host header here (empty for every host)' }),
  gatewayPathPrefix: T.String({
    description: 'route requests under this path prefix here; removed upstream',
  }),
  limiterMode: LimiterMode,
  limiterFailureMode: FailureMode,
  maxBodyBytes: T.Integer(),
  forwardBearerToken: T.Boolean({
    description: 'oauth2: pass the bearer token to the upstream (by default it is stripped)',
  }),
  portalState: PortalState,
  endUserKeySource: T.Union([T.Literal('header'), T.Literal('claim')]),
  endUserKeyName: T.String({
    description:
      "header or token claim naming the end user for the service's end-user limits; empty: the verified " +
      "token's sub. A plan that names its own wins.",
  }),
  hasOpenapi: T.Boolean(),
  createdAt: T.String(),
  updatedAt: T.String(),
});
export type Service = Static<typeof Service>;

/** A service as a read-only admin token sees it: without the secret token (shown to read-write tokens only). */
export const ServiceView = T.Object({
  ...Service.properties,
  secretToken: T.Optional(
    T.Union([T.String(), T.Null()], {
      description: 'sent upstream as X-Trellis-Secret; shown to read-write admin tokens only',
    }),
  ),
});
export type ServiceView = Static<typeof ServiceView>;

const serviceSettings = {
  description: T.String({ maxLength: 10_000 }),
  upstreamProduction: HttpUrl,
  upstreamSandbox: T.Union([HttpUrl, T.Literal('')], {
    description:
      "where sandbox applications' calls go (a real sandbox or a mock the provider runs); empty or absent: no " +
      'sandbox, sandbox calls are refused. Never a copy of the production upstream.',
  }),
  authMode: AuthMode,
  credentialsLocation: CredentialsLocation,
  userKeyName: HeaderName,
  appIdName: HeaderName,
  appKeyName: HeaderName,
  secretToken: T.Union([SecretToken, T.Null()]),
  gatewayHost: T.String({ maxLength: 255, pattern: '^[a-z0-9.\\-:]*$' }),
  gatewayPathPrefix: T.String({ maxLength: 255, pattern: '^(/[A-Za-z0-9._~\\-/]*)?$' }),
  limiterMode: LimiterMode,
  limiterFailureMode: FailureMode,
  maxBodyBytes: T.Integer({ minimum: 0, maximum: 1024 * 1024 * 1024 }),
  forwardBearerToken: T.Boolean(),
  endUserKeySource: T.Union([T.Literal('header'), T.Literal('claim')]),
  endUserKeyName: T.String({ maxLength: 100, pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]*$" }),
  portalState: PortalState,
};

const { upstreamProduction: _required, ...optionalServiceSettings } = serviceSettings;

export const ServiceCreate = T.Object(
  {
    name: Name,
    systemName: SystemName,
    upstreamProduction: HttpUrl,
    ...T.Partial(T.Object(optionalServiceSettings)).properties,
  },
  { additionalProperties: false },
);
export type ServiceCreate = Static<typeof ServiceCreate>;

export const ServiceUpdate = T.Partial(T.Object({ name: Name, ...serviceSettings }), {
  additionalProperties: false,
});
export type ServiceUpdate = Static<typeof ServiceUpdate>;

export const Metric = T.Object({
  id: T.String(),
  serviceId: T.String(),
  systemName: T.String(),
  friendlyName: T.String(),
  unit: T.String(),
  description: T.String(),
  parentId: T.Union([T.String(), T.Null()], {
    description:
      'the hits metric for methods and for metrics that count on hits (a call counted on them counts on hits too); ' +
      'null for standalone metrics',
  }),
  kind: T.Union([T.Literal('metric'), T.Literal('method')]),
  createdAt: T.String(),
});
export type Metric = Static<typeof Metric>;

export const MetricCreate = T.Object(
  {
    systemName: SystemName,
    friendlyName: Name,
    unit: T.Optional(T.String({ minLength: 1, maxLength: 50 })),
    description: T.Optional(T.String({ maxLength: 10_000 })),
    parent: T.Optional(
      T.Union([T.Literal('hits'), T.Null()], {
        description:
          'metrics: `hits` makes the metric a child of hits (every call it counts counts on hits too, so a limit on ' +
          'hits applies); null (the default) makes it standalone. Methods are always children of hits.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type MetricCreate = Static<typeof MetricCreate>;

export const MetricUpdate = T.Partial(T.Omit(MetricCreate, ['systemName', 'parent']), {
  additionalProperties: false,
});
export type MetricUpdate = Static<typeof MetricUpdate>;

export const HttpMethod = T.Union(
  ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'ANY'].map((m) => T.Literal(m)),
);

export const MappingRule = T.Object({
  id: T.String(),
  serviceId: T.String(),
  httpMethod: T.String(),
  pattern: T.String(),
  metricId: T.String(),
  delta: T.Integer(),
  position: T.Integer(),
  last: T.Boolean(),
  createdAt: T.String(),
});
export type MappingRule = Static<typeof MappingRule>;

const Pattern = T.String({
  minLength: 1,
  maxLength: 1000,
  pattern: '^/[^\\s#]*$',
  description:
    'path pattern: `/statuses/{id}.json`; `$` at the end anchors it; `?a={a}` matches query parameters',
});

export const MappingRuleCreate = T.Object(
  {
    httpMethod: HttpMethod,
    pattern: Pattern,
    metricId: T.String(),
    delta: T.Optional(T.Integer({ minimum: 1, maximum: 1_000_000 })),
    position: T.Optional(T.Integer({ minimum: 0, maximum: 1_000_000 })),
    last: T.Optional(T.Boolean()),
  },
  { additionalProperties: false },
);
export type MappingRuleCreate = Static<typeof MappingRuleCreate>;

export const MappingRuleUpdate = T.Partial(MappingRuleCreate, { additionalProperties: false });
export type MappingRuleUpdate = Static<typeof MappingRuleUpdate>;

export const Period = T.Union(
  ['minute', 'hour', 'day', 'week', 'month', 'year', 'eternity'].map((p) => T.Literal(p)),
);
export const periods = ['minute', 'hour', 'day', 'week', 'month', 'year', 'eternity'] as const;
export type Period = (typeof periods)[number];

export const LimitScope = T.Union([T.Literal('application'), T.Literal('end_user')]);

export const PlanLimit = T.Object({
  id: T.String(),
  planId: T.String(),
  metricId: T.String(),
  period: T.String(),
  value: T.Integer(),
  scope: T.String(),
});
export type PlanLimit = Static<typeof PlanLimit>;

export const EndUserLimit = T.Object({
  id: T.String(),
  serviceId: T.String(),
  metricId: T.String(),
  period: T.String(),
  value: T.Integer(),
});
export type EndUserLimit = Static<typeof EndUserLimit>;

export const EndUserLimitSet = T.Object(
  {
    metricId: T.String(),
    period: Period,
    value: T.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  },
  { additionalProperties: false },
);
export type EndUserLimitSet = Static<typeof EndUserLimitSet>;

export const PlanLimitCreate = T.Object(
  {
    metricId: T.String(),
    period: Period,
    value: T.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    scope: T.Optional(LimitScope),
  },
  { additionalProperties: false },
);
export type PlanLimitCreate = Static<typeof PlanLimitCreate>;

export const PlanLimitUpdate = T.Object(
  { value: T.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);

export const Plan = T.Object({
  id: T.String(),
  serviceId: T.String(),
  name: T.String(),
  systemName: T.String(),
  description: T.String(),
  state: T.Union([T.Literal('published'), T.Literal('hidden')]),
  approvalRequired: T.Boolean(),
  isDefault: T.Boolean(),
  trialDays: T.Integer(),
  endUserKeySource: T.Union([T.Literal('header'), T.Literal('claim')]),
  endUserKeyName: T.String({ description: 'header or token claim identifying the end user; empty: none' }),
  limits: T.Array(PlanLimit),
  disabledMetricIds: T.Array(T.String()),
  createdAt: T.String(),
  updatedAt: T.String(),
});
export type Plan = Static<typeof Plan>;

const planSettings = {
  description: T.String({ maxLength: 10_000 }),
  state: T.Union([T.Literal('published'), T.Literal('hidden')]),
  approvalRequired: T.Boolean(),
  trialDays: T.Integer({ minimum: 0, maximum: 3650 }),
  endUserKeySource: T.Union([T.Literal('header'), T.Literal('claim')]),
  endUserKeyName: T.String({ maxLength: 100, pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]*$" }),
};

export const PlanCreate = T.Object(
  {
    name: Name,
    systemName: SystemName,
    description: T.Optional(planSettings.description),
    state: T.Optional(planSettings.state),
    approvalRequired: T.Optional(planSettings.approvalRequired),
    trialDays: T.Optional(planSettings.trialDays),
    endUserKeySource: T.Optional(planSettings.endUserKeySource),
    endUserKeyName: T.Optional(planSettings.endUserKeyName),
  },
  { additionalProperties: false },
);
export type PlanCreate = Static<typeof PlanCreate>;

export const LimitWarning = T.Object({
  limitId: T.String(),
  metricId: T.String(),
  message: T.String(),
});
export type LimitWarning = Static<typeof LimitWarning>;

export const PlanWithWarnings = T.Object({
  ...Plan.properties,
  warnings: T.Array(LimitWarning, {
    description:
      'limits no call can ever reach (no mapping rule counts their metric), or that some calls escape',
  }),
});
export type PlanWithWarnings = Static<typeof PlanWithWarnings>;

export const PlanUpdate = T.Partial(T.Object({ name: Name, ...planSettings }), {
  additionalProperties: false,
});
export type PlanUpdate = Static<typeof PlanUpdate>;
