/**
 * Management API routes of consumer webhooks (issue 9): the event types a service declares, publishing an event,
 * and partners' endpoints under their application (the provider sees and manages all of them).
 */
import { Type as T } from '@sinclair/typebox';
import { getApplication } from '../access/index.js';
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
} from '../control/index.js';
import {
  createConsumerEndpoint,
  deleteConsumerEndpoint,
  getConsumerEndpoint,
  listConsumerEndpoints,
  updateConsumerEndpoint,
} from './consumer-endpoints.js';
import {
  declareEventType,
  deleteEventType,
  getServiceEventType,
  listServiceEventTypes,
  updateEventType,
} from './consumer-event-types.js';
import { publishEvent } from './consumer-publish.js';
import {
  ConsumerEndpointCreate,
  ConsumerEndpointUpdate,
  ConsumerEndpointView,
  CreatedConsumerEndpoint,
  EventPublish,
  PublishedEvent,
  ServiceEventType,
  ServiceEventTypeCreate,
  ServiceEventTypeUpdate,
} from './consumer-schemas.js';
import {
  webhookDeps,
  defaultRotationGraceSeconds,
  listEndpointMessages,
  replayMessage,
  rotateEndpointSecret,
  sendTestMessage,
} from './endpoints.js';
import { Message, MessageState, RotatedSecret, SecretRotation } from './schemas.js';

const tags = ['Consumer webhooks'];
const TypeParams = T.Object({
  id: T.String({ maxLength: 64, description: 'service id' }),
  name: T.String({ maxLength: 200, description: 'event type name' }),
});
const AppEndpointParams = T.Object({
  id: T.String({ maxLength: 64, description: 'application id' }),
  childId: T.String({ maxLength: 64, description: 'webhook endpoint id' }),
});

