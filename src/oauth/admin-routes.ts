/** Management API routes of OAuth: service and application settings, login secrets, key rotation, token counts. */
import { Type as T } from '@sinclair/typebox';
import { getApplication } from '../access/index.js';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  actorOf,
  changeDeps,
  errorResponses,
} from '../control/index.js';
import { createSealer } from './key-encryption.js';
import {
  generateLoginSecret,
  getClientOAuthSettings,
  getServiceOAuthSettings,
  updateClientOAuthSettings,
  updateServiceOAuthSettings,
} from './oauth-settings.js';
import { rotateSigningKeys } from './signing-keys.js';
import { queryTokenCounts } from './token-counter.js';

const tags = ['OAuth'];

const ServiceOAuthSettings = T.Object({
  serviceId: T.String(),
  accessTokenTtl: T.Integer({ description: 'seconds an access token lives' }),
  refreshTokenTtl: T.Integer({ description: 'seconds a refresh token lives' }),
  loginUrl: T.String({ description: "the provider's sign-in page for the authorization-code flow" }),
  hasLoginSecret: T.Boolean(),
  tokenIssuer: T.Union([T.Literal('trellis'), T.Literal('external')]),
  externalIssuer: T.String(),
  externalJwksUrl: T.String(),
  externalAudience: T.String(),
  externalClientClaim: T.String(),
});

const ServiceOAuthSettingsUpdate = T.Partial(
  T.Object({
    accessTokenTtl: T.Integer({ minimum: 30, maximum: 86_400 }),
    refreshTokenTtl: T.Integer({ minimum: 60, maximum: 31_536_000 }),
    loginUrl: T.String({ maxLength: 2000 }),
    tokenIssuer: T.Union([T.Literal('trellis'), T.Literal('external')]),
    externalIssuer: T.String({ maxLength: 2000 }),
    externalJwksUrl: T.String({ maxLength: 2000 }),
    externalAudience: T.String({ maxLength: 500 }),
    externalClientClaim: T.String({ maxLength: 100 }),
  }),
  { additionalProperties: false },
);

const ClientOAuthSettings = T.Object({
  applicationId: T.String(),
  redirectUris: T.Array(T.String()),
  externalClientId: T.Union([T.String(), T.Null()]),
});

const ClientOAuthSettingsUpdate = T.Partial(
  T.Object({
    redirectUris: T.Array(T.String({ maxLength: 2000 }), { maxItems: 20 }),
    externalClientId: T.Union([T.String({ maxLength: 255 }), T.Null()]),
  }),
  { additionalProperties: false },
);

/** Adds the OAuth routes to the management API. Register in `adminApiModules` (src/cli/compose.ts). */
export function oauthAdminRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);
  const sealer = createSealer(deps.config.oauthKeySecret);

  app.get('/services/:id/oauth', {
    schema: {
      tags,
      summary: "Get a service's OAuth settings",
      params: Id('service id'),
      response: { 200: ServiceOAuthSettings, ...errorResponses },
    },
    handler: (req) => getServiceOAuthSettings(db, req.params.id),
  });

  app.patch('/services/:id/oauth', {
    schema: {
      tags,
      summary: "Change a service's OAuth settings (token lifetimes, login page, external issuer)",
      params: Id('service id'),
      body: ServiceOAuthSettingsUpdate,
      response: { 200: ServiceOAuthSettings, ...errorResponses },
    },
    handler: (req) =>
      updateServiceOAuthSettings(cd, actorOf(req), req.params.id, req.body, {
        allowHosts: deps.config.outboundAllowHosts,
      }),
  });

  app.post('/services/:id/oauth/login-secret', {
    schema: {
      tags,
      summary: 'Generate the secret that signs login assertions (shown once; replaces the previous one)',
      params: Id('service id'),
      response: { 201: T.Object({ serviceId: T.String(), loginSecret: T.String() }), ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await generateLoginSecret(cd, actorOf(req), sealer, req.params.id)),
  });

  app.get('/applications/:id/oauth', {
    schema: {
      tags,
      summary: "Get an application's OAuth client settings",
      params: Id('application id'),
      response: { 200: ClientOAuthSettings, ...errorResponses },
    },
    handler: (req) => getClientOAuthSettings(db, req.params.id),
  });

  app.patch('/applications/:id/oauth', {
    schema: {
      tags,
      summary: "Change an application's redirect URIs or its client id at an external issuer",
      params: Id('application id'),
      body: ClientOAuthSettingsUpdate,
      response: { 200: ClientOAuthSettings, ...errorResponses },
    },
    handler: (req) => updateClientOAuthSettings(cd, actorOf(req), req.params.id, req.body),
  });

  app.get('/applications/:id/oauth/tokens-issued', {
    schema: {
      tags,
      summary: 'Access tokens issued to an application, per hour and grant type',
      params: Id('application id'),
      querystring: T.Object({
        from: T.String({ format: 'date-time' }),
        to: T.String({ format: 'date-time' }),
      }),
      response: {
        200: T.Object({
          data: T.Array(T.Object({ bucket: T.String(), grantType: T.String(), count: T.Integer() })),
        }),
        ...errorResponses,
      },
    },
    handler: async (req) => {
      // an unknown application is a 404, not an empty series
      await getApplication(db, req.params.id);
      const rows = await queryTokenCounts(db, {
        applicationId: req.params.id,
        from: new Date(req.query.from).toISOString(),
        to: new Date(req.query.to).toISOString(),
      });
      return { data: rows.map((r) => ({ bucket: r.bucket, grantType: r.grantType, count: r.count })) };
    },
  });

  app.post('/oauth/signing-keys/rotate', {
    schema: {
      tags,
      summary: 'Rotate the signing keys: the published next key starts signing; the current one is retired',
      body: T.Optional(
        T.Object(
          { retiredKeySeconds: T.Optional(T.Integer({ minimum: 60, maximum: 30 * 86_400 })) },
          { additionalProperties: false },
        ),
      ),
      response: {
        200: T.Object({ current: T.String(), next: T.String(), retired: T.Array(T.String()) }),
        ...errorResponses,
      },
    },
    handler: (req) => rotateSigningKeys(cd, actorOf(req), sealer, req.body ?? {}),
  });
}
