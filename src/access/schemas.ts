/** The shapes of developer accounts, users, applications, credentials and the provider's own settings. */
import { type Static, Type as T } from '@sinclair/typebox';

const Name = T.String({ minLength: 1, maxLength: 200 });
export const Email = T.String({ pattern: '^[^\\s@]+@[^\\s@]+$', maxLength: 320 });
const Password = T.String({ minLength: 10, maxLength: 200, description: 'at least 10 characters' });
export const CustomFieldValues = T.Record(
  T.String({ pattern: '^[a-z][a-z0-9_]{0,99}$' }),
  T.String({ maxLength: 10_000 }),
  {
    description: 'values of the custom fields the provider defined',
  },
);

export const AccountState = T.Union([T.Literal('pending'), T.Literal('approved'), T.Literal('suspended')]);
export const Account = T.Object({
  id: T.String(),
  name: T.String(),
  state: AccountState,
  customFields: T.Record(T.String(), T.String()),
  createdAt: T.String(),
  updatedAt: T.String(),
});
export type Account = Static<typeof Account>;

export const AccountCreate = T.Object(
  {
    name: Name,
    state: T.Optional(T.Union([T.Literal('pending'), T.Literal('approved')])),
    customFields: T.Optional(CustomFieldValues),
  },
  { additionalProperties: false },
);
export type AccountCreate = Static<typeof AccountCreate>;

export const AccountUpdate = T.Object(
  { name: T.Optional(Name), customFields: T.Optional(CustomFieldValues) },
  { additionalProperties: false },
);
export type AccountUpdate = Static<typeof AccountUpdate>;

export const UserRole = T.Union([T.Literal('admin'), T.Literal('member')]);
export const User = T.Object({
  id: T.String(),
  accountId: T.String(),
  email: T.String(),
  name: T.String(),
  role: UserRole,
  hasPassword: T.Boolean(),
  customFields: T.Record(T.String(), T.String()),
  createdAt: T.String(),
  updatedAt: T.String(),
});
export type User = Static<typeof User>;

export const UserCreate = T.Object(
  {
    email: Email,
    name: Name,
    role: T.Optional(UserRole),
    password: T.Optional(Password),
    customFields: T.Optional(CustomFieldValues),
  },
  { additionalProperties: false },
);
export type UserCreate = Static<typeof UserCreate>;

export const UserUpdate = T.Object(
  {
    name: T.Optional(Name),
    role: T.Optional(UserRole),
    password: T.Optional(Password),
    customFields: T.Optional(CustomFieldValues),
  },
  { additionalProperties: false },
);
export type UserUpdate = Static<typeof UserUpdate>;

export const Invitation = T.Object({
  id: T.String(),
  accountId: T.String(),
  email: T.String(),
  role: UserRole,
  expiresAt: T.String(),
  acceptedAt: T.Union([T.String(), T.Null()]),
  createdAt: T.String(),
});
export type Invitation = Static<typeof Invitation>;

export const InvitationCreate = T.Object(
  { email: Email, role: T.Optional(UserRole) },
  { additionalProperties: false },
);
export type InvitationCreate = Static<typeof InvitationCreate>;

export const CreatedInvitation = T.Composite([
  Invitation,
  T.Object({ token: T.String({ description: 'shown once: the invitee accepts with it' }) }),
]);

export const ApplicationState = T.Union([T.Literal('pending'), T.Literal('live'), T.Literal('suspended')]);
export const Environment = T.Union([T.Literal('sandbox'), T.Literal('production')]);

export const Credential = T.Object({
  id: T.String(),
  kind: T.Union([T.Literal('user_key'), T.Literal('app_key'), T.Literal('client_secret')]),
  displayPrefix: T.String({
    description: 'the start of the secret, to tell keys apart; the secret is never shown again',
  }),
  state: T.Union([T.Literal('active'), T.Literal('revoked')]),
  createdAt: T.String(),
  revokedAt: T.Union([T.String(), T.Null()]),
  lastUsedAt: T.Union([T.String(), T.Null()], {
    description:
      'the latest call with this key, as the usage was last written (seconds behind); null: never used',
  }),
});
export type Credential = Static<typeof Credential>;

const IpOrCidr = T.String({
  minLength: 2,
  maxLength: 64,
  description: 'an IPv4 or IPv6 address, or a CIDR range',
});

