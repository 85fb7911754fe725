/**
 * The shapes of consumer webhooks in the management API (issue 9): the event types a provider declares for a
 * service, a published event, and a partner's endpoint.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { WebhookEndpointView } from '../events/index.js';

/** `<resource>.<verb>` in lower case, e.g. `paymentrequest.paid`. */
export const EventTypeName = T.String({
  minLength: 3,
  maxLength: 200,
  pattern: '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$',
  description: 'lower case, dot-separated, e.g. `paymentrequest.paid`',
});

export const JsonSchemaDoc = T.Record(T.String(), T.Unknown(), {
  description: 'the JSON Schema (draft 07 or 2019-09 keywords, as ajv reads them) of the payload',
});

export const ServiceEventTypeCreate = T.Object(
  {
    name: EventTypeName,
    description: T.String({ maxLength: 2000 }),
    schema: JsonSchemaDoc,
    example: T.Unknown({ description: 'an example payload; must be valid against the schema' }),
  },
  { additionalProperties: false },
);
export type ServiceEventTypeCreate = Static<typeof ServiceEventTypeCreate>;

export const ServiceEventTypeUpdate = T.Object(
  {
    description: T.Optional(T.String({ maxLength: 2000 })),
    schema: T.Optional(JsonSchemaDoc),
    example: T.Optional(T.Unknown()),
  },
  { additionalProperties: false },
);
export type ServiceEventTypeUpdate = Static<typeof ServiceEventTypeUpdate>;

export const ServiceEventType = T.Object({
  serviceId: T.String(),
  name: T.String(),
  description: T.String(),
  schema: T.Unknown({ description: 'JSON Schema of the payload (the body’s `data`)' }),
  example: T.Unknown(),
  createdAt: T.String(),
  updatedAt: T.String(),
});
export type ServiceEventType = Static<typeof ServiceEventType>;

export const EventPublish = T.Object(
  {
    type: EventTypeName,
    serviceId: T.Optional(
      T.String({
        maxLength: 64,
        description: 'the service declaring the type; needed only when several services declare it',
      }),
    ),
    applicationId: T.Optional(
      T.String({ maxLength: 64, description: 'deliver to the endpoints of this application' }),
    ),
    accountId: T.Optional(
      T.String({
        maxLength: 64,
        description: "deliver to the endpoints of every application of this account (on the type's service)",
      }),
    ),
    payload: T.Unknown({ description: 'the event’s data, valid against the type’s schema' }),
  },
  { additionalProperties: false },
);
export type EventPublish = Static<typeof EventPublish>;

export const PublishedEvent = T.Object({
  id: T.String({ description: 'the event id (the body’s `eventId`)' }),
  type: T.String(),
  serviceId: T.String(),
  applicationId: T.Union([T.String(), T.Null()]),
  accountId: T.String(),
  messages: T.Integer({ description: 'messages made: one per enabled endpoint subscribed to the type' }),
  createdAt: T.String(),
});
export type PublishedEvent = Static<typeof PublishedEvent>;

const EventTypes = T.Array(T.String({ minLength: 1, maxLength: 200 }), {
  minItems: 1,
  maxItems: 200,
  uniqueItems: true,
  description: "event types of the application's service to deliver; `*` for every one",
});
const Url = T.String({ minLength: 1, maxLength: 2000, description: 'http(s) URL the events are POSTed to' });

export const ConsumerEndpointCreate = T.Object(
  {
    url: Url,
    eventTypes: EventTypes,
    description: T.Optional(T.String({ maxLength: 2000 })),
    enabled: T.Optional(T.Boolean()),
  },
  { additionalProperties: false },
);
export type ConsumerEndpointCreate = Static<typeof ConsumerEndpointCreate>;

export const ConsumerEndpointUpdate = T.Partial(
  T.Object({
    url: Url,
    eventTypes: EventTypes,
    description: T.String({ maxLength: 2000 }),
    enabled: T.Boolean(),
  }),
  { additionalProperties: false },
);
export type ConsumerEndpointUpdate = Static<typeof ConsumerEndpointUpdate>;

export const ConsumerEndpointView = T.Composite([
  WebhookEndpointView,
  T.Object({ applicationId: T.String(), accountId: T.String(), serviceId: T.String() }),
]);
export type ConsumerEndpointView = Static<typeof ConsumerEndpointView>;

export const CreatedConsumerEndpoint = T.Composite([
  ConsumerEndpointView,
  T.Object({
    secret: T.String({
      description: 'the signing secret, shown once (`whsec_` and base64): verify `webhook-signature` with it',
    }),
  }),
]);
export type CreatedConsumerEndpoint = Static<typeof CreatedConsumerEndpoint>;

/** An event type in `trellis apply` YAML (a service's `eventTypes:`). */
export const EventTypeDecl = T.Object(
  {
    name: EventTypeName,
    description: T.String({ maxLength: 2000 }),
    schema: JsonSchemaDoc,
    example: T.Unknown(),
  },
  { additionalProperties: false },
);
export type EventTypeDecl = Static<typeof EventTypeDecl>;
