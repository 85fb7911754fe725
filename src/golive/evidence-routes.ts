/**
 * Management API of certification evidence (issue 11): the uploads of a run, one upload, its image, and the
 * provider's review. Partners upload from the portal; the provider reads and reviews here or in the console.
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  actorOf,
  changeDeps,
  errorResponses,
} from '../control/index.js';
import { evaluateRun } from './certification-runs.js';
import { type EvidenceFile, getEvidence, getEvidenceFile, listEvidence, reviewEvidence } from './evidence.js';
import { Evidence, EvidenceReview, evidenceContentTypes } from './evidence-schemas.js';

const tags = ['Certification'];

/**
 * Sends a stored evidence image as it was checked: its own content type, never sniffed into anything else
 * (`nosniff`), under a CSP that lets nothing in it run (an SVG or HTML could not be stored anyway), not framed,
 * kept by no shared cache.
 */
export function sendEvidenceImage(reply: FastifyReply, file: EvidenceFile): FastifyReply {
  const extension = file.contentType.slice('image/'.length);
  return reply
    .status(200)
    .type(file.contentType)
    .header('X-Content-Type-Options', 'nosniff')
    .header(
      'Content-Security-Policy',
      "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
    )
    .header('Cross-Origin-Resource-Policy', 'same-origin')
    .header('Content-Disposition', `inline; filename="${file.id}.${extension}"`)
    .header('Cache-Control', 'private, no-store')
    .send(file.bytes);
}

export function evidenceAdminRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.get('/certification/runs/:id/evidence', {
    schema: {
      tags,
      summary:
        'List the evidence uploaded for the manual items of a run, oldest first (each item’s timeline)',
      params: Id('certification run id'),
      response: { 200: T.Object({ data: T.Array(Evidence) }), ...errorResponses },
    },
    handler: async (req) => ({ data: await listEvidence(db, req.params.id) }),
  });

  app.get('/certification/evidence/:id', {
    schema: {
      tags,
      summary: 'Get one upload of evidence (without its image)',
      params: Id('evidence id'),
      response: { 200: Evidence, ...errorResponses },
    },
    handler: async (req) => {
      const {
        accountId: _account,
        applicationId: _application,
        ...evidence
      } = await getEvidence(db, req.params.id);
      return evidence;
    },
  });

  app.get('/certification/evidence/:id/content', {
    schema: {
      tags,
      summary: 'The evidence image, with its stored content type (PNG, JPEG, WebP or GIF)',
      params: Id('evidence id'),
      produces: [...evidenceContentTypes],
      response: {
        200: T.String({ format: 'binary', description: 'the image as uploaded' }),
        ...errorResponses,
      },
    },
    handler: async (req, reply) => sendEvidenceImage(reply, await getEvidenceFile(db, req.params.id)),
  });

  app.post('/certification/evidence/:id/review', {
    schema: {
      tags,
      summary:
        'Accept or reject the latest upload of a manual item (a rejection says why); the run is judged again at once',
      params: Id('evidence id'),
      body: EvidenceReview,
      response: { 200: Evidence, ...errorResponses },
    },
    handler: (req) =>
      reviewEvidence(cd, actorOf(req), req.params.id, req.body, (runId) => evaluateRun(cd, runId)),
  });
}
