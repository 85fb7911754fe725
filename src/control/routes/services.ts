/** Management API: services, their metrics and methods, mapping rules and OpenAPI documents. */
import { Type as T } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import * as catalog from '../../catalog/index.js';
import { TrellisError, readClientYaml } from '../../kernel/index.js';
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

/** The secret token a service sends upstream is shown to read-write admin tokens only (issue 8, item 17). */
const mayReadSecrets = (req: FastifyRequest) => req.principal?.scope === 'read_write';

export function serviceRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.get('/services', {
    schema: {
      tags,
      summary: 'List services',
      querystring: Pagination,
      response: { 200: PageOf(catalog.ServiceView), ...errorResponses },
    },
    handler: async (req) => {
      const page = await catalog.listServices(db, req.query);
      return mayReadSecrets(req) ? page : { ...page, data: page.data.map(catalog.withoutSecretToken) };
    },
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
      response: { 200: catalog.ServiceView, ...errorResponses },
    },
    handler: async (req) => {
      const service = await catalog.getService(db, req.params.id);
      return mayReadSecrets(req) ? service : catalog.withoutSecretToken(service);
    },
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

  // OpenAPI documents are often YAML: these two routes read it as well as JSON (YAML is a superset of JSON)
  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml'],
    { parseAs: 'string' },
    (_req, body, done) => {
      try {
        done(null, readClientYaml(String(body), 'body'));
      } catch (err) {
        done(err as Error);
      }
    },
  );
  const OpenapiBody = T.Record(T.String(), T.Unknown(), {
    description:
      'an OpenAPI 3.0 or 3.1 or a Swagger 2.0 document, as JSON or YAML (Content-Type application/yaml)',
  });
  const Operation = T.String({ description: '`GET /v1/pets/{petId}`' });

  app.put('/services/:id/openapi', {
    schema: {
      tags,
      summary:
        "Publish the service's API documentation (the portal shows it); changes nothing the gateway counts",
      params: ServiceParams,
      body: OpenapiBody,
      response: {
        200: T.Object({ version: T.String(), operations: T.Integer() }),
        ...errorResponses,
      },
    },
    handler: (req) => catalog.publishOpenapi(cd, actorOf(req), req.params.id, req.body),
  });

  app.post('/services/:id/openapi/import', {
    schema: {
      tags,
      summary:
        'Import a definition: publishes the document and adds a method and a mapping rule for each operation ' +
        'no rule counts yet (operations an existing rule matches are skipped)',
      params: ServiceParams,
      body: OpenapiBody,
      response: {
        200: T.Object({
          methodsCreated: T.Array(T.String()),
          rulesCreated: T.Integer(),
          operations: T.Integer(),
          added: T.Array(T.Object({ operation: Operation, method: T.String(), pattern: T.String() })),
          skipped: T.Array(T.Object({ operation: Operation, reason: T.String(), ruleId: T.String() })),
        }),
        ...errorResponses,
      },
    },
    handler: (req) => catalog.importOpenapi(cd, actorOf(req), req.params.id, req.body),
  });

  const endUserTags = ['End-user limits'];
  app.get('/services/:id/end-user-limits', {
    schema: {
      tags: endUserTags,
      summary: "The service's end-user limits (every end user of every application, whatever its plan)",
      params: ServiceParams,
      response: { 200: ListOf(catalog.EndUserLimit), ...errorResponses },
    },
    handler: async (req) => ({ data: await catalog.listEndUserLimits(db, req.params.id) }),
  });

  app.put('/services/:id/end-user-limits', {
    schema: {
      tags: endUserTags,
      summary: 'Set an end-user limit of the service (metric × period); setting it again changes its value',
      description:
        "The default for every plan of the service; a plan's own end-user limit on the same metric and period wins. " +
        "The end user is named by the plan's endUserKeyName, else the service's.",
      params: ServiceParams,
      body: catalog.EndUserLimitSet,
      response: { 200: catalog.EndUserLimit, ...errorResponses },
    },
    handler: (req) => catalog.setEndUserLimit(cd, actorOf(req), req.params.id, req.body),
  });

  app.delete('/services/:id/end-user-limits/:childId', {
    schema: {
      tags: endUserTags,
      summary: 'Remove an end-user limit of the service',
      params: ChildParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await catalog.deleteEndUserLimit(cd, actorOf(req), req.params.id, req.params.childId);
      return reply.status(204).send(null);
    },
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
      description:
        'Every rule that matches a call adds its delta, so a service has one rule per verb, pattern and metric: ' +
        'another with the same three (whatever its delta) is refused with 409 `mapping_rule_exists`, ' +
        '`details.ruleId` naming the rule the service has.',
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
      description:
        'A change that makes the rule the same as another of the service (verb, pattern and metric) is refused ' +
        'with 409 `mapping_rule_exists`.',
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
