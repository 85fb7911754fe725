/** Management API routes of webhooks: endpoints, secret rotation, the delivery log, replay and recovery. */
import { Type as T } from '@sinclair/typebox';
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
import { eventCatalogue } from '../events/index.js';
import {
  webhookDeps,
  createEndpoint,
  defaultRotationGraceSeconds,
  deleteEndpoint,
  getEndpoint,
  listEndpointMessages,
  listEndpoints,
  recoverFailedMessages,
  replayMessage,
  rotateEndpointSecret,
  sendTestMessage,
  updateEndpoint,
} from './endpoints.js';
import {
  CreatedEndpoint,
  EndpointCreate,
  EndpointUpdate,
  EventTypeView,
  Message,
  MessageState,
  RotatedSecret,
  SecretRotation,
  WebhookEndpointView,
} from './schemas.js';
import { queueFigures } from './webhooks.store.js';
import { consumerWebhookRoutes } from './consumer-routes.js';

const tags = ['Webhooks'];
const EndpointParams = Id('webhook endpoint id');

/**
 * @example buildControlApp(deps, { adminApi: [webhookAdminRoutes] })
 */
export function webhookAdminRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const hooks = webhookDeps(changeDeps(deps), deps.config);

  app.get('/webhooks/event-types', {
    schema: {
      tags,
      summary: 'List the event types endpoints may subscribe to, with the JSON Schema of each payload',
      response: { 200: ListOf(EventTypeView), ...errorResponses },
    },
    handler: async () => ({
      data: [...eventCatalogue.values()]
        .map((d) => ({ type: d.type, version: d.version, description: d.description, payload: d.payload }))
        .sort((a, b) => a.type.localeCompare(b.type)),
    }),
  });

  app.get('/webhooks/queue', {
    schema: {
      tags,
      summary:
        'The delivery queue: messages pending, events not yet fanned out, age of the oldest due message',
      response: {
        200: T.Object({
          pending: T.Integer({ description: 'messages not yet delivered (due now or waiting for a retry)' }),
          undispatched: T.Integer({ description: 'outbox events the worker has not fanned out yet' }),
          oldestDueAt: T.Union([T.String(), T.Null()], {
            description: 'when the oldest due message was made',
          }),
          oldestDueAgeSeconds: T.Union([T.Number(), T.Null()]),
        }),
        ...errorResponses,
      },
    },
    handler: async () => {
      const now = deps.clock.now();
      const figures = await queueFigures(db, new Date(now).toISOString());
      return {
        ...figures,
        oldestDueAgeSeconds:
          figures.oldestDueAt === null ? null : Math.max(0, (now - Date.parse(figures.oldestDueAt)) / 1000),
      };
    },
  });

  app.get('/webhooks/endpoints', {
    schema: {
      tags,
      summary: 'List webhook endpoints',
      querystring: Pagination,
      response: { 200: PageOf(WebhookEndpointView), ...errorResponses },
    },
    handler: (req) => listEndpoints(db, req.query),
  });

  app.post('/webhooks/endpoints', {
    schema: {
      tags,
      summary: 'Register a webhook endpoint (the signing secret is in the response, once)',
      body: EndpointCreate,
      response: { 201: CreatedEndpoint, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await createEndpoint(hooks, actorOf(req), req.body)),
  });

  app.get('/webhooks/endpoints/:id', {
    schema: {
      tags,
      summary: 'Get a webhook endpoint',
      params: EndpointParams,
      response: { 200: WebhookEndpointView, ...errorResponses },
    },
    handler: (req) => getEndpoint(db, req.params.id),
  });

  app.patch('/webhooks/endpoints/:id', {
    schema: {
      tags,
      summary: 'Update a webhook endpoint (enabling it again clears why Trellis disabled it)',
      params: EndpointParams,
      body: EndpointUpdate,
      response: { 200: WebhookEndpointView, ...errorResponses },
    },
    handler: (req) => updateEndpoint(hooks, actorOf(req), req.params.id, req.body),
  });

  app.delete('/webhooks/endpoints/:id', {
    schema: {
      tags,
      summary: 'Delete a webhook endpoint and its delivery log',
      params: EndpointParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await deleteEndpoint(hooks, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  app.post('/webhooks/endpoints/:id/rotate-secret', {
    schema: {
      tags,
      summary:
        'Give an endpoint a new signing secret (in the response, once); the old one keeps signing beside it for the grace period',
      params: EndpointParams,
      body: SecretRotation,
      response: { 200: RotatedSecret, ...errorResponses },
    },
    handler: (req) =>
      rotateEndpointSecret(
        hooks,
        actorOf(req),
        req.params.id,
        req.body.graceSeconds ?? defaultRotationGraceSeconds,
      ),
  });

  app.get('/webhooks/endpoints/:id/messages', {
    schema: {
      tags,
      summary: "An endpoint's delivery log: its messages, newest first, each with every attempt",
      params: EndpointParams,
      querystring: T.Composite([Pagination, T.Object({ state: T.Optional(MessageState) })]),
      response: { 200: PageOf(Message), ...errorResponses },
    },
    handler: (req) => listEndpointMessages(db, req.params.id, req.query),
  });

  app.post('/webhooks/endpoints/:id/messages/:childId/replay', {
    schema: {
      tags,
      summary: 'Send a message again now (same webhook-id)',
      params: T.Object({ id: T.String({ maxLength: 64 }), childId: T.String({ maxLength: 64 }) }),
      response: { 202: T.Object({ replayed: T.Integer() }), ...errorResponses },
    },
    handler: async (req, reply) => {
      await replayMessage(hooks, req.params.id, req.params.childId);
      return reply.status(202).send({ replayed: 1 });
    },
  });

  app.post('/webhooks/endpoints/:id/test', {
    schema: {
      tags,
      summary:
        'Send a test message (webhook_endpoint.test) to this endpoint only; it shows in the delivery log',
      params: EndpointParams,
      response: { 202: T.Object({ messageId: T.String() }), ...errorResponses },
    },
    handler: async (req, reply) => reply.status(202).send(await sendTestMessage(hooks, req.params.id)),
  });

  app.post('/webhooks/endpoints/:id/recover', {
    schema: {
      tags,
      summary: 'Send again every message of the endpoint that failed since a time',
      params: EndpointParams,
      body: T.Object(
        {
          since: T.String({ format: 'date-time', description: 'messages that failed at or after this time' }),
        },
        { additionalProperties: false },
      ),
      response: { 202: T.Object({ recovered: T.Integer() }), ...errorResponses },
    },
    handler: async (req, reply) => {
      const since = new Date(req.body.since).toISOString();
      return reply.status(202).send({ recovered: await recoverFailedMessages(hooks, req.params.id, since) });
    },
  });
  // consumer webhooks: the event types services declare, publishing, partners' endpoints
  consumerWebhookRoutes(app, deps);
}
