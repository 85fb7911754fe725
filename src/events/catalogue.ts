/**
 * The event catalogue: every event type Trellis records in its outbox, each with a version, a description and
 * the declared shape of its payload (the entity as the management API shows it, plus the ids a consumer needs).
 * Webhook endpoints subscribe to these types; `GET /admin/api/webhooks/event-types` lists them; a test records
 * every event the management API can cause and checks each payload against its schema (issue 9).
 *
 * A payload may gain fields within a version; a field removed or changed in meaning bumps the version.
 *
 * The entity schemas are imported from the contexts' schema modules directly (not their index): those modules
 * declare shapes only, and the contexts' indexes import `events/` themselves.
 */
import { type Static, type TSchema, Type as T } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  Account,
  AdminToken,
  AdminUser,
  Application,
  Credential,
  CustomField,
  Invitation,
  PortalSettings,
  User,
} from '../access/schemas.js';
import { MappingRule, Metric, Plan, PlanLimit, ServiceView } from '../catalog/schemas.js';
import { FindingPayload, QuotaAlertPayload } from '../insights/schemas.js';
import { GoLiveRequest } from '../golive/schemas.js';
import { MailTemplate } from '../mail/schemas.js';
import { ContentPage, ShowcaseEntry } from '../portal/brand-schemas.js';
import { CertificationPlanView, CertificationRun } from '../golive/certification-schemas.js';
import { Evidence } from '../golive/evidence-schemas.js';

export interface EventDefinition {
  /** `<entity>.<verb>`, as in the outbox and the webhook body. */
  type: string;
  version: number;
  description: string;
  /** The `entity_type` of the outbox row. */
  entityType: string;
  /** The shape of the payload (the webhook body's `data`). */
  payload: TSchema;
}

const accountPayload = T.Object({ account: Account, accountId: T.String() });
const userPayload = T.Object({ user: User, accountId: T.String() });
const applicationIds = {
  application: Application,
  applicationId: T.String(),
  accountId: T.String(),
  serviceId: T.String(),
};
const applicationPayload = T.Object(applicationIds);
const credentialPayload = T.Object({
  ...applicationIds,
  credential: Credential,
  credentialId: T.String(),
  kind: Credential.properties.kind,
});
const serviceIdOnly = T.Object({ serviceId: T.String() });

/** The webhook endpoint as the management API shows it (never its secret). */
export const WebhookEndpointView = T.Object({
  id: T.String(),
  url: T.String(),
  description: T.String(),
  eventTypes: T.Array(T.String(), { description: 'event types delivered; `*` for every type' }),
  enabled: T.Boolean(),
  disabledReason: T.Union([T.String(), T.Null()], {
    description: 'why Trellis disabled the endpoint (e.g. it answered 410 Gone); null when enabled by hand',
  }),
  secretPrefix: T.String({ description: 'the start of the signing secret, to tell secrets apart' }),
  previousSecretExpiresAt: T.Union([T.String(), T.Null()], {
    description: 'until then the previous secret signs beside the current one (after a rotation)',
  }),
  ratePerSecond: T.Optional(
    T.Union([T.Number(), T.Null()], { description: 'deliveries per second allowed; null: no limit' }),
  ),
  ownerRatePerSecond: T.Optional(
    T.Union([T.Number(), T.Null()], { description: "the owner's lower rate; null: the provider's" }),
  ),
  failingSince: T.Optional(
    T.Union([T.String(), T.Null()], {
      description: 'the first failed attempt since the last success (disabled after days of failures)',
    }),
  ),
  createdAt: T.String(),
  updatedAt: T.String(),
});
export type WebhookEndpointView = Static<typeof WebhookEndpointView>;
const endpointPayload = T.Object({ endpoint: WebhookEndpointView, endpointId: T.String() });

