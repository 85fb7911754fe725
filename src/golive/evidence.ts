/**
 * Certification evidence (issue 11): the images a partner uploads for the manual items of a certification run
 * ("our logo in your checkout", "what your user sees when our API is down") and the provider's review of each.
 *
 * An image is checked by its bytes (PNG, JPEG, WebP or GIF — a text file renamed `.png` is refused with 415),
 * bounded in size (the `certificationEvidenceMaxBytes` setting, 413 beyond) and stored in the database. Uploads
 * for one item are kept as a timeline; the latest is the one reviewed. After every review the run is judged
 * again (`evaluateRun`), so the last acceptance can pass it.
 */
import { createHash } from 'node:crypto';
import { getApplication } from '../access/index.js';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { TrellisError, invalid, isoNow, newId, notFound } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import { actorLabel, cdb } from './certification.js';
import type { CertificationPlan } from './certification-schemas.js';
import type { CertificationEvidenceTable, CertificationRunTable } from './certification-tables.js';
import type { Evidence, EvidenceContentType, EvidenceReview, ReviewState } from './evidence-schemas.js';

/**
 * The image type of a file by its first bytes (its signature), or null for anything else.
 * PNG: RFC 2083 §12.12; JPEG: SOI + a marker; GIF: "GIF87a"/"GIF89a"; WebP: a RIFF container of form "WEBP".
 * @example imageTypeOf(readFileSync('logo.png')) // 'image/png'
 */
