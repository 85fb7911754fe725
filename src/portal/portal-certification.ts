/**
 * Certification in the portal (issue 11): on a sandbox application whose service has a certification plan, the
 * partner reads the plan in plain words, starts a run, uploads an image per manual item while it runs, and reads
 * the report card — each check passed or failed with the calls that decided it and what to fix, each item with the
 * provider's review — for the latest run and every past one; then runs again.
 *
 * The upload is the portal's one multipart form: parsed only on its own route (a child scope), bounded (one file
 * of at most `certificationEvidenceMaxBytes`, a few short fields), with the CSRF field checked once the form is
 * read. An evidence image is served only to the users of the run's account.
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Application } from '../access/index.js';
import { getService } from '../catalog/index.js';
import {
  type CertificationRun,
  checkWords,
  evidenceTooLarge,
  faultSentences,
  findCertificationPlan,
  getEvidence,
  getEvidenceFile,
  listCertificationRuns,
  reportCard,
  sendEvidenceImage,
  startCertificationRun,
  uploadEvidence,
} from '../golive/index.js';
import { type FieldProblem, TrellisError, notFound } from '../kernel/index.js';
import { setFlash, takeFlash } from './flash.js';
import { type Developer, type PortalFace, developerActor, ownApplication } from './portal-face.js';
import { Redirect } from './web-pages.js';

/** Refusals of an upload shown beside the form (with their status), not as an error page. */
const formProblems = new Set(['body_too_large', 'unsupported_media_type', 'validation_failed', 'not_found']);

export async function certificationRoutes(scope: FastifyInstance, face: PortalFace): Promise<void> {
  const { db, cd } = face;
  const maxBytes = face.deps.config.certificationEvidenceMaxBytes;
  const flashDeps = { db, clock: cd.clock, publicUrl: face.deps.config.publicUrl };
  const pathOf = (id: string) => `/apps/${id}/certification`;

  async function showPage(
    req: FastifyRequest,
    reply: FastifyReply,
    me: Developer,
    app: Application,
    extra: { notice?: string | null; problems?: FieldProblem[]; runId?: string } = {},
    status = 200,
  ) {
    const plan = await findCertificationPlan(db, app.serviceId);
    const runs = await listCertificationRuns(db, app.id);
    const running = runs.find((r) => r.state === 'running') ?? null;
    const shown: CertificationRun | null = extra.runId
      ? (runs.find((r) => r.id === extra.runId) ?? null)
      : (runs[0] ?? null);
    if (extra.runId && !shown) throw notFound('certification run', extra.runId);
    const card = shown ? await reportCard(db, shown) : null;
    return face.page(
      req,
      reply,
      'certification',
      {
        title: `Certification: ${app.name}`,
        app,
        service: await getService(db, app.serviceId),
        plan: plan?.plan ?? null,
        faults: plan ? faultSentences(plan.plan) : [],
        checkWords,
        runs,
        running,
        card,
        // the upload forms follow the running run, whichever run's card is shown
        runningCard: running ? (running.id === card?.run.id ? card : await reportCard(db, running)) : null,
        maxMegabytes: Math.round((maxBytes / 1_048_576) * 10) / 10,
        notice: extra.notice ?? null,
        problems: extra.problems ?? [],
        me,
      },
      status,
    );
  }

  scope.get('/apps/:id/certification', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const flash = await takeFlash(flashDeps, req, reply, pathOf(app.id), me.session.tokenHash);
    const run = (req.query as Record<string, unknown>).run;
    return showPage(req, reply, me, app, {
      notice: flash.notice ?? null,
      ...(typeof run === 'string' && run.length <= 64 && { runId: run }),
    });
  });

  scope.post('/apps/:id/certification/start', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    await startCertificationRun(cd, developerActor(me), app.id);
    await setFlash(flashDeps, req, reply, pathOf(app.id), me.session.tokenHash, {
      notice: 'Your certification run started: call the sandbox as your integration does.',
    });
    throw new Redirect(pathOf(app.id));
  });

  scope.get('/apps/:id/certification/evidence/:evidenceId', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const { id, evidenceId } = req.params as { id: string; evidenceId: string };
    const app = await ownApplication(face, me, id);
    const evidence = await getEvidence(db, evidenceId);
    // another account's evidence is "not found", exactly like evidence that does not exist
    if (evidence.accountId !== me.account.id || evidence.applicationId !== app.id)
      throw notFound('evidence', evidenceId);
    return sendEvidenceImage(reply, await getEvidenceFile(db, evidenceId));
  });

  await scope.register(async (uploads: FastifyInstance) => {
    await uploads.register(multipart, {
      throwFileSizeLimit: true,
      limits: { fileSize: maxBytes, files: 1, fields: 4, fieldSize: 1024, parts: 5, headerPairs: 50 },
    });
    uploads.post(
      '/apps/:id/certification/evidence',
      // the CSRF field is inside the multipart body: checked below, once the form is read
      { config: { csrf: 'header' } },
      async (req, reply) => {
        const me = await face.requireDeveloper(req);
        if (!req.isMultipart())
          throw new TrellisError(
            'unsupported_media_type',
            'Upload the image with the form (multipart/form-data).',
          );
        const fields: Record<string, string> = {};
        let bytes: Buffer | undefined;
        try {
          for await (const part of req.parts()) {
            if (part.type === 'file') {
              const content = await part.toBuffer();
              if (part.fieldname === 'file') bytes = content;
            } else if (typeof part.value === 'string') fields[part.fieldname] = part.value;
          }
        } catch (err) {
          if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') {
            if (!face.csrf.verify(req, fields._csrf, me.session.tokenHash))
              throw new TrellisError('csrf_invalid');
            const app = await ownApplication(face, me, (req.params as { id: string }).id);
            return showPage(req, reply, me, app, { problems: [problemOf(evidenceTooLarge(maxBytes))] }, 413);
          }
          throw err;
        }
        if (!face.csrf.verify(req, fields._csrf, me.session.tokenHash))
          throw new TrellisError('csrf_invalid');
        const app = await ownApplication(face, me, (req.params as { id: string }).id);
        const runs = await listCertificationRuns(db, app.id);
        const run = runs.find((r) => r.id === fields.run);
        if (!run) throw notFound('certification run', String(fields.run ?? ''));
        try {
          await uploadEvidence(cd, developerActor(me), {
            runId: run.id,
            itemKey: fields.item ?? '',
            bytes: bytes ?? Buffer.alloc(0),
            maxBytes,
          });
        } catch (err) {
          if (err instanceof TrellisError && formProblems.has(err.code))
            return showPage(req, reply, me, app, { problems: [problemOf(err)] }, err.status);
          throw err;
        }
        await setFlash(flashDeps, req, reply, pathOf(app.id), me.session.tokenHash, {
          notice: 'Your image was uploaded; the provider reviews it.',
        });
        throw new Redirect(pathOf(app.id));
      },
    );
  });
}

function problemOf(err: TrellisError): FieldProblem {
  return { field: 'file', message: err.message };
}
