/** Management API: applications, their keys, plans and states. */
import { Type as T } from '@sinclair/typebox';
import * as access from '../../access/index.js';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  PageOf,
  Pagination,
  actorOf,
  changeDeps,
  errorResponses,
} from '../context.js';

const tags = ['Applications'];
const AppParams = Id('application id');

export function applicationRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.get('/applications', {
    schema: {
      tags,
      summary: 'List applications',
      querystring: T.Composite([
        Pagination,
        T.Object({
          accountId: T.Optional(T.String({ maxLength: 64 })),
          serviceId: T.Optional(T.String({ maxLength: 64 })),
          planId: T.Optional(T.String({ maxLength: 64 })),
          state: T.Optional(access.ApplicationState),
          environment: T.Optional(access.Environment),
          q: T.Optional(T.String({ maxLength: 200, description: 'name contains' })),
        }),
      ]),
      response: { 200: PageOf(access.Application), ...errorResponses },
    },
    handler: (req) => {
      const { limit, cursor, ...filter } = req.query;
      return access.listApplications(db, filter, { limit, cursor });
    },
  });

  app.post('/applications', {
    schema: {
      tags,
      summary: 'Create an application and its first key (the secret is in the response, once)',
      body: access.ApplicationCreate,
      response: { 201: access.CreatedApplication, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await access.createApplication(cd, actorOf(req), req.body)),
  });

  app.get('/applications/:id', {
    schema: {
      tags,
      summary: 'Get an application',
      params: AppParams,
      response: { 200: access.Application, ...errorResponses },
    },
    handler: (req) => access.getApplication(db, req.params.id),
  });

  app.patch('/applications/:id', {
    schema: {
      tags,
      summary: 'Update an application',
      params: AppParams,
      body: access.ApplicationUpdate,
      response: { 200: access.Application, ...errorResponses },
    },
    handler: (req) => access.updateApplication(cd, actorOf(req), req.params.id, req.body),
  });

  app.delete('/applications/:id', {
    schema: {
      tags,
      summary: 'Delete an application',
      params: AppParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await access.deleteApplication(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  for (const action of ['approve', 'suspend', 'resume'] as const) {
    app.post(`/applications/:id/${action}`, {
      schema: {
        tags,
        summary: `${action[0]!.toUpperCase()}${action.slice(1)} an application`,
        params: AppParams,
        response: { 200: access.Application, ...errorResponses },
      },
      handler: (req) => access.transitionApplication(cd, actorOf(req), req.params.id, action),
    });
  }

  app.post('/applications/:id/change-plan', {
    schema: {
      tags,
      summary: 'Move an application to another plan of its service',
      params: AppParams,
      body: T.Object({ planId: T.String({ maxLength: 64 }) }, { additionalProperties: false }),
      response: { 200: access.Application, ...errorResponses },
    },
    handler: (req) => access.changeApplicationPlan(cd, actorOf(req), req.params.id, req.body.planId),
  });

  app.post('/applications/:id/decline-plan', {
    schema: {
      tags,
      summary: 'Decline the plan a developer asked for: the application stays on its plan',
      params: AppParams,
      response: { 200: access.Application, ...errorResponses },
    },
    handler: (req) => access.declineApplicationPlan(cd, actorOf(req), req.params.id),
  });

  app.post('/applications/:id/keys', {
    schema: {
      tags,
      summary: 'Add a key (up to five active): rotate by adding a new key, then revoking the old one',
      params: AppParams,
      response: { 201: access.NewSecret, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await access.addApplicationKey(cd, actorOf(req), req.params.id)),
  });

  app.post('/applications/:id/keys/:childId/revoke', {
    schema: {
      tags,
      summary: 'Revoke a key',
      params: T.Object({ id: T.String({ maxLength: 64 }), childId: T.String({ maxLength: 64 }) }),
      response: { 200: access.Credential, ...errorResponses },
    },
    handler: (req) => access.revokeApplicationKey(cd, actorOf(req), req.params.id, req.params.childId),
  });
}
