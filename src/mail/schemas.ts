/** Shapes of the provider's e-mail templates, for the management API and the event catalogue. */
import { type Static, Type as T } from '@sinclair/typebox';

export const MailTemplateKey = T.Union(
  [
    T.Literal('signup'),
    T.Literal('invitation'),
    T.Literal('password_reset'),
    T.Literal('quota_alert'),
    T.Literal('quota_reached'),
    T.Literal('account_approved'),
    T.Literal('application_approved'),
    T.Literal('plan_changed'),
    T.Literal('plan_change_declined'),
    T.Literal('golive_decided'),
    T.Literal('production_revoked'),
    T.Literal('webhook_endpoint_disabled'),
  ],
  {
    description:
      'which mail: signup (welcome), invitation, password_reset, quota_alert, quota_reached, account_approved, ' +
      'application_approved, plan_changed, plan_change_declined, golive_decided (approved or rejected), ' +
      'production_revoked, webhook_endpoint_disabled',
  },
);
export type MailTemplateKey = Static<typeof MailTemplateKey>;

export const MailTemplate = T.Object({
  key: MailTemplateKey,
  name: T.String({ description: 'what the mail is, in words' }),
  description: T.String({ description: 'when Trellis sends it' }),
  variables: T.Array(T.Object({ name: T.String(), description: T.String() }), {
    description: 'what `{{name}}` may name in the subject and body',
  }),
  subject: T.String(),
  body: T.String({ description: 'plain text; `{{name}}` is replaced by the variable’s value' }),
  customized: T.Boolean({ description: 'false: the default Trellis ships' }),
  updatedAt: T.Union([T.String(), T.Null()]),
});
export type MailTemplate = Static<typeof MailTemplate>;

export const MailTemplateWrite = T.Object(
  {
    subject: T.String({ minLength: 1, maxLength: 300 }),
    body: T.String({ minLength: 1, maxLength: 20_000 }),
  },
  { additionalProperties: false },
);
export type MailTemplateWrite = Static<typeof MailTemplateWrite>;

export const MailTemplatePreviewInput = T.Partial(MailTemplateWrite, { additionalProperties: false });
export type MailTemplatePreviewInput = Static<typeof MailTemplatePreviewInput>;

export const MailPreview = T.Object({
  subject: T.String(),
  text: T.String(),
  variables: T.Record(T.String(), T.String(), { description: 'the sample values used' }),
});
export type MailPreview = Static<typeof MailPreview>;
