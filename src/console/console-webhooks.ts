/**
 * Webhooks in the console (issue 9): the queue's figures; the provider's own endpoints (create with the secret
 * shown once, edit, enable or disable, rotate the secret, send a test event, delete); partners' endpoints across
 * accounts and applications, which the provider may disable and enable; and for both kinds the delivery log with
 * every attempt, a replay of one message and "recover failed since". Every action calls the functions the
 * management API's routes call (src/webhooks/admin-routes.ts, consumer-routes.ts); forms go POST → redirect → GET.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getAccount, getApplication } from '../access/index.js';
import { listServices } from '../catalog/index.js';
import { eventCatalogue } from '../events/index.js';
import { type FieldProblem, TrellisError, invalid, notFound } from '../kernel/index.js';
import { Redirect, checked, formOf, problemsOf, setFlash, takeFlash } from '../portal/index.js';
import {
  EndpointCreate,
  EndpointUpdate,
  webhookDeps,
  type WebhookEndpointView,
  createEndpoint,
  deleteEndpoint,
  getConsumerEndpoint,
  getEndpoint,
  listConsumerEndpoints,
  listEndpointMessages,
  listEndpoints,
  queueFigures,
  recoverFailedMessages,
  replayMessage,
  rotateEndpointSecret,
  sendTestMessage,
  updateConsumerEndpoint,
  updateEndpoint,
} from '../webhooks/index.js';
import { type Admin, type ConsoleFace, adminActor, cursorOf, nextPageUrl } from './console-face.js';

const base = '/admin/webhooks';
const messageStates = ['pending', 'succeeded', 'failed'] as const;
/** Messages of a delivery log shown per page. */
const logPageSize = 50;

/** An endpoint's state as the lists show it: enabled, failing since a time, or disabled (and why). */
export function endpointState(e: WebhookEndpointView): string {
  if (!e.enabled) return e.disabledReason ? `disabled: ${e.disabledReason}` : 'disabled';
  return e.failingSince ? `failing since ${e.failingSince.slice(0, 19).replace('T', ' ')}` : 'enabled';
}

/**
 * The `since` of the recover form: a `datetime-local` value (read as UTC, as the page says) or an ISO time;
 * anything else is a 400 naming the field.
 */
export function sinceOf(raw: string): string {
  const withZone = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(raw) ? `${raw}Z` : raw;
  const at = /^\d{4}-\d{2}-\d{2}T/.test(withZone) ? Date.parse(withZone) : Number.NaN;
  if (Number.isNaN(at)) throw invalid([{ field: 'since', message: 'a time such as 2026-06-01T12:00 (UTC)' }]);
  return new Date(at).toISOString();
}

/** The rate field of the endpoint forms: empty is "no limit" (null); anything else must be a number. */
function rateOf(raw: string): number | null | string {
  if (raw === '') return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : raw;
}

/** The endpoint form (add and edit) as typed, shown again beside its problems, and as the API's body. */
function endpointForm(req: FastifyRequest) {
  const form = formOf(req);
  const values = {
    url: form.text('url', 2000),
    description: form.text('description', 2000),
    eventTypes: form.list('eventTypes').slice(0, 200),
    ratePerSecond: form.text('ratePerSecond', 30),
  };
  const body = {
    url: values.url,
    description: values.description,
    eventTypes: values.eventTypes,
    ratePerSecond: rateOf(values.ratePerSecond),
  };
  return { values, body };
}

/** A refused URL (private address) is a problem of the form's `url` field, like a malformed one. */
function formProblems(err: unknown): FieldProblem[] | undefined {
  if (err instanceof TrellisError && err.code === 'outbound_address_refused')
    return [{ field: 'url', message: err.message.replace(/^url: /, '') }];
  return problemsOf(err);
}

/** A prefixed id from a query string (`acc_…`, `svc_…`), or undefined. */
function idOf(raw: unknown): string | undefined {
  return typeof raw === 'string' && /^[a-z]{1,10}_[0-9A-Za-z]{1,60}$/.test(raw) ? raw : undefined;
}

function idParam(raw: string, what: string): string {
  if (raw.length > 64) throw notFound(what, raw);
  return raw;
}

