/**
 * Shapes of certification evidence (issue 11): the images a partner uploads for a run's manual items and the
 * provider's review of each. Shapes only (the event catalogue imports this module directly).
 */
import { type Static, Type as T } from '@sinclair/typebox';

/** The image types evidence may be, told by the file's bytes, never by its name or the browser's say-so. */
export const evidenceContentTypes = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'] as const;
export type EvidenceContentType = (typeof evidenceContentTypes)[number];

export const ReviewState = T.Union([T.Literal('pending'), T.Literal('accepted'), T.Literal('rejected')], {
  description: 'pending until the provider accepts or rejects it',
});
export type ReviewState = Static<typeof ReviewState>;

export const Evidence = T.Object({
  id: T.String(),
  runId: T.String(),
  itemKey: T.String({ description: "the manual item of the run's plan it is evidence for" }),
  contentType: T.Union(evidenceContentTypes.map((t) => T.Literal(t))),
  size: T.Integer({ description: 'bytes' }),
  sha256: T.String(),
  uploadedBy: T.String(),
  uploadedAt: T.String(),
  reviewState: ReviewState,
  reviewComment: T.String({ description: "the provider's comment (the partner reads it)" }),
  reviewedBy: T.Union([T.String(), T.Null()]),
  reviewedAt: T.Union([T.String(), T.Null()]),
  latest: T.Boolean({
    description: 'the latest upload for its item: the one reviewed (an older one stays in the timeline)',
  }),
});
export type Evidence = Static<typeof Evidence>;

export const EvidenceReview = T.Object(
  {
    decision: T.Union([T.Literal('accepted'), T.Literal('rejected')]),
    comment: T.Optional(
      T.String({
        maxLength: 2000,
        description: 'required for a rejection: what to change (the partner reads it)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type EvidenceReview = Static<typeof EvidenceReview>;
