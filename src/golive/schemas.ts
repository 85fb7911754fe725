/** Shapes of go-live as the management API and the event catalogue show them. */
import { type Static, Type as T } from '@sinclair/typebox';

export const GoLiveState = T.Union(
  [T.Literal('requested'), T.Literal('approved'), T.Literal('rejected'), T.Literal('revoked')],
  {
    description:
      'requested → approved (production application made) | rejected; approved → revoked (production suspended)',
  },
);
export type GoLiveState = Static<typeof GoLiveState>;

export const GoLiveRequest = T.Object({
  id: T.String(),
  applicationId: T.String({ description: 'the sandbox application that asked to go live' }),
  accountId: T.String(),
  serviceId: T.String(),
  state: GoLiveState,
  note: T.String({ description: "the partner's note" }),
  decisionComment: T.String({ description: "the provider's comment on approval, rejection or revocation" }),
  productionApplicationId: T.Union([T.String(), T.Null()], {
    description: 'the production application approval made (its own app id and keys)',
  }),
  keyCollected: T.Boolean({ description: 'the partner has collected the first production key (shown once)' }),
  requestedAt: T.String(),
  decidedAt: T.Union([T.String(), T.Null()]),
  revokedAt: T.Union([T.String(), T.Null()]),
  updatedAt: T.String(),
});
export type GoLiveRequest = Static<typeof GoLiveRequest>;

export const GoLiveAsk = T.Object(
  { note: T.Optional(T.String({ maxLength: 2000 })) },
  { additionalProperties: false },
);
export const GoLiveDecision = T.Object(
  { comment: T.Optional(T.String({ maxLength: 2000 })) },
  { additionalProperties: false },
);
export const GoLiveReason = T.Object(
  { comment: T.String({ minLength: 1, maxLength: 2000, description: 'why (the partner reads it)' }) },
  { additionalProperties: false },
);
