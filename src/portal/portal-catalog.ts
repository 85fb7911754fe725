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
import { csrfHeaderName } from './csrf.js';
import { docsDocument } from './openapi-docs.js';
import type { Developer, PortalFace } from './portal-face.js';

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

async function serviceOr404(face: PortalFace, id: string): Promise<Service> {
  if (id.length > 64) throw notFound('API', id);
  return getService(face.db, id).catch(() => {
    throw notFound('API', id);
  });
}

export function catalogRoutes(scope: FastifyInstance, face: PortalFace): void {
  const { db } = face;

  scope.get('/', async (req, reply) => {
    const services = (await listServices(db, { limit: 200 })).data;
    return face.page(req, reply, 'home', { title: 'APIs', services });
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
    return face.page(req, reply, 'docs', { title: `${service.name} reference`, service, apps });
  });

  scope.get('/apis/:id/openapi.json', async (req, reply) => {
    const { id } = req.params as { id: string };
    const service = await serviceOr404(face, id);
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