const definitions = [
  // accounts, users, invitations
  [
    'account.created',
    'account',
    accountPayload,
    'A developer account was created (console, API or portal signup).',
  ],
  ['account.updated', 'account', accountPayload, "An account's name or custom fields changed."],
  ['account.approved', 'account', accountPayload, 'A pending account was approved.'],
  ['account.suspended', 'account', accountPayload, 'An account was suspended: its applications are refused.'],
  ['account.resumed', 'account', accountPayload, 'A suspended account was resumed.'],
  [
    'account.deleted',
    'account',
    accountPayload,
    'An account was deleted (the payload is the account before).',
  ],
  ['user.created', 'user', userPayload, 'A user was added to an account (signup, invitation, API).'],
  ['user.updated', 'user', userPayload, "A user's name, role, password or custom fields changed."],
  ['user.deleted', 'user', userPayload, 'A user was removed from an account.'],
  [
    'invitation.created',
    'invitation',
    T.Object({ invitation: Invitation, accountId: T.String() }),
    'Someone was invited to an account.',
  ],
  [
    'invitation.deleted',
    'invitation',
    T.Object({ invitation: Invitation, invitationId: T.String(), accountId: T.String() }),
    'An invitation was withdrawn.',
  ],
  // applications and credentials
  [
    'application.created',
    'application',
    applicationPayload,
    'An application was created with its first key.',
  ],
  ['application.updated', 'application', applicationPayload, "An application's details changed."],
  ['application.approved', 'application', applicationPayload, 'A pending application was approved.'],
  ['application.suspended', 'application', applicationPayload, 'An application was suspended.'],
  ['application.resumed', 'application', applicationPayload, 'A suspended application was resumed.'],
  [
    'application.plan_changed',
    'application',
    T.Object({ ...applicationIds, fromPlanId: T.String(), toPlanId: T.String() }),
    'An application moved to another plan.',
  ],
  [
    'application.plan_change_requested',
    'application',
    T.Object({ ...applicationIds, requestedPlanId: T.String() }),
    'A developer asked for a plan that needs the provider’s approval.',
  ],
  [
    'application.plan_change_declined',
    'application',
    T.Object({ ...applicationIds, declinedPlanId: T.String() }),
    'The provider declined the plan a developer asked for; the application stays on its plan.',
  ],
  [
    'application.certification_skipped',
    'application',
    T.Object({ ...applicationIds, reason: T.String() }),
    'The provider created a production application without go-live (certification skipped), saying why.',
  ],
  // the path to live (issue 11)
  [
    'application.golive_requested',
    'application',
    T.Object({ ...applicationIds, request: GoLiveRequest }),
    'A partner asked to take a sandbox application live.',
  ],
  [
    'application.promoted',
    'application',
    T.Object({ ...applicationIds, request: GoLiveRequest, sandboxApplicationId: T.String() }),
    'Go-live was approved: the production application (payload) was made; the partner collects its first key.',
  ],
  [
    'application.golive_rejected',
    'application',
    T.Object({ ...applicationIds, request: GoLiveRequest }),
    'A go-live request was rejected (request.decisionComment says why).',
  ],
  [
    'application.production_revoked',
    'application',
    T.Object({ ...applicationIds, request: GoLiveRequest }),
    'Production was revoked: the production application is suspended and its keys revoked.',
  ],
  // certification (issue 11)
  [
    'certification_plan.updated',
    'certification_plan',
    T.Object({ serviceId: T.String(), plan: CertificationPlanView }),
    "A service's certification plan was written (checks, faults, manual items).",
  ],
  [
    'certification_plan.deleted',
    'certification_plan',
    T.Object({ serviceId: T.String(), plan: CertificationPlanView }),
    "A service's certification plan was removed (payload: as it was).",
  ],
  [
    'certification.started',
    'application',
    T.Object({ ...applicationIds, run: CertificationRun, runId: T.String() }),
    'A certification run started: the sandbox gateway injects the plan’s faults into the application’s calls.',
  ],
  [
    'certification.passed',
    'application',
    T.Object({ ...applicationIds, run: CertificationRun, runId: T.String() }),
    'A certification run passed: every required check and manual item.',
  ],
  [
    'certification.failed',
    'application',
    T.Object({ ...applicationIds, run: CertificationRun, runId: T.String() }),
    'A certification run failed (run.results say which checks and why).',
  ],
  [
    'certification.cancelled',
    'application',
    T.Object({ ...applicationIds, run: CertificationRun, runId: T.String() }),
    'A certification run was cancelled before it was judged.',
  ],
  [
    'certification.evidence_uploaded',
    'application',
    T.Object({ ...applicationIds, runId: T.String(), evidence: Evidence }),
    'A partner uploaded an image for a manual item of a certification run; it waits for review.',
  ],
  [
    'certification.evidence_reviewed',
    'application',
    T.Object({ ...applicationIds, runId: T.String(), evidence: Evidence }),
    'The provider accepted or rejected evidence of a manual item (evidence.reviewComment says why).',
  ],
  [
    'application.deleted',
    'application',
    applicationPayload,
    'An application was deleted (payload: as it was).',
  ],
  [
    'credential.created',
    'credential',
    credentialPayload,
    'A key or client secret was added (never its value).',
  ],
  ['credential.revoked', 'credential', credentialPayload, 'A key or client secret was revoked.'],
  // the provider's own settings
  ['custom_field.created', 'custom_field', T.Object({ field: CustomField }), 'A custom field was defined.'],
  ['custom_field.updated', 'custom_field', T.Object({ field: CustomField }), 'A custom field changed.'],
  ['custom_field.deleted', 'custom_field', T.Object({ field: CustomField }), 'A custom field was removed.'],
  ['admin_user.created', 'admin_user', T.Object({ adminUser: AdminUser }), 'An admin user was created.'],
  ['admin_user.deleted', 'admin_user', T.Object({ adminUser: AdminUser }), 'An admin user was deleted.'],
  [
    'admin_token.created',
    'admin_token',
    T.Object({ adminToken: AdminToken }),
    'An admin API token was made.',
  ],
  [
    'admin_token.revoked',
    'admin_token',
    T.Object({ adminToken: AdminToken }),
    'An admin API token was revoked.',
  ],
  [
    'portal_settings.updated',
    'settings',
    T.Object({ settings: PortalSettings }),
    "The developer portal's settings changed.",
  ],
  ['portal.sso_secret_rotated', 'settings', T.Object({}), 'A new portal SSO secret was made.'],
  // the provider's brand (issue 13)
  [
    'portal.favicon_updated',
    'settings',
    T.Object({ contentType: T.String(), size: T.Integer(), updatedAt: T.String() }),
    'A favicon was uploaded for the portal (served at /favicon.ico).',
  ],
  ['portal.favicon_deleted', 'settings', T.Object({}), 'The uploaded favicon was removed.'],
  [
    'mail_template.updated',
    'mail_template',
    T.Object({ template: MailTemplate }),
    'An e-mail template was changed: the next mails of its kind are written from it.',
  ],
  [
    'mail_template.reset',
    'mail_template',
    T.Object({ template: MailTemplate }),
    'An e-mail template was reset to the default.',
  ],
  ...(['created', 'updated', 'deleted'] as const).map(
    (verb) =>
      [
        `content_page.${verb}`,
        'content_page',
        T.Object({ page: ContentPage }),
        `A content page of the portal was ${verb}.`,
      ] as const,
  ),
  ...(
    [
      ['updated', 'The provider wrote an application’s showcase entry (featured or not).'],
      ['deleted', 'An application’s showcase entry was removed.'],
      ['consented', 'The partner agreed that their application be featured in the success stories.'],
      ['consent_withdrawn', 'The partner withdrew their consent: the entry is no longer shown.'],
    ] as const
  ).map(
    ([verb, description]) =>
      [
        `showcase_entry.${verb}`,
        'application',
        T.Object({ entry: ShowcaseEntry, applicationId: T.String(), accountId: T.String() }),
        description,
      ] as const,
  ),
  // the catalog
  ['service.created', 'service', T.Object({ service: ServiceView }), 'A service (API) was created.'],
  ['service.updated', 'service', T.Object({ service: ServiceView }), "A service's settings changed."],
  ['service.deleted', 'service', serviceIdOnly, 'A service was deleted.'],
  [
    'service.openapi_updated',
    'service',
    T.Object({ serviceId: T.String(), version: T.Optional(T.String()), operations: T.Optional(T.Integer()) }),
    "A service's OpenAPI document was published.",
  ],
  [
    'service.openapi_imported',
    'service',
    T.Object({ serviceId: T.String(), methodsCreated: T.Integer(), rulesCreated: T.Integer() }),
    'Methods and mapping rules were created from an OpenAPI document.',
  ],
  ...(['metric', 'method'] as const).flatMap((kind) =>
    (['created', 'updated', 'deleted'] as const).map(
      (verb) =>
        [
          `${kind}.${verb}`,
          kind,
          T.Object({ metric: Metric, serviceId: T.String() }),
          `A ${kind} was ${verb}.`,
        ] as const,
    ),
  ),
  ...(['created', 'updated', 'deleted'] as const).map(
    (verb) =>
      [
        `mapping_rule.${verb}`,
        'mapping_rule',
        T.Object({ rule: MappingRule, serviceId: T.String() }),
        `A mapping rule was ${verb}.`,
      ] as const,
  ),
  ...(['created', 'updated', 'deleted'] as const).map(
    (verb) =>
      [
        `plan.${verb}`,
        'plan',
        T.Object({ plan: Plan, serviceId: T.String() }),
        `A plan was ${verb}.`,
      ] as const,
  ),
  [
    'plan.limit_set',
    'plan',
    T.Object({ limit: PlanLimit, serviceId: T.String() }),
    'A limit was set on a plan.',
  ],
  [
    'plan.limit_deleted',
    'plan',
    T.Object({ limitId: T.String(), serviceId: T.String() }),
    'A limit was removed from a plan.',
  ],
  [
    'plan.metric_enabled',
    'plan',
    T.Object({ metricId: T.String(), serviceId: T.String() }),
    'A metric or method was enabled on a plan.',
  ],
  [
    'plan.metric_disabled',
    'plan',
    T.Object({ metricId: T.String(), serviceId: T.String() }),
    'A metric or method was disabled on a plan.',
  ],
  // OAuth
  [
    'oauth_service_settings.updated',
    'oauth_service',
    T.Object({ settings: T.Object({}), serviceId: T.String() }),
    "A service's OAuth settings changed.",
  ],
  [
    'oauth_service_settings.login_secret_generated',
    'oauth_service',
    serviceIdOnly,
    'A new login-assertion secret was made for a service.',
  ],
  [
    'oauth_client_settings.updated',
    'oauth_client',
    T.Object({
      settings: T.Object({ redirectUris: T.Array(T.String()) }),
      applicationId: T.String(),
      serviceId: T.String(),
      accountId: T.String(),
    }),
    "An application's OAuth client settings changed.",
  ],
  [
    'oauth_signing_keys.rotated',
    'oauth_signing_key',
    T.Object({ current: T.String(), next: T.String(), retired: T.Array(T.String()) }),
    'The OAuth signing keys were rotated.',
  ],
  [
    'oauth_token.revoked',
    'oauth_token',
    T.Object({ kind: T.Literal('token'), id: T.String(), expiresAt: T.String() }),
    'An OAuth token was revoked.',
  ],
  [
    'oauth_grant.revoked',
    'oauth_token',
    T.Object({ kind: T.Literal('grant'), id: T.String(), expiresAt: T.String() }),
    'An OAuth grant was revoked.',
  ],
  // webhooks
  ['webhook_endpoint.created', 'webhook_endpoint', endpointPayload, 'A webhook endpoint was registered.'],
  ['webhook_endpoint.updated', 'webhook_endpoint', endpointPayload, 'A webhook endpoint changed.'],
  ['webhook_endpoint.deleted', 'webhook_endpoint', endpointPayload, 'A webhook endpoint was deleted.'],
  [
    'webhook_endpoint.secret_rotated',
    'webhook_endpoint',
    endpointPayload,
    "A webhook endpoint's signing secret was rotated (the old one signs too until previousSecretExpiresAt).",
  ],
  [
    'webhook_endpoint.disabled',
    'webhook_endpoint',
    T.Object({ endpoint: WebhookEndpointView, endpointId: T.String(), reason: T.String() }),
    'Trellis disabled a webhook endpoint: it answered 410 Gone (reason gone) or only failed for days (failing).',
  ],
  [
    'webhook_endpoint.test',
    'webhook_endpoint',
    T.Object({ endpointId: T.String(), message: T.String() }),
    'A test message, sent to one endpoint only when the provider asks for it (never fanned out).',
  ],
  // consumer webhooks: event types a provider declares for a service (issue 9)
  ...(['created', 'updated', 'deleted'] as const).map(
    (verb) =>
      [
        `service_event_type.${verb}`,
        'service',
        T.Object({
          eventType: T.Object({
            serviceId: T.String(),
            name: T.String(),
            description: T.String(),
            schema: T.Unknown(),
            example: T.Unknown(),
          }),
          serviceId: T.String(),
        }),
        `An event type the service publishes to partners was ${verb === 'created' ? 'declared' : verb}.`,
      ] as const,
  ),
  // insights
  [
    'insight.detected',
    'insight_finding',
    FindingPayload,
    'A call pattern or health problem of an application was found (token churn, poll after create, retry storm, error rate, latency rise, dormant).',
  ],
  [
    'insight.resolved',
    'insight_finding',
    FindingPayload,
    'A finding was resolved (by hand, or its pattern stopped).',
  ],
  [
    'quota.level_reached',
    'application',
    QuotaAlertPayload,
    "An application used 50, 80, 90 or 100 % of one of its plan's limits in the current window (announced once per level and window).",
  ],
] as const satisfies readonly (readonly [string, string, TSchema, string])[];

/** Every event type, by name. */
export const eventCatalogue: ReadonlyMap<string, EventDefinition> = new Map(
  definitions.map(([type, entityType, payload, description]) => [
    type,
    Object.freeze({ type, version: 1, description, entityType, payload }),
  ]),
);

/** The name of an event type in the catalogue. */
export type EventType = (typeof definitions)[number][0];

/** Every event type, sorted. */
export function eventTypes(): string[] {
  return [...eventCatalogue.keys()].sort();
}

/** The definition of an event type, or undefined when the catalogue does not list it. */
export function eventDefinition(type: string): EventDefinition | undefined {
  return eventCatalogue.get(type);
}

/**
 * What is wrong with an event's payload against its declared shape (empty: nothing); an unknown type is a problem.
 * @example checkEventPayload('account.created', { account, accountId }) // []
 */
export function checkEventPayload(type: string, payload: unknown): string[] {
  const definition = eventCatalogue.get(type);
  if (!definition) return [`${type} is not in the event catalogue`];
  return [...Value.Errors(definition.payload, payload)].map((e) => `${e.path || '/'}: ${e.message}`);
}
