/** Management API of go-live: requests (on the partner's behalf), approval in one call, rejection, revocation. */
import { Type as T } from '@sinclair/typebox';
import { Application } from '../access/index.js';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  actorOf,
  changeDeps,
  errorResponses,
} from '../control/index.js';
import {
  approveGoLive,
  getGoLiveRequest,
  listGoLiveRequests,
  rejectGoLive,
  requestGoLive,
  revokeProduction,
} from './golive.js';
import { programmeFunnel } from './funnel.js';
import { evidenceAdminRoutes } from './evidence-routes.js';
import { deleteCertificationPlan, getCertificationPlan, putCertificationPlan } from './certification.js';
import { CertificationPlanInput, CertificationPlanView, CertificationRun } from './certification-schemas.js';
import {
  cancelCertificationRun,
  evaluateRun,
  getCertificationRun,
  listCertificationRuns,
  startCertificationRun,
} from './certification-runs.js';
import { getApplication } from '../access/index.js';
import { GoLiveAsk, GoLiveDecision, GoLiveReason, GoLiveRequest, GoLiveState } from './schemas.js';

const tags = ['Go-live'];
const Funnel = T.Object({
  stages: T.Array(
    T.Object({
      stage: T.Union([
        T.Literal('signed_up'),
        T.Literal('first_sandbox_call'),
        T.Literal('certified'),
        T.Literal('golive_requested'),
        T.Literal('live'),
      ]),
      accounts: T.Integer(),
    }),
  ),
  medianSecondsToFirstCall: T.Union([T.Number(), T.Null()], {
    description: 'signup → first successful sandbox call',
  }),
  medianSecondsToLive: T.Union([T.Number(), T.Null()], { description: 'signup → go-live approved' }),
  accounts: T.Array(
    T.Object({
      accountId: T.String(),
      name: T.String(),
      signedUpAt: T.String(),
      firstSandboxCallAt: T.Union([T.String(), T.Null()]),
      certifiedAt: T.Union([T.String(), T.Null()], { description: 'the first passed certification run' }),
      goLiveRequestedAt: T.Union([T.String(), T.Null()]),
      liveAt: T.Union([T.String(), T.Null()]),
    }),
  ),
});
const Params = Id('go-live request id');
const certificationTags = ['Certification'];