export const Application = T.Object({
  id: T.String(),
  accountId: T.String(),
  serviceId: T.String(),
  planId: T.String(),
  requestedPlanId: T.Union([T.String(), T.Null()]),
  name: T.String(),
  description: T.String(),
  state: ApplicationState,
  environment: Environment,
  appId: T.String({ description: 'public identifier: the app_id credential, and the OAuth client id' }),
  allowedIps: T.Array(T.String()),
  customFields: T.Record(T.String(), T.String()),
  credentials: T.Array(Credential),
  createdAt: T.String(),
  updatedAt: T.String(),
});
export type Application = Static<typeof Application>;

export const NewSecret = T.Object({
  credentialId: T.String(),
  kind: T.String(),
  value: T.String({ description: 'shown once; Trellis keeps only its hash' }),
});
export type NewSecret = Static<typeof NewSecret>;

export const CreatedApplication = T.Composite([Application, T.Object({ secret: NewSecret })]);
export type CreatedApplication = Static<typeof CreatedApplication>;

export const ApplicationCreate = T.Object(
  {
    accountId: T.String(),
    serviceId: T.String(),
    planId: T.Optional(T.String({ description: "default: the service's default plan" })),
    name: Name,
    description: T.Optional(T.String({ maxLength: 10_000 })),
    environment: T.Optional(Environment),
    allowedIps: T.Optional(T.Array(IpOrCidr, { maxItems: 100 })),
    customFields: T.Optional(CustomFieldValues),
    skipCertification: T.Optional(
      T.Boolean({
        description:
          'production only: create a production application without go-live (certification and approval). ' +
          'An audited decision of the provider: give skipCertificationReason.',
      }),
    ),
    skipCertificationReason: T.Optional(
      T.String({ minLength: 1, maxLength: 1000, description: 'why certification is skipped (audit log)' }),
    ),
  },
  { additionalProperties: false },
);
export type ApplicationCreate = Static<typeof ApplicationCreate>;

export const ApplicationUpdate = T.Object(
  {
    name: T.Optional(Name),
    description: T.Optional(T.String({ maxLength: 10_000 })),
    allowedIps: T.Optional(T.Array(IpOrCidr, { maxItems: 100 })),
    customFields: T.Optional(CustomFieldValues),
  },
  { additionalProperties: false },
);
export type ApplicationUpdate = Static<typeof ApplicationUpdate>;

/** Where forms put the built-in fields; custom fields go among them by their own position (default 1000: last). */
export const builtInFieldPositions = {
  account: { organization: 100 },
  user: { name: 200, email: 300, password: 400 },
  application: { name: 100, description: 200 },
} as const;

const fieldPositionHelp =
  'forms list fields by position (default 1000). Built-in fields: signup organization 100, name 200, e-mail 300, ' +
  'password 400; application name 100, description 200';

export const InvitationAccept = T.Object(
  {
    token: T.String({ minLength: 1, maxLength: 100, description: 'the token of the invitation, as mailed' }),
    name: Name,
    password: Password,
    customFields: T.Optional(CustomFieldValues),
  },
  { additionalProperties: false },
);
export type InvitationAccept = Static<typeof InvitationAccept>;

export const CustomFieldTarget = T.Union([T.Literal('account'), T.Literal('user'), T.Literal('application')]);
export const CustomField = T.Object({
  id: T.String(),
  target: CustomFieldTarget,
  name: T.String(),
  label: T.String(),
  required: T.Boolean(),
  choices: T.Array(T.String(), { description: 'the allowed values (a select); empty: free text' }),
  position: T.Integer({ description: fieldPositionHelp }),
  createdAt: T.String(),
});
export type CustomField = Static<typeof CustomField>;

const Choices = T.Array(T.String({ minLength: 1, maxLength: 200 }), {
  maxItems: 100,
  uniqueItems: true,
  description: 'the allowed values, in the order shown (a select); empty: free text',
});
const Position = T.Integer({ minimum: 0, maximum: 100_000, description: fieldPositionHelp });

export const CustomFieldCreate = T.Object(
  {
    target: CustomFieldTarget,
    name: T.String({ pattern: '^[a-z][a-z0-9_]{0,99}$' }),
    label: Name,
    required: T.Optional(T.Boolean()),
    choices: T.Optional(Choices),
    position: T.Optional(Position),
  },
  { additionalProperties: false },
);
export type CustomFieldCreate = Static<typeof CustomFieldCreate>;