export function imageTypeOf(bytes: Uint8Array): EvidenceContentType | null {
  const starts = (sig: number[], at = 0) => sig.every((b, i) => bytes[at + i] === b);
  const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (starts([0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (starts(ascii('GIF87a')) || starts(ascii('GIF89a'))) return 'image/gif';
  if (bytes.length >= 16 && starts(ascii('RIFF')) && starts(ascii('WEBP'), 8)) return 'image/webp';
  return null;
}

const megabytes = (n: number) => `${Math.round((n / 1_048_576) * 10) / 10} MB`;

/** The refusal of a file too large, in words a partner reads. */
export function evidenceTooLarge(maxBytes: number): TrellisError {
  return new TrellisError(
    'body_too_large',
    `The image is larger than ${megabytes(maxBytes)}, the most this portal accepts; crop it or save it as JPEG or WebP.`,
    { maxBytes },
  );
}

function toEvidence(r: Omit<CertificationEvidenceTable, 'bytes'>, latestId: string | undefined): Evidence {
  return {
    id: r.id,
    runId: r.run_id,
    itemKey: r.item_key,
    contentType: r.content_type as EvidenceContentType,
    size: Number(r.size),
    sha256: r.sha256,
    uploadedBy: r.uploaded_by,
    uploadedAt: r.uploaded_at,
    reviewState: r.review_state as ReviewState,
    reviewComment: r.review_comment,
    reviewedBy: r.reviewed_by,
    reviewedAt: r.reviewed_at,
    latest: r.id === latestId,
  };
}

const metaColumns = [
  'id',
  'run_id',
  'item_key',
  'content_type',
  'size',
  'sha256',
  'uploaded_by',
  'uploaded_at',
  'review_state',
  'review_comment',
  'reviewed_by',
  'reviewed_at',
] as const;

async function runRow(db: Executor, runId: string): Promise<CertificationRunTable> {
  const run = await cdb(db)
    .selectFrom('certification_runs')
    .selectAll()
    .where('id', '=', runId)
    .executeTakeFirst();
  if (!run) throw notFound('certification run', runId);
  return run;
}

/** The latest upload's id per item of a run. */
async function latestIds(db: Executor, runId: string): Promise<Map<string, string>> {
  const rows = await cdb(db)
    .selectFrom('certification_evidence')
    .select(['item_key', (eb) => eb.fn.max('id').as('latest')])
    .where('run_id', '=', runId)
    .groupBy('item_key')
    .execute();
  return new Map(rows.map((r) => [r.item_key, String(r.latest)]));
}

/** Every upload of a run (without its bytes), oldest first: each item's timeline. */
export async function listEvidence(db: Executor, runId: string): Promise<Evidence[]> {
  await runRow(db, runId);
  const latest = await latestIds(db, runId);
  const rows = await cdb(db)
    .selectFrom('certification_evidence')
    .select(metaColumns)
    .where('run_id', '=', runId)
    .orderBy('id')
    .limit(1000)
    .execute();
  return rows.map((r) => toEvidence(r, latest.get(r.item_key)));
}

/** One upload (without its bytes), with the account and application of its run for checks of who asks. */
export async function getEvidence(
  db: Executor,
  id: string,
): Promise<Evidence & { accountId: string; applicationId: string }> {
  const row = await cdb(db)
    .selectFrom('certification_evidence')
    .innerJoin('certification_runs', 'certification_runs.id', 'certification_evidence.run_id')
    .select(metaColumns.map((c) => `certification_evidence.${c}` as const))
    .select(['certification_runs.account_id', 'certification_runs.application_id'])
    .where('certification_evidence.id', '=', id)
    .executeTakeFirst();
  if (!row) throw notFound('evidence', id);
  const latest = await latestIds(db, row.run_id);
  return {
    ...toEvidence(row, latest.get(row.item_key)),
    accountId: row.account_id,
    applicationId: row.application_id,
  };
}

export interface EvidenceFile {
  id: string;
  runId: string;
  accountId: string;
  contentType: EvidenceContentType;
  bytes: Buffer;
}

/** The stored image of an upload; callers check `accountId` against who asks. */
export async function getEvidenceFile(db: Executor, id: string): Promise<EvidenceFile> {
  const row = await cdb(db)
    .selectFrom('certification_evidence')
    .innerJoin('certification_runs', 'certification_runs.id', 'certification_evidence.run_id')
    .select([
      'certification_evidence.id',
      'certification_evidence.run_id',
      'certification_evidence.content_type',
      'certification_evidence.bytes',
      'certification_runs.account_id',
    ])
    .where('certification_evidence.id', '=', id)
    .executeTakeFirst();
  if (!row) throw notFound('evidence', id);
  return {
    id: row.id,
    runId: row.run_id,
    accountId: row.account_id,
    contentType: row.content_type as EvidenceContentType,
    bytes: Buffer.from(row.bytes),
  };
}

function runIdsPayload(run: CertificationRunTable) {
  return {
    runId: run.id,
    applicationId: run.application_id,
    accountId: run.account_id,
    serviceId: run.service_id,
  };
}

export interface EvidenceUpload {
  runId: string;
  itemKey: string;
  bytes: Buffer;
  /** The largest image accepted (the `certificationEvidenceMaxBytes` setting). */
  maxBytes: number;
}

/**
 * A partner uploads an image for a manual item of a running run. Refused: a run that is not running (409), an item
 * the run's plan does not list (404), a file over `maxBytes` (413), bytes that are not a PNG, JPEG, WebP or GIF
 * (415). The upload waits for the provider's review; an earlier one for the item stays in its timeline.
 * Emits `certification.evidence_uploaded`.
 */
export async function uploadEvidence(
  deps: ChangeDeps,
  actor: Actor,
  input: EvidenceUpload,
): Promise<Evidence> {
  if (input.bytes.length > input.maxBytes) throw evidenceTooLarge(input.maxBytes);
  if (input.bytes.length === 0)
    throw invalid([{ field: 'file', message: 'choose an image (PNG, JPEG, WebP or GIF) to upload' }]);
  const contentType = imageTypeOf(input.bytes);
  if (!contentType)
    throw new TrellisError(
      'unsupported_media_type',
      'The file is not a PNG, JPEG, WebP or GIF image (judged by its content, not its name); upload a screenshot in one of these formats.',
    );
  return runChange(deps, actor, async (tx, record) => {
    const run = await runRow(tx, input.runId);
    if (run.state !== 'running')
      throw new TrellisError(
        'invalid_state',
        `The certification run ${run.id} is ${run.state}; evidence is uploaded while a run is running (start a new run).`,
        { runId: run.id, state: run.state },
      );
    const plan = JSON.parse(run.plan) as CertificationPlan;
    if (!plan.manualItems.some((m) => m.key === input.itemKey))
      throw notFound('manual item in the plan of this run', input.itemKey);
    const id = newId('certificationEvidence', deps.clock.now());
    await cdb(tx)
      .insertInto('certification_evidence')
      .values({
        id,
        run_id: run.id,
        item_key: input.itemKey,
        content_type: contentType,
        bytes: input.bytes,
        size: input.bytes.length,
        sha256: createHash('sha256').update(input.bytes).digest('hex'),
        uploaded_by: actorLabel(actor),
        uploaded_at: isoNow(deps.clock),
        review_state: 'pending',
        review_comment: '',
        reviewed_by: null,
        reviewed_at: null,
      })
      .execute();
    const evidence = await getEvidence(tx, id);
    const application = await getApplication(tx, run.application_id);
    await record({
      type: 'certification.evidence_uploaded',
      entityType: 'application',
      entityId: run.application_id,
      payload: { ...runIdsPayload(run), application, evidence: plainEvidence(evidence) },
    });
    return plainEvidence(evidence);
  });
}

/** The evidence as the management API shows it (without the run's ids `getEvidence` adds for access checks). */
function plainEvidence({
  accountId: _account,
  applicationId: _application,
  ...evidence
}: Evidence & { accountId?: string; applicationId?: string }): Evidence {
  return evidence;
}

/**
 * The provider accepts or rejects an upload (a rejection says why: the partner reads it). Only the latest upload of
 * an item of a running run is reviewed. Emits `certification.evidence_reviewed`; then judges the run again with
 * `evaluate` (A1's `evaluateRun`), so the last acceptance can pass it.
 */
export async function reviewEvidence(
  deps: ChangeDeps,
  actor: Actor,
  evidenceId: string,
  input: EvidenceReview,
  evaluate: (runId: string) => Promise<unknown>,
): Promise<Evidence> {
  const comment = input.comment?.trim() ?? '';
  if (input.decision === 'rejected' && !comment)
    throw invalid([{ field: 'comment', message: 'say what to change: the partner reads it' }]);
  const reviewed = await runChange(deps, actor, async (tx, record) => {
    const before = await getEvidence(tx, evidenceId);
    const run = await runRow(tx, before.runId);
    if (run.state !== 'running')
      throw new TrellisError(
        'invalid_state',
        `The certification run ${run.id} is ${run.state}; evidence is reviewed while its run is running.`,
        { runId: run.id, state: run.state },
      );
    if (!before.latest)
      throw new TrellisError(
        'invalid_state',
        `A newer upload replaced ${before.id} for "${before.itemKey}"; review the latest one.`,
        { evidenceId: before.id },
      );
    const now = isoNow(deps.clock);
    await cdb(tx)
      .updateTable('certification_evidence')
      .set({
        review_state: input.decision,
        review_comment: comment,
        reviewed_by: actorLabel(actor),
        reviewed_at: now,
      })
      .where('id', '=', evidenceId)
      .execute();
    const evidence = plainEvidence(await getEvidence(tx, evidenceId));
    const application = await getApplication(tx, run.application_id);
    await record({
      type: 'certification.evidence_reviewed',
      entityType: 'application',
      entityId: run.application_id,
      payload: { ...runIdsPayload(run), application, evidence },
    });
    return evidence;
  });
  await evaluate(reviewed.runId);
  return reviewed;
}
