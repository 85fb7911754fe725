/**
 * A control app with the portal and the console mounted, on a store of its own, with a small catalog: one API
 * with a published default plan, a published plan needing approval and a hidden plan.
 */
import { createAdminToken, createAdminUser } from '../../src/access/index.js';
import { createMetric, createPlan, createService, setPlanLimit } from '../../src/catalog/index.js';
import { loadConfig } from '../../src/config/index.js';
import { consoleModule } from '../../src/console/index.js';
import { type ControlApp, buildControlApp } from '../../src/control/index.js';
import { systemActor } from '../../src/events/index.js';
import { ManualClock } from '../../src/kernel/index.js';
import { type ThrottleOptions, portalModule } from '../../src/portal/index.js';
import type { DialectName } from '../../src/store/index.js';
import { type TestStore, freshStore } from '../support/stores.js';
import { type AgentOrigin, WebAgent } from './web-agent.js';

export interface PortalHarness {
  app: ControlApp;
  store: TestStore;
  clock: ManualClock;
  serviceId: string;
  plans: { free: string; pro: string; secret: string };
  hitsId: string;
  adminEmail: string;
  adminPassword: string;
  adminToken: string;
  /** A browser; `from` sets the socket address and headers (e.g. `X-Forwarded-For`) of its every request. */
  agent(from?: AgentOrigin): WebAgent;
  close(): Promise<void>;
}

export interface PortalHarnessOptions {
  /** `TRELLIS_TRUSTED_PROXIES` (requests come from 127.0.0.1 unless an agent says otherwise). */
  trustedProxies?: string[];
  /** `TRELLIS_OUTBOUND_ALLOW_HOSTS` (a webhook receiver on 127.0.0.1). */
  outboundAllowHosts?: string[];
  /** Login throttling of both faces; default: the faces' defaults. */
  throttle?: ThrottleOptions;
}

export async function startPortal(
  dialect: DialectName = 'sqlite',
  options: PortalHarnessOptions = {},
): Promise<PortalHarness> {
  const store = await freshStore(dialect);
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const config = loadConfig(
    {},
    {
      databaseUrl: store.url,
      logLevel: 'silent',
      trustedProxies: options.trustedProxies ?? [],
      outboundAllowHosts: options.outboundAllowHosts ?? [],
    },
  );
  const deps = { db: store.db, clock };
  const service = await createService(deps, systemActor, {
    name: 'Weather',
    systemName: 'weather',
    upstreamProduction: 'http://127.0.0.1:9/',
    description: 'Forecasts for anywhere.',
  });
  const free = await createPlan(deps, systemActor, service.id, { name: 'Free', systemName: 'free' });
  const pro = await createPlan(deps, systemActor, service.id, {
    name: 'Pro',
    systemName: 'pro',
    approvalRequired: true,
  });
  const secret = await createPlan(deps, systemActor, service.id, {
    name: 'Partner Secret',
    systemName: 'partner_secret',
    state: 'hidden',
  });
  const method = await createMetric(deps, systemActor, service.id, 'method', {
    systemName: 'forecast',
    friendlyName: 'Forecast',
  });
  await setPlanLimit(deps, systemActor, free.id, { metricId: method.id, period: 'day', value: 1000 });
  const hitsId = method.parentId!;
  const adminPassword = 'console-password-1';
  await createAdminUser(deps, systemActor, {
    email: 'admin@provider.test',
    name: 'Ada Admin',
    password: adminPassword,
  });
  const token = await createAdminToken(deps, systemActor, { name: 'tests', scope: 'read_write' });
  const app = await buildControlApp(
    { config, store, clock },
    {
      modules: [
        portalModule({ ...(options.throttle && { throttle: options.throttle }) }),
        consoleModule({ ...(options.throttle && { throttle: options.throttle }) }),
      ],
    },
  );
  await app.ready();
  return {
    app,
    store,
    clock,
    serviceId: service.id,
    plans: { free: free.id, pro: pro.id, secret: secret.id },
    hitsId,
    adminEmail: 'admin@provider.test',
    adminPassword,
    adminToken: token.token,
    agent: (from) => new WebAgent(app, from),
    close: async () => {
      await app.close();
      await store.cleanup();
    },
  };
}

/** Signs up through the portal's form; returns the signed-in agent. */
export async function signUp(h: PortalHarness, email: string, organization = 'Acme'): Promise<WebAgent> {
  const agent = h.agent();
  await agent.get('/signup');
  const res = await agent.post('/signup', {
    organization,
    name: 'Dev Eloper',
    email,
    password: 'correct horse battery',
  });
  if (res.statusCode !== 303) throw new Error(`signup failed: ${res.statusCode} ${res.body.slice(0, 500)}`);
  return agent;
}
