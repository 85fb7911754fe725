/**
 * Findings: detections become records (one open finding per application, kind and subject), seen again they
 * are refreshed, unseen for `resolveAfterMinutes` they resolve themselves. Each new finding and each resolution
 * is an event (`insight.detected`, `insight.resolved`) in the outbox, written with the finding in one transaction.
 */
import { type ChangeDeps, runChange, systemActor } from '../events/index.js';
import { type Clock, TrellisError, newId, notFound } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import { type Detection, detect, windowAt } from './detectors.js';
import type { InsightFindingTable } from './insights-tables.js';
import {
  type FindingFilter,
  insertFinding,
  selectFinding,
  selectFindings,
  selectLiveFindings,
  selectServiceIds,
  selectSettings,
  selectTimeline,
  updateFinding,
  upsertSettings,
} from './insights.store.js';
import { type InsightSettings, mergeSettings } from './settings.js';
import { detectStaleCredentials, KEY_SUBJECT_PREFIX } from './stale-credentials.js';

export interface FindingView {
  id: string;
  serviceId: string;
  applicationId: string;
  accountId: string;
  kind: string;
  subject: string;
  severity: string;
  state: string;
  firstSeen: string;
  lastSeen: string;
  resolvedAt: string | null;
  evidence: { numbers: Record<string, number | string>; timeline: Record<string, number | string>[] };
  advice: string;
}

export function findingView(row: InsightFindingTable): FindingView {
  let evidence: FindingView['evidence'] = { numbers: {}, timeline: [] };
  try {
    evidence = JSON.parse(row.evidence) as FindingView['evidence'];
  } catch {
    // written by us; never unparsable
  }
  return {
    id: row.id,
    serviceId: row.service_id,
    applicationId: row.application_id,
    accountId: row.account_id,
    kind: row.kind,
    subject: row.subject,
    severity: row.severity,
    state: row.state,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    resolvedAt: row.resolved_at,
    evidence,
    advice: row.advice,
  };
}

const TIMELINE_MINUTES = 30;

/** The key that keeps one unresolved finding per application, kind and subject. */
export function openKey(applicationId: string, kind: string, subject: string): string {
  return `${applicationId}|${kind}|${subject}`;
}

export async function serviceInsightSettings(db: Executor, serviceId: string): Promise<InsightSettings> {
  return mergeSettings(await selectSettings(db, serviceId));
}

export interface InsightsRun {
  detected: number;
  refreshed: number;
  resolved: number;
}

function findingPayload(view: FindingView): Record<string, unknown> {
  return {
    finding: view,
    findingId: view.id,
    applicationId: view.applicationId,
    accountId: view.accountId,
    serviceId: view.serviceId,
  };
}

/** Runs every detector over every service's window ending now, and updates the findings. */
export async function runInsights(deps: ChangeDeps, now: number = deps.clock.now()): Promise<InsightsRun> {
  const run: InsightsRun = { detected: 0, refreshed: 0, resolved: 0 };
  for (const serviceId of await selectServiceIds(deps.db)) {
    const settings = await serviceInsightSettings(deps.db, serviceId);
    const w = windowAt(serviceId, now, settings);
    const detections = await detect(deps.db, w, settings, now);
    const quiet = new Set(detections.filter((d) => d.kind === 'dormant').map((d) => d.applicationId));
    detections.push(...(await detectStaleCredentials(deps.db, serviceId, settings, now, quiet)));
    const live = await selectLiveFindings(deps.db, serviceId);
    const key = (d: { applicationId: string; kind: string; subject: string }) =>
      `${d.applicationId}|${d.kind}|${d.subject}`;
    const liveByKey = new Map(
      live.map((f) => [key({ applicationId: f.application_id, kind: f.kind, subject: f.subject }), f]),
    );
    const nowIso = new Date(now).toISOString();
    const seen = new Set<string>();
    for (const d of detections) {
      const k = key(d);
      seen.add(k);
      const timeline = await selectTimeline(deps.db, {
        applicationId: d.applicationId,
        from: new Date(Math.max(w.from, w.to - TIMELINE_MINUTES * 60_000)).toISOString(),
        to: new Date(w.to).toISOString(),
        max: TIMELINE_MINUTES,
      });
      const evidence = JSON.stringify({ numbers: d.numbers, timeline });
      const existing = liveByKey.get(k);
      if (existing) {
        await updateFinding(deps.db, existing.id, {
          last_seen: nowIso,
          severity: d.severity,
          evidence,
          advice: d.advice,
          updated_at: nowIso,
        });
        run.refreshed++;
        continue;
      }
      if (await openFinding(deps, d, evidence, nowIso)) run.detected++;
    }
    for (const [k, f] of liveByKey) {
      if (seen.has(k)) continue;
      // a dormant key is a state, not a pattern in a window: used or revoked, its finding resolves at once
      const keyFinding = f.kind === 'dormant' && f.subject.startsWith(KEY_SUBJECT_PREFIX);
      if (!keyFinding && Date.parse(f.last_seen) > now - settings.resolveAfterMinutes * 60_000) continue;
      await setState(deps, f, 'resolved', nowIso, systemActor);
      run.resolved++;
    }
  }
  return run;
}

