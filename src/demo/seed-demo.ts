/**
 * What `trellis start` creates on an empty database: a demo service for the built-in quotes API, with methods,
 * mapping rules and three plans, and a developer account with an application. Built through the domain operations,
 * like any provider would through the management API.
 */
import * as access from '../access/index.js';
import * as catalog from '../catalog/index.js';
import type { Actor, ChangeDeps } from '../events/index.js';

export interface DemoSeed {
  serviceId: string;
  applicationId: string;
  userKey: string;
  keyHeader: string;
  pathPrefix: string;
}

export async function seedDemo(deps: ChangeDeps, actor: Actor, upstreamUrl: string): Promise<DemoSeed> {
  const service = await catalog.createService(deps, actor, {
    name: 'Quotes API (demo)',
    systemName: 'quotes',
    description: 'A small built-in API so you can see Trellis work: list quotes, get one, add one.',
    upstreamProduction: upstreamUrl,
    upstreamSandbox: upstreamUrl,
    authMode: 'user_key',
    credentialsLocation: 'header',
    userKeyName: 'X-API-Key',
    gatewayPathPrefix: '/demo',
    secretToken: 'demo-secret-token-change-me',
  });
  await catalog.importOpenapi(deps, actor, service.id, {
    openapi: '3.1.0',
    info: { title: 'Quotes API', version: '1.0.0', description: 'Quotes worth reading, one call at a time.' },
    paths: {
      '/quotes': {
        get: {
          operationId: 'listQuotes',
          summary: 'List quotes',
          responses: { '200': { description: 'The quotes' } },
        },
        post: {
          operationId: 'createQuote',
          summary: 'Add a quote',
          responses: { '201': { description: 'Accepted' } },
        },
      },
      '/quotes/{id}': {
        get: {
          operationId: 'getQuote',
          summary: 'Get one quote',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
          responses: { '200': { description: 'The quote' }, '404': { description: 'No such quote' } },
        },
      },
    },
  });
  const metrics = await catalog.listMetrics(deps.db, service.id);
  const hits = metrics.find((m) => m.systemName === 'hits')!;
  const create = metrics.find((m) => m.systemName === 'create_quote')!;

  const free = await catalog.createPlan(deps, actor, service.id, {
    name: 'Free',
    systemName: 'free',
    description: '10 calls a minute, 1,000 a day. Read-only.',
  });
  await catalog.setPlanLimit(deps, actor, free.id, { metricId: hits.id, period: 'minute', value: 10 });
  await catalog.setPlanLimit(deps, actor, free.id, { metricId: hits.id, period: 'day', value: 1000 });
  await catalog.setMetricEnabled(deps, actor, free.id, create.id, false);

  const pro = await catalog.createPlan(deps, actor, service.id, {
    name: 'Pro',
    systemName: 'pro',
    description: '600 calls a minute; adding quotes allowed. Approval required.',
    approvalRequired: true,
  });
  await catalog.setPlanLimit(deps, actor, pro.id, { metricId: hits.id, period: 'minute', value: 600 });
  await catalog.setPlanLimit(deps, actor, pro.id, { metricId: create.id, period: 'day', value: 100 });

  const partner = await catalog.createPlan(deps, actor, service.id, {
    name: 'Partner',
    systemName: 'partner',
    description: 'Hidden: for partners the provider moves here by hand.',
    state: 'hidden',
  });
  await catalog.setPlanLimit(deps, actor, partner.id, { metricId: hits.id, period: 'minute', value: 6000 });

  const signup = await access.signupExpress(deps, actor, {
    account: { name: 'Demo Developer Co' },
    user: { email: 'developer@example.com', name: 'Demo Developer', password: 'demo-developer-password' },
    application: { serviceId: service.id, planId: free.id, name: 'Demo app' },
  });
  return {
    serviceId: service.id,
    applicationId: signup.application.id,
    userKey: signup.application.secret.value,
    keyHeader: 'X-API-Key',
    pathPrefix: '/demo',
  };
}
