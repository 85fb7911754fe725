/** The shapes of webhook endpoints, messages and attempts in the management API (issue 9). */
import { type Static, Type as T } from '@sinclair/typebox';
import { WebhookEndpointView } from '../events/index.js';

export { WebhookEndpointView };

const EventTypes = T.Array(T.String({ minLength: 1, maxLength: 200 }), {
  minItems: 1,
  maxItems: 200,
  uniqueItems: true,
  description: 'event types to deliver (see GET /webhooks/event-types); `*` for every type',
});
const Url = T.String({ minLength: 1, maxLength: 2000, description: 'http(s) URL the events are POSTed to' });
const Description = T.String({ maxLength: 2000 });
const RatePerSecond = T.Union([T.Number({ minimum: 0.01, maximum: 100_000 }), T.Null()], {
  description: 'deliveries per second at most (0.01 to 100000); null: no limit',
});

export const EndpointCreate = T.Object(
  {
    url: Url,
    eventTypes: EventTypes,
    description: T.Optional(Description),
    enabled: T.Optional(T.Boolean()),
    ratePerSecond: T.Optional(RatePerSecond),
  },
  { additionalProperties: false },
);
export type EndpointCreate = Static<typeof EndpointCreate>;

export const EndpointUpdate = T.Partial(
  T.Object({
    url: Url,
    eventTypes: EventTypes,
    description: Description,
    enabled: T.Boolean(),
    ratePerSecond: RatePerSecond,
  }),
  { additionalProperties: false },
);
export type EndpointUpdate = Static<typeof EndpointUpdate>;

const Secret = T.String({
  description: 'the signing secret, shown once (`whsec_` and base64): verify `webhook-signature` with it',
});

export const CreatedEndpoint = T.Composite([WebhookEndpointView, T.Object({ secret: Secret })]);
export type CreatedEndpoint = Static<typeof CreatedEndpoint>;

export const SecretRotation = T.Object(
  {
    graceSeconds: T.Optional(
      T.Integer({
        minimum: 0,
        maximum: 7 * 86_400,
        default: 86_400,
        description: 'how long the old secret keeps signing beside the new one (default 24 h)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type SecretRotation = Static<typeof SecretRotation>;

export const RotatedSecret = T.Object({
  secret: Secret,
  previousSecretExpiresAt: T.Union([T.String(), T.Null()]),
});
export type RotatedSecret = Static<typeof RotatedSecret>;

export const Attempt = T.Object({
  id: T.String(),
  attemptedAt: T.String(),
  status: T.Union([T.Integer(), T.Null()], { description: 'HTTP status; null when there was no answer' }),
  outcome: T.Union([T.Literal('succeeded'), T.Literal('failed')]),
  latencyMs: T.Integer(),
  responseExcerpt: T.String({ description: 'the first KiB of the answer' }),
  error: T.Union([T.String(), T.Null()]),
});
export type Attempt = Static<typeof Attempt>;

export const MessageState = T.Union([T.Literal('pending'), T.Literal('succeeded'), T.Literal('failed')]);
export const Message = T.Object({
  id: T.String({ description: 'the `webhook-id` header, the same on every attempt' }),
  endpointId: T.String(),
  eventId: T.String(),
  eventType: T.String(),
  state: MessageState,
  attempts: T.Integer(),
  nextAttemptAt: T.String(),
  lastStatus: T.Union([T.Integer(), T.Null()]),
  createdAt: T.String(),
  attemptLog: T.Array(Attempt),
});
export type Message = Static<typeof Message>;

export const EventTypeView = T.Object({
  type: T.String(),
  version: T.Integer(),
  description: T.String(),
  payload: T.Unknown({ description: 'JSON Schema of the payload (the body’s `data`)' }),
});