export function goliveAdminRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.get('/golive/requests', {
    schema: {
      tags,
      summary: 'List go-live requests, newest first (at most 200)',
      querystring: T.Object({
        state: T.Optional(GoLiveState),
        applicationId: T.Optional(T.String({ maxLength: 64 })),
        accountId: T.Optional(T.String({ maxLength: 64 })),
        serviceId: T.Optional(T.String({ maxLength: 64 })),
      }),
      response: { 200: T.Object({ data: T.Array(GoLiveRequest) }), ...errorResponses },
    },
    handler: async (req) => ({ data: await listGoLiveRequests(db, req.query) }),
  });

  app.get('/golive/funnel', {
    schema: {
      tags,
      summary:
        'The programme funnel: accounts signed up → first sandbox call → certified → go-live requested → live, with median times',
      querystring: T.Object({ serviceId: T.Optional(T.String({ maxLength: 64 })) }),
      response: { 200: Funnel, ...errorResponses },
    },
    handler: (req) => programmeFunnel(db, req.query),
  });

  app.get('/golive/requests/:id', {
    schema: {
      tags,
      summary: 'Get a go-live request',
      params: Params,
      response: { 200: GoLiveRequest, ...errorResponses },
    },
    handler: (req) => getGoLiveRequest(db, req.params.id),
  });

  app.post('/applications/:id/golive', {
    schema: {
      tags,
      summary: 'Ask to take a sandbox application live (as the partner would from the portal)',
      params: Id('sandbox application id'),
      body: GoLiveAsk,
      response: { 201: GoLiveRequest, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await requestGoLive(cd, actorOf(req), req.params.id, req.body)),
  });

  app.post('/golive/requests/:id/approve', {
    schema: {
      tags,
      summary:
        'Approve: makes the production application (its first key is collected once by the partner in the portal)',
      params: Params,
      body: GoLiveDecision,
      response: {
        200: T.Object({ request: GoLiveRequest, productionApplication: Application }),
        ...errorResponses,
      },
    },
    handler: (req) => approveGoLive(cd, actorOf(req), req.params.id, req.body),
  });

  app.post('/golive/requests/:id/reject', {
    schema: {
      tags,
      summary: 'Reject, saying why',
      params: Params,
      body: GoLiveReason,
      response: { 200: GoLiveRequest, ...errorResponses },
    },
    handler: (req) => rejectGoLive(cd, actorOf(req), req.params.id, req.body),
  });

  app.post('/golive/requests/:id/revoke', {
    schema: {
      tags,
      summary: 'Revoke production: the production application is suspended and its keys revoked',
      params: Params,
      body: GoLiveReason,
      response: { 200: GoLiveRequest, ...errorResponses },
    },
    handler: (req) => revokeProduction(cd, actorOf(req), req.params.id, req.body),
  });

  app.get('/services/:id/certification-plan', {
    schema: {
      tags: certificationTags,
      summary: "A service's certification plan (404 when it has none)",
      params: Id('service id'),
      response: { 200: CertificationPlanView, ...errorResponses },
    },
    handler: (req) => getCertificationPlan(db, req.params.id),
  });

  app.put('/services/:id/certification-plan', {
    schema: {
      tags: certificationTags,
      summary:
        "Write a service's certification plan: automated checks, faults injected during a run, manual items, window",
      params: Id('service id'),
      body: CertificationPlanInput,
      response: { 200: CertificationPlanView, ...errorResponses },
    },
    handler: (req) => putCertificationPlan(cd, actorOf(req), req.params.id, req.body),
  });

  app.delete('/services/:id/certification-plan', {
    schema: {
      tags: certificationTags,
      summary: "Remove a service's certification plan (go-live then no longer asks for a passed run)",
      params: Id('service id'),
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await deleteCertificationPlan(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  app.post('/applications/:id/certification-runs', {
    schema: {
      tags: certificationTags,
      summary:
        'Start a certification run of a sandbox application (as the partner would from the portal): for the window of the plan, the sandbox gateway injects its faults into the application’s calls',
      params: Id('sandbox application id'),
      body: T.Optional(T.Object({}, { additionalProperties: false })),
      response: { 201: CertificationRun, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await startCertificationRun(cd, actorOf(req), req.params.id)),
  });

  app.get('/applications/:id/certification-runs', {
    schema: {
      tags: certificationTags,
      summary: 'The certification runs of an application, newest first (at most 50)',
      params: Id('application id'),
      response: { 200: T.Object({ data: T.Array(CertificationRun) }), ...errorResponses },
    },
    handler: async (req) => {
      await getApplication(db, req.params.id);
      return { data: await listCertificationRuns(db, req.params.id) };
    },
  });

  app.get('/certification-runs/:id', {
    schema: {
      tags: certificationTags,
      summary:
        'A certification run: its state and the report card — each check and manual item, passed or not, with its numbers, the calls that decided it and what to fix',
      params: Id('certification run id'),
      response: { 200: CertificationRun, ...errorResponses },
    },
    handler: (req) => getCertificationRun(db, req.params.id),
  });

  app.post('/certification-runs/:id/evaluate', {
    schema: {
      tags: certificationTags,
      summary:
        'Judge a running run now on the calls logged so far (the certification job does it every few seconds); a run that ended is returned as it is',
      params: Id('certification run id'),
      body: T.Optional(T.Object({}, { additionalProperties: false })),
      response: { 200: CertificationRun, ...errorResponses },
    },
    handler: (req) => evaluateRun(cd, req.params.id),
  });

  app.post('/certification-runs/:id/cancel', {
    schema: {
      tags: certificationTags,
      summary: 'Cancel a running certification run (the gateway stops injecting faults)',
      params: Id('certification run id'),
      body: T.Optional(T.Object({}, { additionalProperties: false })),
      response: { 200: CertificationRun, ...errorResponses },
    },
    handler: (req) => cancelCertificationRun(cd, actorOf(req), req.params.id),
  });

  evidenceAdminRoutes(app, deps);
}
