/**
 * The partner programme of seed 001 (Twitter-style), set up as its article does, on SQLite and PostgreSQL, read as
 * the article's checklist (issue 12):
 * - a method per endpoint of the public REST API, mapped by hand-made rules, credentials in headers, a secret token;
 * - the API's docs published for the portal, and later a definition imported, neither counting any call twice
 *   (item 1);
 * - a default Trial plan (GETs only, 100 calls a month), a Public plan on request (1 call a minute and 60 an hour to
 *   mentions_timeline), a hidden Partner plan;
 * - "User Limits" for every end user of the service, whatever the application's plan (item 9);
 * - First and Last Name asked first at signup, a platform select on applications (item 5), invitations that ask
 *   for the required user fields (item 4), and the right place for the credentials on the application's page
 *   (item 6).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listMail } from '../../src/mail/index.js';
import type { WebAgent } from '../portal/web-agent.js';
import { dialects } from '../support/stores.js';
import { type Programme, startProgramme } from './programme-harness.js';

interface Metric {
  id: string;
  systemName: string;
}
interface Plan {
  id: string;
}

const endpoints = [
  ['GET', '/1.1/statuses/mentions_timeline.json', 'mentions_timeline', 'GET statuses/mentions_timeline'],
  ['GET', '/1.1/statuses/user_timeline.json', 'user_timeline', 'GET statuses/user_timeline'],
  ['GET', '/1.1/statuses/home_timeline.json', 'home_timeline', 'GET statuses/home_timeline'],
  ['POST', '/1.1/statuses/update.json', 'statuses_update', 'POST statuses/update'],
  ['POST', '/1.1/statuses/destroy/{id}.json', 'statuses_destroy', 'POST statuses/destroy/:id'],
] as const;

/** The API's documentation, as the provider publishes it (and later imports it as a definition). */
const openapi = {
  openapi: '3.0.3',
  info: { title: 'Twitter public REST API', version: '1.1' },
  servers: [{ url: 'https://api.twitter.test/1.1' }],
  paths: {
    '/statuses/mentions_timeline.json': { get: { operationId: 'mentionsTimeline', responses: {} } },
    '/statuses/update.json': { post: { operationId: 'statusesUpdate', responses: {} } },
    '/favorites/list.json': { get: { operationId: 'favoritesList', summary: 'Liked tweets', responses: {} } },
  },
};

const keysIn = (html: string) => ({
  appId: /<dt>Application id<\/dt><dd><code>([^<]+)<\/code>/.exec(html)?.[1] ?? '',
  key: /id="new-secret" readonly value="([^"]+)"/.exec(html)?.[1] ?? '',
  id: /\/apps\/(app_[0-9a-z]+)\/usage/.exec(html)?.[1] ?? '',
});

