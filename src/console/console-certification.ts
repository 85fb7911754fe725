/**
 * Certification in the console (issue 11): a service's certification plan editor (checks, injected faults, manual
 * items, automatic approval) over the same functions as `PUT /admin/api/services/{id}/certification-plan`; the
 * review of evidence (accept, or reject saying why) over those of `POST /admin/api/certification/evidence/{id}/review`;
 * and the evidence images, for admins only. The report cards are shown on the go-live page.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getService } from '../catalog/index.js';
import {
  type CertificationPlan,
  type CertificationPlanInput,
  checkKinds,
  checkWords,
  deleteCertificationPlan,
  evaluateRun,
  findCertificationPlan,
  getEvidenceFile,
  putCertificationPlan,
  reviewEvidence,
  sendEvidenceImage,
} from '../golive/index.js';
import { type FieldProblem, TrellisError } from '../kernel/index.js';
import { type Form, Redirect, formOf, problemsOf, safeNext } from '../portal/index.js';
import { type ConsoleFace, adminActor } from './console-face.js';

const faultFields = [
  ['rateLimitEvery', '429 with Retry-After on every Nth call'],
  ['retryAfterSeconds', 'Retry-After of that 429 (seconds)'],
  ['serverErrorEvery', '500 on every Nth call'],
  ['unavailableEvery', '503 on every Nth call'],
  ['slowEvery', 'Slow answer on every Nth call'],
  ['slowMs', 'How late a slow answer is (ms)'],
  ['expiredTokenEvery', 'Expired token on every Nth call'],
] as const;

/** Rows of the manual items table: the plan's items and this many empty ones to add. */
const emptyItemRows = 2;

/** A whole number typed in a form; '' is `fallback`, anything else not a number stays NaN for the schema to name. */
function wholeNumber(form: Form, name: string, fallback: number): number {
  const raw = form.text(name, 20);
  return raw === '' ? fallback : /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
}

/** The plan as the editor's form sends it. */
function planFromForm(form: Form): CertificationPlanInput {
  const checks = checkKinds.flatMap((kind) => {
    const v = form.text(`check_${kind}`, 10);
    return v === 'required' || v === 'optional' ? [{ kind, required: v === 'required' }] : [];
  });
  const faults = Object.fromEntries(
    faultFields.map(([name]) => [name, wholeNumber(form, name, name === 'retryAfterSeconds' ? 2 : 0)]),
  ) as CertificationPlan['faults'];
  const rows = Math.min(Math.max(wholeNumber(form, 'itemRows', 0), 0), 40);
  const manualItems = Array.from({ length: rows }, (_, i) => ({
    key: form.text(`item_${i}_key`, 64),
    title: form.text(`item_${i}_title`, 200),
    description: form.text(`item_${i}_description`, 2000),
    required: form.has(`item_${i}_required`),
  })).filter((m) => m.key !== '' || m.title !== '');
  return {
    checks,
    faults,
    manualItems,
    windowMinutes: wholeNumber(form, 'windowMinutes', 30),
    minCalls: wholeNumber(form, 'minCalls', 20),
    autoApprove: form.has('autoApprove'),
  };
}

export function certificationRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  const { db, cd } = face;
  const serviceId = (req: FastifyRequest) => (req.params as { id: string }).id;

  async function editor(
    req: FastifyRequest,
    reply: FastifyReply,
    id: string,
    shown: { plan: CertificationPlanInput | null; problems?: FieldProblem[]; notice?: string },
    status = 200,
  ) {
    const service = await getService(db, id);
    const stored = await findCertificationPlan(db, id);
    const plan = shown.plan ?? stored?.plan ?? null;
    return face.page(
      req,
      reply,
      'certification-plan',
      {
        title: `Certification plan: ${service.name}`,
        service,
        stored,
        plan,
        checkKinds,
        checkWords,
        faultFields,
        itemRows: (plan?.manualItems?.length ?? 0) + emptyItemRows,
        problems: shown.problems ?? [],
        notice: shown.notice ?? null,
      },
      status,
    );
  }

  scope.get('/services/:id/certification', async (req, reply) => {
    await face.requireAdmin(req);
    const saved = (req.query as Record<string, unknown>).saved;
    return editor(req, reply, serviceId(req), {
      plan: null,
      ...(saved === '1' && { notice: 'Certification plan saved.' }),
      ...(saved === '0' && {
        notice: 'Certification plan removed: go-live no longer asks for a passed run.',
      }),
    });
  });

  scope.post('/services/:id/certification', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const id = serviceId(req);
    const input = planFromForm(formOf(req));
    try {
      await putCertificationPlan(cd, adminActor(admin), id, input);
    } catch (err) {
      const problems = problemsOf(err);
      if (problems) return editor(req, reply, id, { plan: input, problems }, 400);
      throw err;
    }
    throw new Redirect(`/admin/services/${id}/certification?saved=1`);
  });

  scope.post('/services/:id/certification/delete', async (req) => {
    const admin = await face.requireAdmin(req);
    await deleteCertificationPlan(cd, adminActor(admin), serviceId(req));
    throw new Redirect(`/admin/services/${serviceId(req)}/certification?saved=0`);
  });

  scope.get('/certification/evidence/:id', async (req, reply) => {
    await face.requireAdmin(req);
    return sendEvidenceImage(reply, await getEvidenceFile(db, (req.params as { id: string }).id));
  });

  scope.post('/certification/evidence/:id/review', async (req) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    const decision = form.text('decision', 10);
    if (decision !== 'accepted' && decision !== 'rejected')
      throw new TrellisError('validation_failed', 'Choose Accept or Reject.', [
        { field: 'decision', message: 'accepted or rejected' },
      ]);
    await reviewEvidence(
      cd,
      adminActor(admin),
      (req.params as { id: string }).id,
      { decision, comment: form.text('comment', 2000) },
      (runId) => evaluateRun(cd, runId),
    );
    throw new Redirect(safeNext(form.text('back', 500), '/admin/golive'));
  });
}
