/**
 * Webhooks in the portal (issue 9, consumer webhooks): on an application's Webhooks page the partner registers
 * endpoints for the event types its API declares (the signing secret shown once), enables, disables and deletes
 * them, rotates a secret, sends a test event, and reads its endpoints' delivery log with every attempt, replaying
 * a message. Every lookup goes through `ownApplication` and the endpoint's application: another account's
 * endpoint or message is "not found". The API's event types are documented at `/apis/{id}/events`, and
 * `/docs/webhooks` explains how to verify a signature.
 */
import type { FastifyInstance } from 'fastify';
import { getService } from '../catalog/index.js';
import { notFound } from '../kernel/index.js';
import {
  webhookDeps,
  createConsumerEndpoint,
  deleteConsumerEndpoint,
  getConsumerEndpoint,
  listConsumerEndpoints,
  listEndpointMessages,
  listServiceEventTypes,
  replayMessage,
  rotateEndpointSecret,
  sendTestMessage,
  updateConsumerEndpoint,
} from '../webhooks/index.js';
import { setFlash, takeFlash } from './flash.js';
import { inPortal } from './portal-catalog.js';
import { type PortalFace, developerActor, ownApplication } from './portal-face.js';
import { Redirect, formOf, problemsOf } from './web-pages.js';