/** Registered by webhookAdminRoutes. */
export function consumerWebhookRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);
  const hooks = webhookDeps(cd, deps.config);

  // ---- event types of a service ----
  app.get('/services/:id/event-types', {
    schema: {
      tags,
      summary: 'List the event types a service publishes to partners',
      params: Id('service id'),
      response: { 200: ListOf(ServiceEventType), ...errorResponses },
    },
    handler: async (req) => ({ data: await listServiceEventTypes(db, req.params.id) }),
  });

  app.post('/services/:id/event-types', {
    schema: {
      tags,
      summary: 'Declare an event type (name, description, JSON Schema of the payload, an example)',
      params: Id('service id'),
      body: ServiceEventTypeCreate,
      response: { 201: ServiceEventType, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await declareEventType(cd, actorOf(req), req.params.id, req.body)),
  });

  app.get('/services/:id/event-types/:name', {
    schema: {
      tags,
      summary: 'Get an event type of a service',
      params: TypeParams,
      response: { 200: ServiceEventType, ...errorResponses },
    },
    handler: (req) => getServiceEventType(db, req.params.id, req.params.name),
  });

  app.patch('/services/:id/event-types/:name', {
    schema: {
      tags,
      summary: "Change an event type's description, schema or example (the example must fit the schema)",
      params: TypeParams,
      body: ServiceEventTypeUpdate,
      response: { 200: ServiceEventType, ...errorResponses },
    },
    handler: (req) => updateEventType(cd, actorOf(req), req.params.id, req.params.name, req.body),
  });

  app.delete('/services/:id/event-types/:name', {
    schema: {
      tags,
      summary: 'Delete an event type (endpoints subscribed to it receive no more of it)',
      params: TypeParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await deleteEventType(cd, actorOf(req), req.params.id, req.params.name);
      return reply.status(204).send(null);
    },
  });

  // ---- publishing ----
  app.post('/events', {
    schema: {
      tags,
      summary:
        'Publish an event of a declared type for an application or an account; it goes to their endpoints subscribed to the type. With an Idempotency-Key, a repeat answers the first result and delivers nothing new',
      headers: T.Object({
        'idempotency-key': T.Optional(
          T.String({
            minLength: 1,
            maxLength: 255,
            description: 'makes a repeated publish harmless; the same key with another request is 409',
          }),
        ),
      }),
      body: EventPublish,
      response: { 200: PublishedEvent, 201: PublishedEvent, ...errorResponses },
    },
    handler: async (req, reply) => {
      const { event, replayed } = await publishEvent(cd, req.body, req.headers['idempotency-key']);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(replayed ? 200 : 201).send(event);
    },
  });

  // ---- partners' endpoints ----
  app.get('/webhooks/consumer-endpoints', {
    schema: {
      tags,
      summary: "List partners' webhook endpoints (all applications), by account, application or service",
      querystring: T.Composite([
        Pagination,
        T.Object({
          accountId: T.Optional(T.String({ maxLength: 64 })),
          applicationId: T.Optional(T.String({ maxLength: 64 })),
          serviceId: T.Optional(T.String({ maxLength: 64 })),
        }),
      ]),
      response: { 200: PageOf(ConsumerEndpointView), ...errorResponses },
    },
    handler: (req) => {
      const { limit, cursor, ...filter } = req.query;
      return listConsumerEndpoints(db, filter, { limit, cursor });
    },
  });

  app.get('/applications/:id/webhook-endpoints', {
    schema: {
      tags,
      summary: "List an application's webhook endpoints",
      params: Id('application id'),
      querystring: Pagination,
      response: { 200: PageOf(ConsumerEndpointView), ...errorResponses },
    },
    handler: async (req) => {
      await getApplication(db, req.params.id);
      return listConsumerEndpoints(db, { applicationId: req.params.id }, req.query);
    },
  });

  app.post('/applications/:id/webhook-endpoints', {
    schema: {
      tags,
      summary:
        'Register a webhook endpoint for an application, for event types of its service (the signing secret is in the response, once)',
      params: Id('application id'),
      body: ConsumerEndpointCreate,
      response: { 201: CreatedConsumerEndpoint, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await createConsumerEndpoint(hooks, actorOf(req), req.params.id, req.body)),
  });

  app.get('/applications/:id/webhook-endpoints/:childId', {
    schema: {
      tags,
      summary: "Get an application's webhook endpoint",
      params: AppEndpointParams,
      response: { 200: ConsumerEndpointView, ...errorResponses },
    },
    handler: (req) => getConsumerEndpoint(db, req.params.id, req.params.childId),
  });

  app.patch('/applications/:id/webhook-endpoints/:childId', {
    schema: {
      tags,
      summary:
        "Update an application's webhook endpoint (`enabled: false` disables it; enabling it again clears why Trellis disabled it)",
      params: AppEndpointParams,
      body: ConsumerEndpointUpdate,
      response: { 200: ConsumerEndpointView, ...errorResponses },
    },
    handler: (req) =>
      updateConsumerEndpoint(hooks, actorOf(req), req.params.id, req.params.childId, req.body),
  });

  app.delete('/applications/:id/webhook-endpoints/:childId', {
    schema: {
      tags,
      summary: "Delete an application's webhook endpoint and its delivery log",
      params: AppEndpointParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await deleteConsumerEndpoint(hooks, actorOf(req), req.params.id, req.params.childId);
      return reply.status(204).send(null);
    },
  });

  app.post('/applications/:id/webhook-endpoints/:childId/rotate-secret', {
    schema: {
      tags,
      summary:
        "Give an application's endpoint a new signing secret (in the response, once); the old one signs beside it for the grace period",
      params: AppEndpointParams,
      body: SecretRotation,
      response: { 200: RotatedSecret, ...errorResponses },
    },
    handler: async (req) => {
      await getConsumerEndpoint(db, req.params.id, req.params.childId);
      return rotateEndpointSecret(
        hooks,
        actorOf(req),
        req.params.childId,
        req.body.graceSeconds ?? defaultRotationGraceSeconds,
      );
    },
  });

  app.post('/applications/:id/webhook-endpoints/:childId/test', {
    schema: {
      tags,
      summary: "Send a test message (webhook_endpoint.test) to an application's endpoint",
      params: AppEndpointParams,
      response: { 202: T.Object({ messageId: T.String() }), ...errorResponses },
    },
    handler: async (req, reply) => {
      await getConsumerEndpoint(db, req.params.id, req.params.childId);
      return reply.status(202).send(await sendTestMessage(hooks, req.params.childId));
    },
  });

  app.get('/applications/:id/webhook-endpoints/:childId/messages', {
    schema: {
      tags,
      summary: "An application endpoint's delivery log: its messages, newest first, each with every attempt",
      params: AppEndpointParams,
      querystring: T.Composite([Pagination, T.Object({ state: T.Optional(MessageState) })]),
      response: { 200: PageOf(Message), ...errorResponses },
    },
    handler: async (req) => {
      await getConsumerEndpoint(db, req.params.id, req.params.childId);
      return listEndpointMessages(db, req.params.childId, req.query);
    },
  });

  app.post('/applications/:id/webhook-endpoints/:childId/messages/:messageId/replay', {
    schema: {
      tags,
      summary: "Send one of an application endpoint's messages again now (same webhook-id)",
      params: T.Composite([AppEndpointParams, T.Object({ messageId: T.String({ maxLength: 64 }) })]),
      response: { 202: T.Object({ replayed: T.Integer() }), ...errorResponses },
    },
    handler: async (req, reply) => {
      await getConsumerEndpoint(db, req.params.id, req.params.childId);
      await replayMessage(hooks, req.params.childId, req.params.messageId);
      return reply.status(202).send({ replayed: 1 });
    },
  });
}
