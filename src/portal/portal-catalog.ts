/**
 * The API catalog, a page per API with its published plans, the interactive docs, and the "try it" relay: the
 * docs page calls `/try/<service>/…` on this site, and the relay forwards the call to the gateway, so the page
 * talks only to its own origin and every call is authenticated, limited and counted by the real gateway.
 */
import type { FastifyInstance } from 'fastify';
import { listApplications } from '../access/index.js';
import {
  type Plan,
  type Service,
  getService,
  getServiceOpenapi,
  listMetrics,
  listPlans,
  listServices,
} from '../catalog/index.js';
import { TrellisError, notFound } from '../kernel/index.js';
import { frontPageSlug, readablePage, renderMarkdown } from './content-pages.js';
import { csrfHeaderName } from './csrf.js';
import { docsDocument } from './openapi-docs.js';
import type { Developer, PortalFace } from './portal-face.js';
import { buildSnippets, firstGetPath } from './snippets.js';

/** Headers a "try it" call may carry to the gateway (plus the service's credential headers). */
const relayedHeaders = ['accept', 'content-type', 'authorization'];
/** Largest response the relay passes back to the docs page. */
const maxRelayBytes = 1024 * 1024;

/**
 * Plans a developer may see: the published ones, and a hidden one only if one of their own applications is on it.
 */
export async function visiblePlans(
  face: PortalFace,
  service: Service,
  me: Developer | undefined,
): Promise<Plan[]> {
  const plans = await listPlans(face.db, { serviceId: service.id });
  const own = me
    ? new Set(
        (
          await listApplications(face.db, { accountId: me.account.id, serviceId: service.id }, { limit: 200 })
        ).data.map((a) => a.planId),
      )
    : new Set<string>();
  return plans.filter((p) => p.state === 'published' || own.has(p.id));
}

/**
 * Whether the portal shows a service: the provider published it and it has a published plan, so a partner who
 * finds it can get a key (a draft, or an API without a plan to choose, is a dead end; issue 13).
 */
export async function inPortal(face: PortalFace, service: Service): Promise<boolean> {
  if (service.portalState !== 'published') return false;
  return (await listPlans(face.db, { serviceId: service.id })).some((p) => p.state === 'published');
}

/** The services the portal shows, in the catalog's order. */
export async function portalServices(face: PortalFace): Promise<Service[]> {
  const all = (await listServices(face.db, { limit: 200 })).data;
  const shown = await Promise.all(all.map((s) => inPortal(face, s)));
  return all.filter((_, i) => shown[i]);
}

/**
 * A service the portal shows; `document` (the OpenAPI document, read by URL) asks only that it is published, so a
 * provider can check the docs before making plans.
 */
async function serviceOr404(face: PortalFace, id: string, document = false): Promise<Service> {
  if (id.length > 64) throw notFound('API', id);
  const service = await getService(face.db, id).catch(() => {
    throw notFound('API', id);
  });
  const shown = document ? service.portalState === 'published' : await inPortal(face, service);
  if (!shown) throw notFound('API', id);
  return service;
}

export function catalogRoutes(scope: FastifyInstance, face: PortalFace): void {
  const { db } = face;

  scope.get('/', async (req, reply) => {
    const services = await portalServices(face);
    // the provider's front page (content page `index`), when this visitor may see it (issue 13)
    const me = await face.developer(req);
    const front = await readablePage(db, frontPageSlug, me && { accountId: me.account.id });
    return face.page(req, reply, 'home', {
      title: front?.title ?? 'APIs',
      services,
      front: front ? { title: front.title, html: renderMarkdown(front.body) } : undefined,
    });
  });

  scope.get('/apis/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const service = await serviceOr404(face, id);
    const me = await face.developer(req);
    const [plans, metrics] = await Promise.all([
      visiblePlans(face, service, me),
      listMetrics(db, service.id),
    ]);
    const metricName = Object.fromEntries(metrics.map((m) => [m.id, m.friendlyName]));
    return face.page(req, reply, 'api', { title: service.name, service, plans, metricName });
  });

  scope.get('/apis/:id/docs', async (req, reply) => {
    const { id } = req.params as { id: string };
    const service = await serviceOr404(face, id);
    const me = await face.developer(req);
    const apps = me
      ? (await listApplications(db, { accountId: me.account.id, serviceId: service.id }, { limit: 200 })).data
      : [];
    // what the page offers to copy calls the gateway itself, with the developer's first application of the API
    const snippets = buildSnippets({
      service,
      gatewayUrl: face.deps.config.gatewayPublicUrl,
      tokenUrl: `${face.deps.config.publicUrl.replace(/\/+$/, '')}/oauth/token`,
      path: firstGetPath(await getServiceOpenapi(db, service.id)),
      appId: apps[0]?.appId ?? 'YOUR_APP_ID',
    });
    return face.page(req, reply, 'docs', { title: `${service.name} reference`, service, apps, snippets });
  });

  scope.get('/apis/:id/openapi.json', async (req, reply) => {
    const { id } = req.params as { id: string };
    const service = await serviceOr404(face, id, true);
    const doc = docsDocument(service, await getServiceOpenapi(db, service.id), `/try/${service.id}`);
    return reply.type('application/json').header('Cache-Control', 'no-store').send(doc);
  });

  // The relay passes bodies through untouched: its own scope takes every content type as raw bytes.
  scope.register(async (relay) => {
    relay.removeAllContentTypeParsers();
    relay.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    relayRoute(relay, face);
  });
}

function relayRoute(scope: FastifyInstance, face: PortalFace): void {
  scope.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/try/:id/*',
    // The relay checks its CSRF token itself (a header set by the docs page), whatever the method.
    config: { csrf: 'header' },
    handler: async (req, reply) => {
      const me = await face.developer(req);
      if (!me) throw new TrellisError('unauthenticated', 'Sign in to try the API.');
      const presented = req.headers[csrfHeaderName];
      if (
        !face.csrf.verify(req, typeof presented === 'string' ? presented : undefined, me.session.tokenHash)
      ) {
        throw new TrellisError('csrf_invalid');
      }
      const { id, '*': rest } = req.params as { id: string; '*': string };
      const service = await serviceOr404(face, id);
      const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
      const target = `${face.gatewayUrl.replace(/\/+$/, '')}${service.gatewayPathPrefix}/${rest}${query}`;
      const allowed = new Set([
        ...relayedHeaders,
        service.userKeyName.toLowerCase(),
        service.appIdName.toLowerCase(),
        service.appKeyName.toLowerCase(),
      ]);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (allowed.has(name) && typeof value === 'string') headers[name] = value;
      }
      if (service.gatewayHost) headers.host = service.gatewayHost;
      const body = Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body : undefined;
      let upstream: Response;
      try {
        upstream = await fetch(target, {
          method: req.method,
          headers,
          ...(body !== undefined && { body }),
          redirect: 'manual',
          signal: AbortSignal.timeout(15_000),
        });
      } catch {
        throw new TrellisError('unavailable', 'The API gateway did not answer.');
      }
      const buf = Buffer.from(await upstream.arrayBuffer());
      reply.status(upstream.status);
      for (const name of [
        'content-type',
        'retry-after',
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
        'x-request-id',
      ]) {
        const v = upstream.headers.get(name);
        if (v) reply.header(name, v);
      }
      return reply.header('Cache-Control', 'no-store').send(buf.subarray(0, maxRelayBytes));
    },
  });
}