export function webhookRoutes(scope: FastifyInstance, face: PortalFace): void {
  const { db, cd } = face;
  const flashDeps = { db, clock: cd.clock, publicUrl: face.deps.config.publicUrl };
  const hooks = webhookDeps(cd, face.deps.config);
  const pathOf = (appId: string, endpointId?: string) =>
    `/apps/${appId}/webhooks${endpointId ? `?endpoint=${encodeURIComponent(endpointId)}` : ''}`;

  async function render(
    req: Parameters<PortalFace['page']>[0],
    reply: Parameters<PortalFace['page']>[1],
    appId: string,
    extra: { problems?: { field: string; message: string }[]; values?: Record<string, unknown> } = {},
    status = 200,
  ) {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, appId);
    const service = await getService(db, app.serviceId);
    const flash =
      status === 200
        ? await takeFlash(flashDeps, req, reply, `/apps/${app.id}/webhooks`, me.session.tokenHash)
        : {};
    const endpoints = (await listConsumerEndpoints(db, { applicationId: app.id }, { limit: 200 })).data;
    const eventTypes = await listServiceEventTypes(db, service.id);
    const wanted = (req.query as Record<string, unknown>).endpoint;
    const selected = endpoints.find((e) => e.id === wanted) ?? null;
    const messages = selected ? (await listEndpointMessages(db, selected.id, { limit: 50 })).data : [];
    return face.page(
      req,
      reply,
      'app-webhooks',
      {
        title: `Webhooks: ${app.name}`,
        app,
        service,
        endpoints,
        eventTypes,
        selected,
        messages,
        secret: flash.secret ?? null,
        notice: flash.notice ?? null,
        problems: extra.problems ?? [],
        values: extra.values ?? {},
      },
      status,
    );
  }

  scope.get('/apps/:id/webhooks', async (req, reply) =>
    render(req, reply, (req.params as { id: string }).id),
  );

  scope.post('/apps/:id/webhooks', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const form = formOf(req);
    try {
      const created = await createConsumerEndpoint(hooks, developerActor(me), app.id, {
        url: form.text('url', 2000),
        eventTypes: form.list('eventTypes').slice(0, 200),
        description: form.text('description', 2000),
      });
      await setFlash(flashDeps, req, reply, `/apps/${app.id}/webhooks`, me.session.tokenHash, {
        secret: created.secret,
        notice: 'The endpoint was added. Copy its signing secret now: it is shown only this once.',
      });
      throw new Redirect(pathOf(app.id, created.id));
    } catch (err) {
      const problems =
        problemsOf(err) ??
        (err instanceof Error && 'code' in err && err.code === 'outbound_address_refused'
          ? [{ field: 'url', message: err.message.replace(/^url: /, '') }]
          : undefined);
      if (!problems) throw err;
      const values = {
        url: form.text('url', 2000),
        description: form.text('description', 2000),
        eventTypes: form.list('eventTypes'),
      };
      return render(req, reply, app.id, { problems, values }, 400);
    }
  });

  /** The developer's own endpoint of their own application, or "not found". */
  async function ownEndpoint(req: Parameters<PortalFace['page']>[0]) {
    const me = await face.requireDeveloper(req);
    const { id, endpointId } = req.params as { id: string; endpointId: string };
    const app = await ownApplication(face, me, id);
    if (endpointId.length > 64) throw notFound('webhook endpoint', endpointId);
    const endpoint = await getConsumerEndpoint(db, app.id, endpointId);
    return { me, app, endpoint };
  }

  async function done(
    req: Parameters<PortalFace['page']>[0],
    reply: Parameters<PortalFace['page']>[1],
    target: { me: { session: { tokenHash: string } }; app: { id: string }; endpoint: { id: string } },
    flash: { notice?: string; secret?: string },
  ): Promise<never> {
    await setFlash(
      flashDeps,
      req,
      reply,
      `/apps/${target.app.id}/webhooks`,
      target.me.session.tokenHash,
      flash,
    );
    throw new Redirect(pathOf(target.app.id, target.endpoint.id));
  }

  scope.post('/apps/:id/webhooks/:endpointId/enabled', async (req, reply) => {
    const t = await ownEndpoint(req);
    const enabled = formOf(req).text('enabled', 10) === 'true';
    await updateConsumerEndpoint(hooks, developerActor(t.me), t.app.id, t.endpoint.id, { enabled });
    return done(req, reply, t, {
      notice: enabled ? 'The endpoint is enabled.' : 'The endpoint is disabled.',
    });
  });

  scope.post('/apps/:id/webhooks/:endpointId/rotate', async (req, reply) => {
    const t = await ownEndpoint(req);
    const rotated = await rotateEndpointSecret(hooks, developerActor(t.me), t.endpoint.id);
    return done(req, reply, t, {
      secret: rotated.secret,
      notice:
        'A new signing secret: copy it now, it is shown only this once. The old one keeps signing beside it for 24 hours.',
    });
  });

  scope.post('/apps/:id/webhooks/:endpointId/test', async (req, reply) => {
    const t = await ownEndpoint(req);
    await sendTestMessage(hooks, t.endpoint.id);
    return done(req, reply, t, { notice: 'A test event is on its way; it shows in the delivery log below.' });
  });

  scope.post('/apps/:id/webhooks/:endpointId/delete', async (req, reply) => {
    const t = await ownEndpoint(req);
    await deleteConsumerEndpoint(hooks, developerActor(t.me), t.app.id, t.endpoint.id);
    await setFlash(flashDeps, req, reply, `/apps/${t.app.id}/webhooks`, t.me.session.tokenHash, {
      notice: 'The endpoint and its delivery log were deleted.',
    });
    throw new Redirect(pathOf(t.app.id));
  });

  scope.post('/apps/:id/webhooks/:endpointId/messages/:messageId/replay', async (req, reply) => {
    const t = await ownEndpoint(req);
    const { messageId } = req.params as { messageId: string };
    if (messageId.length > 64) throw notFound('webhook message', messageId);
    await replayMessage(hooks, t.endpoint.id, messageId);
    return done(req, reply, t, { notice: 'The message is sent again (same webhook-id).' });
  });

  // the event types of an API, next to its docs: public as the API's page is
  scope.get('/apis/:id/events', async (req, reply) => {
    const { id } = req.params as { id: string };
    if (id.length > 64) throw notFound('API', id);
    const service = await getService(db, id).catch(() => undefined);
    if (!service || !(await inPortal(face, service))) throw notFound('API', id);
    const eventTypes = await listServiceEventTypes(db, service.id);
    return face.page(req, reply, 'api-events', { title: `${service.name} events`, service, eventTypes });
  });

  scope.get('/docs/webhooks', async (req, reply) =>
    face.page(req, reply, 'webhooks-verify', { title: 'Verifying webhook signatures' }),
  );
}