describe.each(dialects)('partner programme, Twitter-style (%s)', (dialect) => {
  let p: Programme;
  let serviceId: string;
  let hits: Metric;
  const methods: Record<string, Metric> = {};
  const plans = {} as Record<'trial' | 'public' | 'partner', Plan>;
  let publicApp: { appId: string; key: string };
  let partner: WebAgent;
  let trialApp: { appId: string; key: string; id: string };

  beforeAll(async () => {
    p = await startProgramme(dialect);
  });
  afterAll(() => p.close());

  const headers = (app: { appId: string; key: string }) => ({ 'X-App-Id': app.appId, 'X-App-Key': app.key });

  it('defines a method per endpoint, maps each by hand, sends credentials in headers and a secret token', async () => {
    const service = await p.api<{ id: string; secretToken: string | null }>('POST', '/services', {
      name: 'Twitter public REST API',
      systemName: 'twitter',
      upstreamProduction: p.upstream.url,
      upstreamSandbox: p.upstream.url,
      authMode: 'app_id_app_key',
      credentialsLocation: 'header',
      secretToken: 'only-the-gateway-knows-this',
    });
    serviceId = service.id;
    hits = (await p.api<{ data: Metric[] }>('GET', `/services/${serviceId}/metrics`)).data[0]!;
    for (const [httpMethod, pattern, systemName, friendlyName] of endpoints) {
      const method = await p.api<Metric>('POST', `/services/${serviceId}/methods`, {
        systemName,
        friendlyName,
      });
      methods[systemName] = method;
      await p.api('POST', `/services/${serviceId}/mapping-rules`, {
        httpMethod,
        pattern,
        metricId: method.id,
      });
    }
  });

  it('publishes the API docs for the portal without adding a rule or a method (item 1)', async () => {
    const rulesBefore = (await p.api<{ data: unknown[] }>('GET', `/services/${serviceId}/mapping-rules`))
      .data;
    const published = await p.api('PUT', `/services/${serviceId}/openapi`, openapi);
    expect(published).toEqual({ version: 'openapi 3.0.3', operations: 3 });
    expect((await p.api<{ data: unknown[] }>('GET', `/services/${serviceId}/mapping-rules`)).data).toEqual(
      rulesBefore,
    );
    expect((await p.api<{ data: unknown[] }>('GET', `/services/${serviceId}/methods`)).data).toHaveLength(5);
    const docs = (await p.browser().get(`/apis/${serviceId}/openapi.json`)).json();
    expect(Object.keys(docs.paths)).toContain('/favorites/list.json');
  });

  it('makes a default Trial plan (GETs only, 100 calls a month), a Public plan on request, a hidden Partner plan', async () => {
    plans.trial = await p.api<Plan>('POST', `/services/${serviceId}/plans`, {
      name: 'Trial',
      systemName: 'trial',
    });
    plans.public = await p.api<Plan>('POST', `/services/${serviceId}/plans`, {
      name: 'Public',
      systemName: 'public',
      approvalRequired: true,
    });
    plans.partner = await p.api<Plan>('POST', `/services/${serviceId}/plans`, {
      name: 'Partner',
      systemName: 'partner',
      state: 'hidden',
    });
    for (const m of ['statuses_update', 'statuses_destroy']) {
      await p.api('PUT', `/plans/${plans.trial.id}/disabled-methods/${methods[m]!.id}`);
    }
    const trialLimit = await p.api<{ warnings: unknown[] }>('PUT', `/plans/${plans.trial.id}/limits`, {
      metricId: hits.id,
      period: 'month',
      value: 100,
    });
    expect(trialLimit.warnings).toEqual([]);
    for (const [period, value] of [
      ['minute', 1],
      ['hour', 60],
    ] as const) {
      await p.api('PUT', `/plans/${plans.public.id}/limits`, {
        metricId: methods.mentions_timeline!.id,
        period,
        value,
      });
    }
    await p.api('PUT', `/plans/${plans.partner.id}/limits`, {
      metricId: hits.id,
      period: 'day',
      value: 100_000,
    });
    await p.api('PUT', `/plans/${plans.partner.id}/limits`, {
      metricId: hits.id,
      period: 'minute',
      value: 600,
    });
    const trial = await p.api<{ isDefault: boolean }>('GET', `/plans/${plans.trial.id}`);
    expect(trial.isDefault).toBe(true);
  });

  it('collects First and Last Name first at signup, and the platform of each application (item 5)', async () => {
    for (const [name, label, position] of [
      ['first_name', 'First Name', 10],
      ['last_name', 'Last Name', 20],
    ] as const) {
      await p.api('POST', '/custom-fields', { target: 'user', name, label, required: true, position });
    }
    await p.api('POST', '/custom-fields', {
      target: 'application',
      name: 'platform',
      label: 'Platform',
      required: true,
      choices: ['mobile', 'web', 'desktop'],
    });
    partner = p.browser();
    const form = (await partner.get('/signup')).body;
    const at = (s: string) => form.indexOf(s);
    expect(at('name="ucf_first_name"')).toBeGreaterThan(0);
    expect(at('name="ucf_first_name"')).toBeLessThan(at('name="ucf_last_name"'));
    expect(at('name="ucf_last_name"')).toBeLessThan(at('name="organization"'));
    const signedUp = await partner.post('/signup', {
      ucf_first_name: 'Pat',
      ucf_last_name: 'Partner',
      organization: 'Partner Co',
      name: 'Pat Partner',
      email: 'pat@partner.test',
      password: 'correct horse battery',
    });
    expect(signedUp.statusCode).toBe(303);
    const newApp = (await partner.get(`/apps/new?service=${serviceId}`)).body;
    expect(newApp).toContain('<select id="cf_platform" name="cf_platform" required');
    expect(newApp).toContain('Trial');
    expect(newApp).toContain('Public');
    expect(newApp).not.toContain('Partner</strong>');
    const tv = await partner.submit('/apps/new', {
      serviceId,
      planId: plans.trial.id,
      name: 'TV',
      cf_platform: 'tv',
    });
    expect(tv.statusCode).toBe(400);
    const created = await partner.submit('/apps/new', {
      serviceId,
      planId: plans.trial.id,
      name: 'Dashboard',
      cf_platform: 'web',
    });
    expect(created.posted).toBe(303);
    trialApp = keysIn(created.body);
    expect(trialApp.appId).not.toBe('');
    expect(trialApp.key).not.toBe('');
  });

  it('tells the partner to send the credentials as headers (item 6)', async () => {
    const page = (await partner.get(`/apps/${trialApp.id}`)).body;
    expect(page).toMatch(/data-testid="app-id-place">header <code>X-App-Id<\/code>/);
    expect(page).toMatch(/data-testid="app-key-place"><code>X-App-Key<\/code> header/);
  });

  it('gives the Trial exactly 100 calls a month, reads only, each call counted once (items 1 and 2)', async () => {
    const update = await p.call('/twitter/1.1/statuses/update.json', headers(trialApp), 'POST');
    expect(update.status).toBe(403);
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) {
      const path =
        i % 2 === 0 ? '/twitter/1.1/statuses/home_timeline.json' : '/twitter/1.1/statuses/user_timeline.json';
      statuses.push((await p.call(path, headers(trialApp))).status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(100);
    expect((await p.call('/twitter/1.1/statuses/home_timeline.json', headers(trialApp))).status).toBe(429);
    expect(p.upstream.seen.at(-1)?.headers['x-trellis-secret']).toBe('only-the-gateway-knows-this');
  });

  it('approves a Public application; mentions_timeline answers once a minute, from the first call (item 1)', async () => {
    const accountId = (await p.api<{ data: { id: string; name: string }[] }>('GET', '/accounts')).data.find(
      (a) => a.name === 'Partner Co',
    )!.id;
    const app = await p.api<{ id: string; appId: string; state: string; secret: { value: string } }>(
      'POST',
      '/applications',
      {
        accountId,
        serviceId,
        planId: plans.public.id,
        name: 'Public client',
        customFields: { platform: 'mobile' },
      },
    );
    expect(app.state).toBe('pending');
    await p.api('POST', `/applications/${app.id}/approve`);
    publicApp = { appId: app.appId, key: app.secret.value };
    const mentions = () => p.call('/twitter/1.1/statuses/mentions_timeline.json', headers(publicApp));
    expect((await mentions()).status).toBe(200);
    const second = await mentions();
    expect(second.status).toBe(429);
    p.clock.advance(60_000);
    expect((await mentions()).status).toBe(200);
  });

  it('limits each Twitter user across every plan with the service’s end-user limits, per-plan ones still apply (item 9)', async () => {
    await p.api('PATCH', `/services/${serviceId}`, {
      endUserKeySource: 'header',
      endUserKeyName: 'X-Twitter-User',
    });
    const limit = await p.api<{ id: string }>('PUT', `/services/${serviceId}/end-user-limits`, {
      metricId: methods.home_timeline!.id,
      period: 'minute',
      value: 2,
    });
    expect(
      (await p.api<{ data: { id: string }[] }>('GET', `/services/${serviceId}/end-user-limits`)).data,
    ).toEqual([expect.objectContaining({ id: limit.id, period: 'minute', value: 2 })]);
    await p.api('PUT', `/plans/${plans.public.id}/limits`, {
      metricId: methods.user_timeline!.id,
      period: 'minute',
      value: 1,
      scope: 'end_user',
    });
    p.clock.advance(60_000);
    const as = (user: string, endpoint: string) =>
      p.call(`/twitter/1.1/statuses/${endpoint}.json`, { ...headers(publicApp), 'X-Twitter-User': user });
    const alice = [];
    for (let i = 0; i < 3; i++) alice.push((await as('alice', 'home_timeline')).status);
    expect(alice).toEqual([200, 200, 429]);
    expect((await as('bob', 'home_timeline')).status).toBe(200);
    expect((await as('alice', 'user_timeline')).status).toBe(200);
    expect((await as('alice', 'user_timeline')).status).toBe(429);
    expect((await as('bob', 'user_timeline')).status).toBe(200);
  });

  it('imports the definition later: hand-mapped operations are skipped, a new one gets its method and rule (item 1)', async () => {
    const result = await p.api<{
      methodsCreated: string[];
      added: { operation: string; method: string }[];
      skipped: { operation: string }[];
    }>('POST', `/services/${serviceId}/openapi/import`, openapi);
    expect(result.methodsCreated).toEqual(['favorites_list']);
    expect(result.added).toEqual([
      {
        operation: 'GET /1.1/favorites/list.json',
        method: 'favorites_list',
        pattern: '/1.1/favorites/list.json$',
      },
    ]);
    expect(result.skipped.map((s) => s.operation)).toEqual([
      'GET /1.1/statuses/mentions_timeline.json',
      'POST /1.1/statuses/update.json',
    ]);
    const methodNames = (await p.api<{ data: Metric[] }>('GET', `/services/${serviceId}/methods`)).data.map(
      (m) => m.systemName,
    );
    expect(methodNames.sort()).toEqual([...endpoints.map((e) => e[2]), 'favorites_list'].sort());
    // mentions_timeline still answers the first call of a minute (1 a minute: nothing counts it twice), and the
    // new method counts its calls once on hits
    p.clock.advance(60_000);
    const mentions = () => p.call('/twitter/1.1/statuses/mentions_timeline.json', headers(publicApp));
    expect((await mentions()).status).toBe(200);
    expect((await mentions()).status).toBe(429);
    expect((await p.call('/twitter/1.1/favorites/list.json', headers(publicApp))).status).toBe(200);
  });

  it('asks an invited colleague for the required First and Last Name (item 4)', async () => {
    await partner.get('/team');
    const sent = await partner.submit('/team/invitations', { email: 'sam@partner.test' });
    expect(sent.statusCode).toBe(200);
    const mail = (await listMail(p.store.db)).find((m) => m.to === 'sam@partner.test');
    const link = /\/invitations\/[A-Za-z0-9_-]+/.exec(mail?.text ?? '')?.[0] ?? '';
    const colleague = p.browser();
    const page = (await colleague.get(link)).body;
    expect(page.indexOf('name="ucf_first_name"')).toBeLessThan(page.indexOf('name="name"'));
    const joined = await colleague.post(link, {
      ucf_first_name: 'Sam',
      ucf_last_name: 'Second',
      name: 'Sam Second',
      password: 'correct horse battery',
    });
    expect(joined.statusCode).toBe(303);
    expect((await partner.get('/team')).body).toContain('Sam Second');
  });
});
