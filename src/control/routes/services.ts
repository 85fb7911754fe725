/** Management API: services, their metrics and methods, mapping rules and OpenAPI documents. */
import { Type as T } from '@sinclair/typebox';
import * as catalog from '../../catalog/index.js';
import { TrellisError } from '../../kernel/index.js';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  ListOf,
  PageOf,
  Pagination,
  actorOf,
  changeDeps,
  errorResponses,
} from '../context.js';

const ServiceParams = Id('service id');
const ChildParams = T.Object({ id: T.String({ maxLength: 64 }), childId: T.String({ maxLength: 64 }) });
const tags = ['Services'];

export function serviceRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.get('/services', {
    schema: {
      tags,
      summary: 'List services',
      querystring: Pagination,
      response: { 200: PageOf(catalog.Service), ...errorResponses },
    },
    handler: (req) => catalog.listServices(db, req.query),
  });

  app.post('/services', {
    schema: {
      tags,
      summary: 'Create a service (with its hits metric)',
      body: catalog.ServiceCreate,
      response: { 201: catalog.Service, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await catalog.createService(cd, actorOf(req), req.body)),
  });

  app.get('/services/:id', {
    schema: {
      tags,
      summary: 'Get a service',
      params: ServiceParams,
      response: { 200: catalog.Service, ...errorResponses },
    },
    handler: (req) => catalog.getService(db, req.params.id),
  });

  app.patch('/services/:id', {
    schema: {
      tags,
      summary: 'Update a service',
      params: ServiceParams,
      body: catalog.ServiceUpdate,
      response: { 200: catalog.Service, ...errorResponses },
    },
    handler: (req) => catalog.updateService(cd, actorOf(req), req.params.id, req.body),
  });

  app.delete('/services/:id', {
    schema: {
      tags,
      summary: 'Delete a service without applications',
      params: ServiceParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await catalog.deleteService(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  app.get('/services/:id/openapi', {
    schema: {
      tags,
      summary: "The service's OpenAPI document",
      params: ServiceParams,
      response: { 200: T.Record(T.String(), T.Unknown()), ...errorResponses },
    },
    handler: async (req) => {
      const doc = await catalog.getServiceOpenapi(db, req.params.id);
      if (!doc) throw new TrellisError('not_found', 'The service has no OpenAPI document.');
      return doc;
    },
  });

  app.put('/services/:id/openapi', {
    schema: {
      tags,
      summary: 'Import an OpenAPI document: creates the methods and mapping rules it implies',
      params: ServiceParams,
      body: T.Object(
        { openapi: T.String() },
        { additionalProperties: true, description: 'an OpenAPI 3.x document' },
      ),
      response: {
        200: T.Object({
          methodsCreated: T.Array(T.String()),
          rulesCreated: T.Integer(),
          operations: T.Integer(),
        }),
        ...errorResponses,
      },
    },
    handler: (req) => catalog.importOpenapi(cd, actorOf(req), req.params.id, req.body),
  });

  for (const kind of ['metric', 'method'] as const) {
    const plural = `${kind}s`;
    const kindTags = ['Metrics and methods'];
    const ofKind = async (serviceId: string, id: string) => {
      const m = await catalog.getMetric(db, serviceId, id);
      if (m.kind !== kind) throw new TrellisError('not_found', `No ${kind} ${id}.`);
      return m;
    };

    app.get(`/services/:id/${plural}`, {
      schema: {
        tags: kindTags,
        summary: `List the ${plural} of a service`,
        params: ServiceParams,
        response: { 200: ListOf(catalog.Metric), ...errorResponses },
      },
      handler: async (req) => ({
        data: (await catalog.listMetrics(db, req.params.id)).filter((m) => m.kind === kind),
      }),
    });

    app.post(`/services/:id/${plural}`, {
      schema: {
        tags: kindTags,
        summary: kind === 'method' ? 'Create a method (counts on hits too)' : 'Create a metric',
        params: ServiceParams,
        body: catalog.MetricCreate,
        response: { 201: catalog.Metric, ...errorResponses },
      },
      handler: async (req, reply) =>
        reply.status(201).send(await catalog.createMetric(cd, actorOf(req), req.params.id, kind, req.body)),
    });

    app.get(`/services/:id/${plural}/:childId`, {
      schema: {
        tags: kindTags,
        summary: `Get a ${kind}`,
        params: ChildParams,
        response: { 200: catalog.Metric, ...errorResponses },
      },
      handler: (req) => ofKind(req.params.id, req.params.childId),
    });

    app.patch(`/services/:id/${plural}/:childId`, {
      schema: {
        tags: kindTags,
        summary: `Update a ${kind}`,
        params: ChildParams,
        body: catalog.MetricUpdate,
        response: { 200: catalog.Metric, ...errorResponses },
      },
      handler: async (req) => {
        await ofKind(req.params.id, req.params.childId);
        return catalog.updateMetric(cd, actorOf(req), req.params.id, req.params.childId, req.body);
      },
    });

    app.delete(`/services/:id/${plural}/:childId`, {
      schema: {
        tags: kindTags,
        summary: `Delete a ${kind}`,
        params: ChildParams,
        response: { 204: T.Null(), ...errorResponses },
      },
      handler: async (req, reply) => {
        await ofKind(req.params.id, req.params.childId);
        await catalog.deleteMetric(cd, actorOf(req), req.params.id, req.params.childId);
        return reply.status(204).send(null);
      },
    });
  }

  const ruleTags = ['Mapping rules'];
  app.get('/services/:id/mapping-rules', {
    schema: {
      tags: ruleTags,
      summary: 'List mapping rules in evaluation order',
      params: ServiceParams,
      response: { 200: ListOf(catalog.MappingRule), ...errorResponses },
    },
    handler: async (req) => ({ data: await catalog.listMappingRules(db, req.params.id) }),
  });

  app.post('/services/:id/mapping-rules', {
    schema: {
      tags: ruleTags,
      summary: 'Create a mapping rule',
      params: ServiceParams,
      body: catalog.MappingRuleCreate,
      response: { 201: catalog.MappingRule, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await catalog.createMappingRule(cd, actorOf(req), req.params.id, req.body)),
  });

  app.get('/services/:id/mapping-rules/:childId', {
    schema: {
      tags: ruleTags,
      summary: 'Get a mapping rule',
      params: ChildParams,
      response: { 200: catalog.MappingRule, ...errorResponses },
    },
    handler: (req) => catalog.getMappingRule(db, req.params.id, req.params.childId),
  });

  app.patch('/services/:id/mapping-rules/:childId', {
    schema: {
      tags: ruleTags,
      summary: 'Update a mapping rule',
      params: ChildParams,
      body: catalog.MappingRuleUpdate,
      response: { 200: catalog.MappingRule, ...errorResponses },
    },
    handler: (req) =>
      catalog.updateMappingRule(cd, actorOf(req), req.params.id, req.params.childId, req.body),
  });

  app.delete('/services/:id/mapping-rules/:childId', {
    schema: {
      tags: ruleTags,
      summary: 'Delete a mapping rule',
      params: ChildParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await catalog.deleteMappingRule(cd, actorOf(req), req.params.id, req.params.childId);
      return reply.status(204).send(null);
    },
  });
}
