/** Management API: application plans, their limits and the methods they disable. */
import { Type as T } from '@sinclair/typebox';
import * as catalog from '../../catalog/index.js';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  ListOf,
  actorOf,
  changeDeps,
  errorResponses,
} from '../context.js';

const tags = ['Plans'];
const PlanParams = Id('plan id');
const ChildParams = T.Object({ id: T.String({ maxLength: 64 }), childId: T.String({ maxLength: 64 }) });

export function planRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.get('/services/:id/plans', {
    schema: {
      tags,
      summary: 'List the plans of a service',
      params: Id('service id'),
      querystring: T.Object({ state: T.Optional(T.Union([T.Literal('published'), T.Literal('hidden')])) }),
      response: { 200: ListOf(catalog.Plan), ...errorResponses },
    },
    handler: async (req) => ({
      data: await catalog.listPlans(db, {
        serviceId: req.params.id,
        ...(req.query.state && { state: req.query.state }),
      }),
    }),
  });

  app.post('/services/:id/plans', {
    schema: {
      tags,
      summary: 'Create a plan (the first one is the default)',
      params: Id('service id'),
      body: catalog.PlanCreate,
      response: { 201: catalog.Plan, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await catalog.createPlan(cd, actorOf(req), req.params.id, req.body)),
  });

  app.get('/plans/:id', {
    schema: {
      tags,
      summary: 'Get a plan with its limits, and warnings about limits no call can reach',
      params: PlanParams,
      response: { 200: catalog.PlanWithWarnings, ...errorResponses },
    },
    handler: (req) => catalog.getPlanWithWarnings(db, req.params.id),
  });

  app.patch('/plans/:id', {
    schema: {
      tags,
      summary: 'Update a plan',
      params: PlanParams,
      body: catalog.PlanUpdate,
      response: { 200: catalog.Plan, ...errorResponses },
    },
    handler: (req) => catalog.updatePlan(cd, actorOf(req), req.params.id, req.body),
  });

  app.delete('/plans/:id', {
    schema: {
      tags,
      summary: 'Delete a plan no application is on',
      params: PlanParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await catalog.deletePlan(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  app.post('/plans/:id/make-default', {
    schema: {
      tags,
      summary: 'Make this the default plan of its service',
      params: PlanParams,
      response: { 200: catalog.Plan, ...errorResponses },
    },
    handler: (req) => catalog.makeDefaultPlan(cd, actorOf(req), req.params.id),
  });

  app.put('/plans/:id/limits', {
    schema: {
      tags,
      summary: 'Set a limit (metric × period × scope); setting it again changes its value',
      params: PlanParams,
      body: catalog.PlanLimitCreate,
      response: {
        200: T.Object({ ...catalog.PlanLimit.properties, warnings: T.Array(catalog.LimitWarning) }),
        ...errorResponses,
      },
    },
    handler: async (req) => {
      const limit = await catalog.setPlanLimit(cd, actorOf(req), req.params.id, req.body);
      const warnings = await catalog.limitWarnings(db, await catalog.getPlan(db, req.params.id));
      return { ...limit, warnings: warnings.filter((w) => w.limitId === limit.id) };
    },
  });

  app.delete('/plans/:id/limits/:childId', {
    schema: {
      tags,
      summary: 'Remove a limit',
      params: ChildParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await catalog.deletePlanLimit(cd, actorOf(req), req.params.id, req.params.childId);
      return reply.status(204).send(null);
    },
  });

  app.put('/plans/:id/disabled-methods/:childId', {
    schema: {
      tags,
      summary: 'Disable a method (or metric) in this plan',
      params: ChildParams,
      response: { 200: catalog.Plan, ...errorResponses },
    },
    handler: (req) => catalog.setMetricEnabled(cd, actorOf(req), req.params.id, req.params.childId, false),
  });

  app.delete('/plans/:id/disabled-methods/:childId', {
    schema: {
      tags,
      summary: 'Enable a method again',
      params: ChildParams,
      response: { 200: catalog.Plan, ...errorResponses },
    },
    handler: (req) => catalog.setMetricEnabled(cd, actorOf(req), req.params.id, req.params.childId, true),
  });
}
