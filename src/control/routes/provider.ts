/** Management API: the provider's own settings: custom fields, admin users, admin tokens, portal, audit log. */
import { Type as T } from '@sinclair/typebox';
import * as access from '../../access/index.js';
import { listAuditEntries, runChange } from '../../events/index.js';
import { rotateWebKey } from '../../portal/web-keys.js';
import { toPage } from '../../store/index.js';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  ListOf,
  Pagination,
  actorOf,
  changeDeps,
  errorResponses,
} from '../context.js';

export function providerRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  const fieldTags = ['Custom fields'];
  app.get('/custom-fields', {
    schema: {
      tags: fieldTags,
      summary: 'List custom field definitions',
      querystring: T.Object({ target: T.Optional(access.CustomFieldTarget) }),
      response: { 200: ListOf(access.CustomField), ...errorResponses },
    },
    handler: async (req) => ({ data: await access.listCustomFields(db, req.query.target) }),
  });
  app.post('/custom-fields', {
    schema: {
      tags: fieldTags,
      summary: 'Define a custom field',
      body: access.CustomFieldCreate,
      response: { 201: access.CustomField, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await access.createCustomField(cd, actorOf(req), req.body)),
  });
  app.get('/custom-fields/:id', {
    schema: {
      tags: fieldTags,
      summary: 'Get a custom field',
      params: Id('custom field id'),
      response: { 200: access.CustomField, ...errorResponses },
    },
    handler: (req) => access.getCustomField(db, req.params.id),
  });
  app.patch('/custom-fields/:id', {
    schema: {
      tags: fieldTags,
      summary: 'Update a custom field',
      params: Id('custom field id'),
      body: access.CustomFieldUpdate,
      response: { 200: access.CustomField, ...errorResponses },
    },
    handler: (req) => access.updateCustomField(cd, actorOf(req), req.params.id, req.body),
  });
  app.delete('/custom-fields/:id', {
    schema: {
      tags: fieldTags,
      summary: 'Delete a custom field',
      params: Id('custom field id'),
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await access.deleteCustomField(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  const adminTags = ['Admin users and tokens'];
  app.get('/admin-users', {
    schema: {
      tags: adminTags,
      summary: 'List admin users',
      response: { 200: ListOf(access.AdminUser), ...errorResponses },
    },
    handler: async () => ({ data: await access.listAdminUsers(db) }),
  });
  app.post('/admin-users', {
    schema: {
      tags: adminTags,
      summary: 'Create an admin user',
      body: access.AdminUserCreate,
      response: { 201: access.AdminUser, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await access.createAdminUser(cd, actorOf(req), req.body)),
  });
  app.get('/admin-users/:id', {
    schema: {
      tags: adminTags,
      summary: 'Get an admin user',
      params: Id('admin user id'),
      response: { 200: access.AdminUser, ...errorResponses },
    },
    handler: (req) => access.getAdminUser(db, req.params.id),
  });
  app.delete('/admin-users/:id', {
    schema: {
      tags: adminTags,
      summary: 'Delete an admin user (not the last)',
      params: Id('admin user id'),
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await access.deleteAdminUser(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });
  app.get('/admin-tokens', {
    schema: {
      tags: adminTags,
      summary: 'List admin API tokens (prefixes only)',
      response: { 200: ListOf(access.AdminToken), ...errorResponses },
    },
    handler: async () => ({ data: await access.listAdminTokens(db) }),
  });
  app.post('/admin-tokens', {
    schema: {
      tags: adminTags,
      summary: 'Create an admin API token (shown once)',
      body: access.AdminTokenCreate,
      response: { 201: access.CreatedAdminToken, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await access.createAdminToken(cd, actorOf(req), req.body)),
  });
  app.get('/admin-tokens/:id', {
    schema: {
      tags: adminTags,
      summary: 'Get an admin API token',
      params: Id('admin token id'),
      response: { 200: access.AdminToken, ...errorResponses },
    },
    handler: (req) => access.getAdminToken(db, req.params.id),
  });
  app.post('/admin-tokens/:id/revoke', {
    schema: {
      tags: adminTags,
      summary: 'Revoke an admin API token',
      params: Id('admin token id'),
      response: { 200: access.AdminToken, ...errorResponses },
    },
    handler: (req) => access.revokeAdminToken(cd, actorOf(req), req.params.id),
  });

  const portalTags = ['Portal settings'];
  app.get('/portal-settings', {
    schema: {
      tags: portalTags,
      summary: 'Branding and signup mode of the developer portal',
      response: { 200: access.PortalSettings, ...errorResponses },
    },
    handler: () => access.getPortalSettings(db),
  });
  app.patch('/portal-settings', {
    schema: {
      tags: portalTags,
      summary: 'Change portal settings',
      body: access.PortalSettingsUpdate,
      response: { 200: access.PortalSettings, ...errorResponses },
    },
    handler: (req) => access.updatePortalSettings(cd, actorOf(req), req.body),
  });

  app.post('/portal-settings/sso-secret', {
    schema: {
      tags: portalTags,
      summary: 'Make a new single sign-on secret (shown once); the old one stops working',
      description:
        "The secret the provider's own product signs `/sso?token=…` tokens with (see the portal's SSO). The same as " +
        "the console's 'New SSO secret'.",
      response: {
        201: T.Object({ secret: T.String({ description: 'shown this once' }) }),
        ...errorResponses,
      },
    },
    handler: async (req, reply) => {
      const secret = await runChange(cd, actorOf(req), async (tx, record) => {
        const value = await rotateWebKey(tx, cd.clock, 'sso');
        await record({
          type: 'portal.sso_secret_rotated',
          entityType: 'portal',
          entityId: 'sso',
          payload: {},
        });
        return value;
      });
      return reply.status(201).send({ secret });
    },
  });

  app.get('/audit-log', {
    schema: {
      tags: ['Audit log'],
      summary: 'Who changed what, newest first',
      querystring: T.Composite([Pagination, T.Object({ entityId: T.Optional(T.String({ maxLength: 64 })) })]),
      response: {
        200: T.Object({
          data: T.Array(
            T.Object({
              id: T.String(),
              at: T.String(),
              actorType: T.String(),
              actorId: T.Union([T.String(), T.Null()]),
              action: T.String(),
              entityType: T.String(),
              entityId: T.String(),
              data: T.Unknown(),
            }),
          ),
          nextCursor: T.Union([T.String(), T.Null()]),
        }),
        ...errorResponses,
      },
    },
    handler: async (req) => {
      const { limit, cursor, entityId } = req.query;
      const rows = await listAuditEntries(db, {
        limit: limit + 1,
        ...(cursor && { cursor }),
        ...(entityId && { entityId }),
      });
      return toPage(rows, limit);
    },
  });
}