/** Opens a finding with its event; false when another run opened it first. */
async function openFinding(
  deps: ChangeDeps,
  d: Detection,
  evidence: string,
  nowIso: string,
): Promise<boolean> {
  const row: InsightFindingTable = {
    id: newId('finding', Date.parse(nowIso)),
    service_id: '',
    application_id: d.applicationId,
    account_id: d.accountId,
    kind: d.kind,
    subject: d.subject,
    severity: d.severity,
    state: 'open',
    first_seen: nowIso,
    last_seen: nowIso,
    resolved_at: null,
    evidence,
    advice: d.advice,
    created_at: nowIso,
    updated_at: nowIso,
    open_key: openKey(d.applicationId, d.kind, d.subject),
  };
  const app = await deps.db
    .selectFrom('applications')
    .select('service_id')
    .where('id', '=', d.applicationId)
    .executeTakeFirst();
  row.service_id = app?.service_id ?? '';
  return runChange(deps, systemActor, async (tx, record) => {
    if (!(await insertFinding(tx, row))) return false;
    await record({
      type: 'insight.detected',
      entityType: 'insight_finding',
      entityId: row.id,
      payload: findingPayload(findingView(row)),
    });
    return true;
  });
}

type FindingState = 'open' | 'acknowledged' | 'resolved';

async function setState(
  deps: ChangeDeps,
  f: InsightFindingTable,
  state: FindingState,
  nowIso: string,
  actor: Parameters<typeof runChange>[1],
): Promise<InsightFindingTable> {
  const fields: Partial<InsightFindingTable> = {
    state,
    updated_at: nowIso,
    resolved_at: state === 'resolved' ? nowIso : null,
    ...(state === 'resolved' && { open_key: null }),
  };
  const next = { ...f, ...fields };
  await runChange(deps, actor, async (tx, record) => {
    await updateFinding(tx, f.id, fields);
    if (state === 'resolved') {
      await record({
        type: 'insight.resolved',
        entityType: 'insight_finding',
        entityId: f.id,
        payload: findingPayload(findingView(next)),
      });
    }
  });
  return next;
}

/** A finding by id. */
export async function getFinding(db: Executor, id: string): Promise<FindingView> {
  const row = await selectFinding(db, id);
  if (!row) throw notFound('finding', id);
  return findingView(row);
}

/** Acknowledges (the provider or partner saw it) or resolves a finding by hand. */
export async function changeFindingState(
  deps: ChangeDeps,
  actor: Parameters<typeof runChange>[1],
  id: string,
  state: 'acknowledged' | 'resolved',
): Promise<FindingView> {
  const row = await selectFinding(deps.db, id);
  if (!row) throw notFound('finding', id);
  if (row.state === 'resolved') {
    throw new TrellisError('invalid_state', 'The finding is resolved already.');
  }
  if (row.state === state) return findingView(row);
  return findingView(await setState(deps, row, state, new Date(deps.clock.now()).toISOString(), actor));
}

export async function listFindings(
  db: Executor,
  filter: FindingFilter,
): Promise<{ data: FindingView[]; nextCursor: string | null }> {
  const page = await selectFindings(db, filter);
  return { data: page.data.map(findingView), nextCursor: page.nextCursor };
}

export async function updateInsightSettings(
  db: Executor,
  clock: Clock,
  serviceId: string,
  patch: Partial<InsightSettings>,
): Promise<InsightSettings> {
  const current = await serviceInsightSettings(db, serviceId);
  const next = { ...current, ...patch };
  await upsertSettings(db, serviceId, JSON.stringify(next), new Date(clock.now()).toISOString());
  return next;
}