export const CustomFieldUpdate = T.Object(
  {
    label: T.Optional(Name),
    required: T.Optional(T.Boolean()),
    choices: T.Optional(Choices),
    position: T.Optional(Position),
  },
  { additionalProperties: false },
);
export type CustomFieldUpdate = Static<typeof CustomFieldUpdate>;

export const AdminUser = T.Object({
  id: T.String(),
  email: T.String(),
  name: T.String(),
  createdAt: T.String(),
  updatedAt: T.String(),
});
export type AdminUser = Static<typeof AdminUser>;

export const AdminUserCreate = T.Object(
  { email: Email, name: Name, password: Password },
  { additionalProperties: false },
);
export type AdminUserCreate = Static<typeof AdminUserCreate>;

export const AdminTokenScope = T.Union([T.Literal('read'), T.Literal('read_write')]);
export type AdminTokenScope = Static<typeof AdminTokenScope>;
export const AdminToken = T.Object({
  id: T.String(),
  name: T.String(),
  scope: AdminTokenScope,
  displayPrefix: T.String(),
  adminUserId: T.Union([T.String(), T.Null()]),
  createdAt: T.String(),
  lastUsedAt: T.Union([T.String(), T.Null()]),
  revokedAt: T.Union([T.String(), T.Null()]),
});
export type AdminToken = Static<typeof AdminToken>;

export const AdminTokenCreate = T.Object(
  { name: Name, scope: AdminTokenScope },
  { additionalProperties: false },
);
export type AdminTokenCreate = Static<typeof AdminTokenCreate>;

export const CreatedAdminToken = T.Composite([
  AdminToken,
  T.Object({ token: T.String({ description: 'shown once: send it as `Authorization: Bearer <token>`' }) }),
]);
export type CreatedAdminToken = Static<typeof CreatedAdminToken>;

const Colour = T.String({ pattern: '^#[0-9a-fA-F]{6}$' });
const SafeUrl = T.String({ maxLength: 2000, pattern: '^(https?://|/)[^\\s"\'<>]*$' });

export const PortalSettings = T.Object(
  {
    name: Name,
    logoUrl: T.Union([SafeUrl, T.Literal('')]),
    faviconUrl: T.Union([SafeUrl, T.Literal('')]),
    primaryColor: Colour,
    accentColor: Colour,
    customCss: T.String({ maxLength: 50_000 }),
    footerLinks: T.Array(T.Object({ label: Name, url: SafeUrl }, { additionalProperties: false }), {
      maxItems: 20,
    }),
    signupMode: T.Union([T.Literal('open'), T.Literal('approval'), T.Literal('closed')], {
      description:
        'open: accounts are approved at once; approval: the provider approves them; closed: no signup',
    }),
    senderAddress: T.Union([Email, T.Literal('')], {
      description: 'the From address of every mail the portal sends (empty: portal@<portal host>)',
    }),
    contactEmail: T.Union([Email, T.Literal('')], {
      description: 'the API contact address shown in the portal and offered to mail templates',
    }),
  },
  { additionalProperties: false },
);
export type PortalSettings = Static<typeof PortalSettings>;

export const PortalSettingsUpdate = T.Partial(PortalSettings, { additionalProperties: false });
export type PortalSettingsUpdate = Static<typeof PortalSettingsUpdate>;

export const SignupExpress = T.Object(
  {
    account: T.Object(
      { name: Name, customFields: T.Optional(CustomFieldValues) },
      { additionalProperties: false },
    ),
    user: T.Object(
      {
        email: Email,
        name: Name,
        password: T.Optional(Password),
        customFields: T.Optional(CustomFieldValues),
      },
      { additionalProperties: false },
    ),
    application: T.Object(
      {
        serviceId: T.String(),
        planId: T.Optional(T.String()),
        name: Name,
        environment: T.Optional(Environment),
        customFields: T.Optional(CustomFieldValues),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type SignupExpress = Static<typeof SignupExpress>;

export const SignupExpressResult = T.Object({
  account: Account,
  user: User,
  application: CreatedApplication,
});
export type SignupExpressResult = Static<typeof SignupExpressResult>;