export function webhookRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  const { db, cd } = face;
  const flashDeps = { db, clock: cd.clock, publicUrl: face.deps.config.publicUrl };
  const hooks = webhookDeps(cd, face.deps.config);
  const catalogue = [...eventCatalogue.values()]
    .map((d) => ({ name: d.type, description: d.description }))
    .sort((a, b) => a.name.localeCompare(b.name));

  /**
   * An endpoint's delivery-log actions, the same for the provider's endpoints and partners' ones: replay one message
   * (same webhook-id) and recover every message that failed since a time. `resolve` finds the endpoint the asker may
   * act on; `refuse` shows the page again with the problems of the form.
   */
  function deliveryLogActions(
    prefix: string,
    resolve: (req: FastifyRequest) => Promise<{ admin: Admin; endpoint: { id: string }; path: string }>,
    refuse: (req: FastifyRequest, reply: FastifyReply, problems: FieldProblem[]) => Promise<unknown>,
  ): void {
    scope.post(`${prefix}/messages/:messageId/replay`, async (req, reply) => {
      const { admin, endpoint, path } = await resolve(req);
      const { messageId } = req.params as { messageId: string };
      await replayMessage(hooks, endpoint.id, idParam(messageId, 'webhook message'));
      return flashTo(req, reply, admin, path, { notice: 'The message is sent again (same webhook-id).' });
    });

    scope.post(`${prefix}/recover`, async (req, reply) => {
      const { admin, endpoint, path } = await resolve(req);
      try {
        const since = sinceOf(formOf(req).text('since', 40));
        const recovered = await recoverFailedMessages(hooks, endpoint.id, since);
        return await flashTo(req, reply, admin, path, {
          notice: `${recovered} failed message(s) sent again.`,
        });
      } catch (err) {
        const problems = problemsOf(err);
        if (!problems) throw err;
        return refuse(req, reply, problems);
      }
    });
  }

  async function flashTo(
    req: FastifyRequest,
    reply: FastifyReply,
    admin: Admin,
    path: string,
    flash: { notice?: string; secret?: string },
  ): Promise<never> {
    await setFlash(flashDeps, req, reply, path, admin.session.tokenHash, flash);
    throw new Redirect(path);
  }

  /** The delivery log of one endpoint, filtered by state, a page at a time. */
  async function deliveryLog(req: FastifyRequest, endpointId: string, path: string) {
    const q = req.query as Record<string, unknown>;
    const state = messageStates.find((s) => s === q.state);
    const cursor = cursorOf(q);
    const page = await listEndpointMessages(db, endpointId, {
      limit: logPageSize,
      ...(cursor && { cursor }),
      ...(state && { state }),
    });
    return {
      messages: page.data,
      state: state ?? '',
      states: messageStates,
      next: nextPageUrl(path, { state: state ?? '' }, page.nextCursor),
    };
  }

  // ---- the Webhooks page: the queue, the provider's endpoints, a form to add one ----

  async function renderList(
    req: FastifyRequest,
    reply: FastifyReply,
    admin: Admin,
    extra: { problems?: FieldProblem[]; values?: Record<string, unknown> } = {},
    status = 200,
  ) {
    const flash = status === 200 ? await takeFlash(flashDeps, req, reply, base, admin.session.tokenHash) : {};
    const now = cd.clock.now();
    const figures = await queueFigures(db, new Date(now).toISOString());
    const endpoints = await listEndpoints(db, { limit: face.pageSize });
    return face.page(
      req,
      reply,
      'webhooks',
      {
        title: 'Webhooks',
        queue: {
          ...figures,
          oldestDueAgeSeconds:
            figures.oldestDueAt === null
              ? null
              : Math.max(0, Math.round((now - Date.parse(figures.oldestDueAt)) / 1000)),
        },
        endpoints: endpoints.data.map((e) => ({ ...e, state: endpointState(e) })),
        more: endpoints.nextCursor !== null,
        catalogue,
        notice: flash.notice ?? null,
        problems: extra.problems ?? [],
        values: extra.values ?? {},
      },
      status,
    );
  }

  scope.get('/webhooks', async (req, reply) => renderList(req, reply, await face.requireAdmin(req)));

  scope.post('/webhooks', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const { values, body } = endpointForm(req);
    try {
      const input = checked(EndpointCreate, body);
      const created = await createEndpoint(hooks, adminActor(admin), input);
      return await flashTo(req, reply, admin, `${base}/${created.id}`, {
        secret: created.secret,
        notice: 'The endpoint was added. Copy its signing secret now: it is shown only this once.',
      });
    } catch (err) {
      const problems = formProblems(err);
      if (!problems) throw err;
      return renderList(req, reply, admin, { problems, values }, 400);
    }
  });

  // ---- partners' endpoints (consumer webhooks) ----
  // Registered before `/webhooks/:id`'s children; Fastify prefers the static `partners` segment anyway.

  scope.get('/webhooks/partners', async (req, reply) => {
    await face.requireAdmin(req);
    const q = req.query as Record<string, unknown>;
    const cursor = cursorOf(q);
    // filters as the API's GET /webhooks/consumer-endpoints has them; anything not an id is no filter
    const filter = {
      ...(idOf(q.accountId) && { accountId: idOf(q.accountId) }),
      ...(idOf(q.serviceId) && { serviceId: idOf(q.serviceId) }),
    };
    const page = await listConsumerEndpoints(db, filter, {
      limit: face.pageSize,
      ...(cursor && { cursor }),
    });
    const appIds = [...new Set(page.data.map((e) => e.applicationId))];
    const accountIds = [...new Set(page.data.map((e) => e.accountId))];
    const [apps, accounts] = await Promise.all([
      Promise.all(appIds.map((id) => getApplication(db, id))),
      Promise.all(accountIds.map((id) => getAccount(db, id))),
    ]);
    const appNames = new Map(apps.map((a) => [a.id, a.name]));
    const accountNames = new Map(accounts.map((a) => [a.id, a.name]));
    const account = filter.accountId ? await getAccount(db, filter.accountId) : null;
    return face.page(req, reply, 'webhook-partners', {
      title: "Partners' webhook endpoints",
      services: (await listServices(db, { limit: 200 })).data,
      serviceId: filter.serviceId ?? '',
      account,
      endpoints: page.data.map((e) => ({
        ...e,
        state: endpointState(e),
        applicationName: appNames.get(e.applicationId) ?? e.applicationId,
        accountName: accountNames.get(e.accountId) ?? e.accountId,
      })),
      next: nextPageUrl(
        `${base}/partners`,
        { accountId: filter.accountId ?? '', serviceId: filter.serviceId ?? '' },
        page.nextCursor,
      ),
    });
  });

  /** A partner's endpoint by its application and id; another application's (or the provider's) is "not found". */
  async function partnerEndpoint(req: FastifyRequest) {
    const admin = await face.requireAdmin(req);
    const { appId, id } = req.params as { appId: string; id: string };
    const endpoint = await getConsumerEndpoint(
      db,
      idParam(appId, 'application'),
      idParam(id, 'webhook endpoint'),
    );
    return { admin, endpoint, path: `${base}/partners/${endpoint.applicationId}/${endpoint.id}` };
  }

  async function renderPartner(
    req: FastifyRequest,
    reply: FastifyReply,
    problems: FieldProblem[] = [],
    status = 200,
  ) {
    const { admin, endpoint, path } = await partnerEndpoint(req);
    const flash = status === 200 ? await takeFlash(flashDeps, req, reply, path, admin.session.tokenHash) : {};
    const [application, account] = await Promise.all([
      getApplication(db, endpoint.applicationId),
      getAccount(db, endpoint.accountId),
    ]);
    return face.page(
      req,
      reply,
      'webhook-partner',
      {
        title: `Webhook endpoint of ${application.name}`,
        endpoint: { ...endpoint, state: endpointState(endpoint) },
        application,
        account,
        path,
        notice: flash.notice ?? null,
        problems,
        log: await deliveryLog(req, endpoint.id, path),
      },
      status,
    );
  }

  scope.get('/webhooks/partners/:appId/:id', async (req, reply) => renderPartner(req, reply));

  scope.post('/webhooks/partners/:appId/:id/enabled', async (req, reply) => {
    const { admin, endpoint, path } = await partnerEndpoint(req);
    const enabled = formOf(req).text('enabled', 10) === 'true';
    await updateConsumerEndpoint(hooks, adminActor(admin), endpoint.applicationId, endpoint.id, { enabled });
    return flashTo(req, reply, admin, path, {
      notice: enabled
        ? 'The endpoint is enabled.'
        : 'The endpoint is disabled: it receives nothing until enabled.',
    });
  });

  deliveryLogActions('/webhooks/partners/:appId/:id', partnerEndpoint, (req, reply, problems) =>
    renderPartner(req, reply, problems, 400),
  );

  // ---- one provider endpoint: its settings, actions and delivery log ----

  async function providerEndpoint(req: FastifyRequest) {
    const admin = await face.requireAdmin(req);
    const { id } = req.params as { id: string };
    const endpoint = await getEndpoint(db, idParam(id, 'webhook endpoint'));
    return { admin, endpoint, path: `${base}/${endpoint.id}` };
  }

  async function renderEndpoint(
    req: FastifyRequest,
    reply: FastifyReply,
    extra: { problems?: FieldProblem[]; values?: Record<string, unknown> } = {},
    status = 200,
  ) {
    const { admin, endpoint, path } = await providerEndpoint(req);
    const flash = status === 200 ? await takeFlash(flashDeps, req, reply, path, admin.session.tokenHash) : {};
    return face.page(
      req,
      reply,
      'webhook-endpoint',
      {
        title: `Webhook endpoint ${endpoint.url}`,
        endpoint: { ...endpoint, state: endpointState(endpoint) },
        path,
        catalogue,
        secret: flash.secret ?? null,
        notice: flash.notice ?? null,
        problems: extra.problems ?? [],
        values: extra.values ?? {
          url: endpoint.url,
          description: endpoint.description,
          eventTypes: endpoint.eventTypes,
          ratePerSecond:
            endpoint.ratePerSecond === null || endpoint.ratePerSecond === undefined
              ? ''
              : String(endpoint.ratePerSecond),
        },
        log: await deliveryLog(req, endpoint.id, path),
      },
      status,
    );
  }

  scope.get('/webhooks/:id', async (req, reply) => renderEndpoint(req, reply));

  scope.post('/webhooks/:id', async (req, reply) => {
    const { admin, endpoint, path } = await providerEndpoint(req);
    const { values, body } = endpointForm(req);
    try {
      const input = checked(EndpointUpdate, body);
      await updateEndpoint(hooks, adminActor(admin), endpoint.id, input);
      return await flashTo(req, reply, admin, path, { notice: 'The endpoint was saved.' });
    } catch (err) {
      const problems = formProblems(err);
      if (!problems) throw err;
      return renderEndpoint(req, reply, { problems, values }, 400);
    }
  });

  scope.post('/webhooks/:id/enabled', async (req, reply) => {
    const { admin, endpoint, path } = await providerEndpoint(req);
    const enabled = formOf(req).text('enabled', 10) === 'true';
    await updateEndpoint(hooks, adminActor(admin), endpoint.id, { enabled });
    return flashTo(req, reply, admin, path, {
      notice: enabled
        ? 'The endpoint is enabled.'
        : 'The endpoint is disabled: it receives nothing until enabled.',
    });
  });

  scope.post('/webhooks/:id/rotate', async (req, reply) => {
    const { admin, endpoint, path } = await providerEndpoint(req);
    const rotated = await rotateEndpointSecret(hooks, adminActor(admin), endpoint.id);
    return flashTo(req, reply, admin, path, {
      secret: rotated.secret,
      notice:
        'A new signing secret: copy it now, it is shown only this once. The old one keeps signing beside it for 24 hours.',
    });
  });

  scope.post('/webhooks/:id/test', async (req, reply) => {
    const { admin, endpoint, path } = await providerEndpoint(req);
    await sendTestMessage(hooks, endpoint.id);
    return flashTo(req, reply, admin, path, {
      notice: 'A test event is on its way; it shows in the delivery log below.',
    });
  });

  scope.post('/webhooks/:id/delete', async (req, reply) => {
    const { admin, endpoint } = await providerEndpoint(req);
    await deleteEndpoint(hooks, adminActor(admin), endpoint.id);
    return flashTo(req, reply, admin, base, { notice: 'The endpoint and its delivery log were deleted.' });
  });

  deliveryLogActions('/webhooks/:id', providerEndpoint, (req, reply, problems) =>
    renderEndpoint(req, reply, { problems }, 400),
  );
}
