/**
 * Shapes of the provider's content pages and partner showcase (issue 13), for the management API and the event
 * catalogue (which imports this module directly: it declares shapes only).
 */
import { type Static, Type as T } from '@sinclair/typebox';

const Slug = T.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,99}$',
  description: 'lower-case letters, digits and -; `index` is the front page, any other is /pages/<slug>',
});
const PageVisibility = T.Union([T.Literal('everyone'), T.Literal('developers'), T.Literal('plans')], {
  description:
    'everyone; developers: signed-in developers; plans: developers whose account has a live application on one of planIds',
});
const SafeUrl = T.String({ maxLength: 2000, pattern: '^(https?://|/)[^\\s"\'<>]*$' });

export const ContentPage = T.Object({
  id: T.String(),
  slug: Slug,
  title: T.String(),
  body: T.String({ description: 'Markdown (no HTML: tags are shown as text)' }),
  visibility: PageVisibility,
  planIds: T.Array(T.String()),
  inNavigation: T.Boolean({
    description: 'listed in the portal’s top navigation (for those who may see it)',
  }),
  position: T.Integer({ description: 'order in the navigation, lowest first' }),
  url: T.String({ description: 'where the portal shows it' }),
  createdAt: T.String(),
  updatedAt: T.String(),
});
export type ContentPage = Static<typeof ContentPage>;

export const ContentPageCreate = T.Object(
  {
    slug: Slug,
    title: T.String({ minLength: 1, maxLength: 200 }),
    body: T.String({ maxLength: 100_000 }),
    visibility: T.Optional(PageVisibility),
    planIds: T.Optional(T.Array(T.String({ maxLength: 64 }), { maxItems: 100 })),
    inNavigation: T.Optional(T.Boolean()),
    position: T.Optional(T.Integer({ minimum: 0, maximum: 10_000 })),
  },
  { additionalProperties: false },
);
export type ContentPageCreate = Static<typeof ContentPageCreate>;

export const ContentPageUpdate = T.Partial(ContentPageCreate, { additionalProperties: false });
export type ContentPageUpdate = Static<typeof ContentPageUpdate>;

export const ShowcaseEntry = T.Object({
  applicationId: T.String(),
  accountId: T.String(),
  consent: T.Boolean({ description: 'the partner agreed, in the portal, to be featured' }),
  consentAt: T.Union([T.String(), T.Null()]),
  featured: T.Boolean({ description: 'the provider features it; shown only with the partner’s consent' }),
  shown: T.Boolean({ description: 'on the public "Success stories" page now (featured and consented)' }),
  name: T.String(),
  logoUrl: T.String(),
  description: T.String(),
  linkUrl: T.String(),
  position: T.Integer(),
  updatedAt: T.String(),
});
export type ShowcaseEntry = Static<typeof ShowcaseEntry>;

export const ShowcaseWrite = T.Object(
  {
    featured: T.Boolean(),
    name: T.String({ minLength: 1, maxLength: 200 }),
    logoUrl: T.Optional(T.Union([SafeUrl, T.Literal('')])),
    description: T.String({ maxLength: 2000 }),
    linkUrl: T.Optional(T.Union([SafeUrl, T.Literal('')])),
    position: T.Optional(T.Integer({ minimum: 0, maximum: 10_000 })),
  },
  { additionalProperties: false },
);
export type ShowcaseWrite = Static<typeof ShowcaseWrite>;
