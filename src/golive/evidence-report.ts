/**
 * The report card of a certification run (issue 11), as the portal shows it to the partner and the console to the
 * provider: each automated check passed or failed with the numbers and call timeline that decided it and what to
 * fix, each manual item with its latest upload, its review and the timeline of earlier uploads; and the plan in
 * plain words. One builder for both faces, so they cannot disagree.
 */
import type { Executor } from '../store/index.js';
import type {
  CertificationPlan,
  CertificationRun,
  CheckKind,
  CheckResult,
  ManualItem,
} from './certification-schemas.js';
import { cdb } from './certification.js';
import { getCertificationRun } from './certification-runs.js';
import { listEvidence } from './evidence.js';
import type { Evidence } from './evidence-schemas.js';

/** What each check measures, in the partner's words. */
export const checkWords: Record<CheckKind, { title: string; measures: string }> = {
  retry_after: {
    title: 'Waits for Retry-After',
    measures:
      'After a 429 Too Many Requests, your client waits at least the Retry-After seconds before calling again.',
  },
  backoff_5xx: {
    title: 'Backs off after server errors',
    measures: 'After a 500 or 503, your client waits longer before each retry instead of retrying at once.',
  },
  token_reuse: {
    title: 'Reuses access tokens',
    measures:
      'Your client keeps an OAuth access token until it expires instead of fetching a new one for every call.',
  },
  webhook_not_poll: {
    title: 'Uses webhooks, not polling',
    measures:
      'After creating something, your client waits for our webhook instead of reading it again and again.',
  },
  idempotency_key: {
    title: 'Sends an Idempotency-Key on retries',
    measures:
      'A POST your client sends again carries the same Idempotency-Key header, so it is not done twice.',
  },
  key_rotation: {
    title: 'Survives a key rotation',
    measures: 'Your client keeps working when its key is rotated: calls go on with the new key.',
  },
  expired_token: {
    title: 'Renews an expired token',
    measures: 'After a 401 for an expired token, your client fetches a new token and calls again.',
  },
  slow_answer: {
    title: 'Handles a slow answer',
    measures:
      'When an answer is late, your client waits for it, or gives up after its timeout and retries once — never sends the same call again in parallel.',
  },
};

/** 2 → 2nd, 3 → 3rd, 11 → 11th, 21 → 21st. */
function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/** The faults a run injects, one sentence each (empty when the plan injects none). */
export function faultSentences(plan: CertificationPlan): string[] {
  const f = plan.faults;
  const out: string[] = [];
  const nth = (n: number) => (n === 1 ? 'every call' : `every ${ordinal(n)} call`);
  if (f.rateLimitEvery > 0)
    out.push(
      `${nth(f.rateLimitEvery)} answers 429 Too Many Requests with Retry-After: ${f.retryAfterSeconds}`,
    );
  if (f.serverErrorEvery > 0) out.push(`${nth(f.serverErrorEvery)} answers 500 Internal Server Error`);
  if (f.unavailableEvery > 0) out.push(`${nth(f.unavailableEvery)} answers 503 Service Unavailable`);
  if (f.slowEvery > 0) out.push(`${nth(f.slowEvery)} is answered ${f.slowMs} ms late`);
  if (f.expiredTokenEvery > 0) out.push(`${nth(f.expiredTokenEvery)} is refused as if its token had expired`);
  return out;
}

export interface CheckLine {
  kind: string;
  title: string;
  measures: string;
  required: boolean;
  /** null: not judged yet. */
  passed: boolean | null;
  numbers: [string, number][];
  timeline: CheckResult['evidence']['timeline'];
  advice: string;
}

export interface ItemLine {
  item: ManualItem;
  /** The upload reviewed (the latest), if any. */
  latest: Evidence | null;
  /** Every upload for the item, newest first. */
  uploads: Evidence[];
  /** accepted → passed, rejected → failed, pending or nothing → null. */
  passed: boolean | null;
}

export interface ReportCard {
  run: CertificationRun;
  checks: CheckLine[];
  items: ItemLine[];
  /** Required items still waiting for an upload or a review. */
  waiting: number;
}

/** The report card of a run: results as judged so far, and its evidence. */
export async function reportCard(db: Executor, run: CertificationRun): Promise<ReportCard> {
  const evidence = await listEvidence(db, run.id);
  const results = new Map(run.results.map((r) => [r.kind, r]));
  const checks: CheckLine[] = run.plan.checks.map((c) => {
    const r = results.get(c.kind);
    const words = checkWords[c.kind];
    return {
      kind: c.kind,
      title: words.title,
      measures: words.measures,
      required: c.required,
      passed: r ? r.passed : null,
      numbers: Object.entries(r?.evidence.numbers ?? {}),
      timeline: r?.evidence.timeline ?? [],
      advice: r?.advice ?? '',
    };
  });
  const items: ItemLine[] = run.plan.manualItems.map((item) => {
    const uploads = evidence.filter((e) => e.itemKey === item.key).reverse();
    const latest = uploads.find((e) => e.latest) ?? null;
    const state = latest?.reviewState;
    return {
      item,
      latest,
      uploads,
      passed: state === 'accepted' ? true : state === 'rejected' ? false : null,
    };
  });
  const waiting = items.filter((i) => i.item.required && i.passed !== true).length;
  return { run, checks, items, waiting };
}

/** The latest run of each application (for the console's go-live requests). */
export async function latestRuns(
  db: Executor,
  applicationIds: string[],
): Promise<Map<string, CertificationRun>> {
  const out = new Map<string, CertificationRun>();
  if (applicationIds.length === 0) return out;
  const latest = await cdb(db)
    .selectFrom('certification_runs')
    .select(['application_id', (eb) => eb.fn.max('id').as('id')])
    .where('application_id', 'in', applicationIds)
    .groupBy('application_id')
    .execute();
  for (const r of latest) out.set(r.application_id, await getCertificationRun(db, String(r.id)));
  return out;
}

/** Runs still running, newest first: what the provider may have evidence to review on. */
export async function runningRuns(db: Executor, limit = 50): Promise<CertificationRun[]> {
  const ids = await cdb(db)
    .selectFrom('certification_runs')
    .select('id')
    .where('state', '=', 'running')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return Promise.all(ids.map((r) => getCertificationRun(db, r.id)));
}
