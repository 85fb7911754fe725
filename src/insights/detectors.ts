/**
 * The detectors: read the flushed per-minute aggregates of a service over a window and say, per application,
 * which patterns show. Pure reads; `runInsights` (insights.ts) turns detections into findings.
 */
import type { Executor } from '../store/index.js';
import { queryTokenCounts } from '../oauth/index.js';
import { ceilTo, floorTo } from '../usage/index.js';
import { type Health, healthOf } from './health.js';
import {
  type RouteCallRow,
  selectLastActiveDays,
  selectPatterns,
  selectRouteCalls,
  selectServiceApplications,
} from './insights.store.js';
import type { InsightSettings } from './settings.js';
import { resourceOfPattern, subscribedResourceEvents } from '../webhooks/consumer-subscriptions.js';

export type FindingKind =
  | 'token_churn'
  | 'poll_after_create'
  | 'retry_storm'
  | 'error_rate'
  | 'latency_rise'
  | 'dormant';

export const findingKinds: readonly FindingKind[] = [
  'token_churn',
  'poll_after_create',
  'retry_storm',
  'error_rate',
  'latency_rise',
  'dormant',
];

export type Severity = 'low' | 'medium' | 'high';

export interface Detection {
  applicationId: string;
  accountId: string;
  kind: FindingKind;
  /** What within the kind: a route pair, a status class, ''. */
  subject: string;
  severity: Severity;
  numbers: Record<string, number | string>;
  advice: string;
}

export interface ServiceWindow {
  serviceId: string;
  /** Epoch ms; the window is [from, to), whole minutes, the current minute included. */
  from: number;
  to: number;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

/** The window ending with the minute `now` falls in. */
export function windowAt(serviceId: string, now: number, settings: InsightSettings): ServiceWindow {
  const to = ceilTo(new Date(now + 1), 'minute');
  return { serviceId, from: to - settings.windowMinutes * MINUTE, to };
}

const iso = (ms: number) => new Date(ms).toISOString();

function byApplication<T extends { application_id: string }>(rows: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const r of rows) {
    const list = out.get(r.application_id);
    if (list) list.push(r);
    else out.set(r.application_id, [r]);
  }
  return out;
}

function sumCalls(rows: readonly { calls: number }[] | undefined): number {
  let n = 0;
  for (const r of rows ?? []) n += r.calls;
  return n;
}

interface Rule {
  id: string;
  http_method: string;
  pattern: string;
}

function label(rules: Map<string, Rule>, id: string): string {
  const r = rules.get(id);
  return r ? `${r.http_method} ${r.pattern.replace(/\$$/, '')}` : id;
}

/** Proposed create → read pairs when none are declared: a POST rule and a GET rule under its pattern. */
export function proposedPair(rules: Map<string, Rule>, create: string, read: string): boolean {
  const c = rules.get(create);
  const r = rules.get(read);
  if (!c || !r) return false;
  const base = c.pattern.replace(/\$$/, '').replace(/\/$/, '');
  const readPattern = r.pattern.replace(/\$$/, '');
  return readPattern.startsWith(`${base}/`) && readPattern.length > base.length + 1;
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Every detection of a service's applications in its window. */
export async function detect(
  db: Executor,
  w: ServiceWindow,
  settings: InsightSettings,
  now: number,
): Promise<Detection[]> {
  const apps = await selectServiceApplications(db, w.serviceId);
  if (apps.length === 0) return [];
  const accountOf = new Map(apps.map((a) => [a.id, a.account_id]));
  const rules = new Map(
    (
      await db
        .selectFrom('mapping_rules')
        .select(['id', 'http_method', 'pattern'])
        .where('service_id', '=', w.serviceId)
        .execute()
    ).map((r) => [r.id, r]),
  );
  const window = byApplication(
    await selectRouteCalls(db, { serviceId: w.serviceId, from: iso(w.from), to: iso(w.to) }),
  );
  const patterns = byApplication(
    await selectPatterns(db, { serviceId: w.serviceId, from: iso(w.from), to: iso(w.to) }),
  );
  const out: Detection[] = [];
  const push = (d: Omit<Detection, 'accountId'>) => {
    const accountId = accountOf.get(d.applicationId);
    if (accountId !== undefined) out.push({ ...d, accountId });
  };

  // token churn: tokens are counted per hour, so calls are counted over the same whole hours
  const hourFrom = floorTo(new Date(w.from), 'hour');
  const tokens = new Map<string, number>();
  for (const t of await queryTokenCounts(db, {
    serviceId: w.serviceId,
    from: iso(hourFrom),
    to: iso(w.to),
  })) {
    tokens.set(t.applicationId, (tokens.get(t.applicationId) ?? 0) + t.count);
  }
  if (tokens.size > 0) {
    const hourCalls = byApplication(
      await selectRouteCalls(db, { serviceId: w.serviceId, from: iso(hourFrom), to: iso(w.to) }),
    );
    for (const [applicationId, issued] of tokens) {
      const calls = sumCalls(hourCalls.get(applicationId));
      if (calls < settings.minCalls) continue;
      const ratio = issued / calls;
      if (ratio < settings.tokenChurnRatio) continue;
      push({
        applicationId,
        kind: 'token_churn',
        subject: '',
        severity: ratio >= 0.9 ? 'high' : 'medium',
        numbers: {
          tokensIssued: issued,
          apiCalls: calls,
          tokensPerCall: round(ratio),
          threshold: settings.tokenChurnRatio,
        },
        advice:
          `This application requested ${issued} access tokens for ${calls} API calls: a new token for ` +
          `${ratio >= 0.9 ? 'almost every call' : 'many calls'}. Keep the token and reuse it until it expires ` +
          '(expires_in of the token response says when), then request a new one; every token request costs a ' +
          'round trip and load on the authorization server.',
      });
    }
  }

  for (const [applicationId, rows] of patterns) {
    // poll after create
    const reads = new Map<string, number>();
    let earlyRetries = 0;
    let fastRetries5xx = 0;
    let repeated4xx = 0;
    for (const r of rows) {
      if (r.kind === 'early_retry') earlyRetries += r.calls;
      if (r.kind === 'repeat_failure' && r.prior_route === '5xx' && r.lag <= 1) fastRetries5xx += r.calls;
      if (r.kind === 'repeat_failure' && r.prior_route === '4xx') repeated4xx += r.calls;
      if (r.kind !== 'after_create' || r.lag > settings.pollWithinSeconds) continue;
      const declared =
        settings.pollPairs.length > 0
          ? settings.pollPairs.some((p) => p.create === r.prior_route && p.read === r.route)
          : proposedPair(rules, r.prior_route, r.route);
      if (!declared) continue;
      const key = `${r.prior_route} ${r.route}`;
      reads.set(key, (reads.get(key) ?? 0) + r.calls);
    }
    const routeRows = window.get(applicationId) ?? [];
    for (const [key, polls] of reads) {
      const [create = '', read = ''] = key.split(' ');
      const creates = sumCalls(routeRows.filter((r) => r.route === create));
      if (creates < settings.minCreates) continue;
      const ratio = polls / creates;
      if (ratio < settings.pollRatio) continue;
      // polling a resource whose events already reach this application by webhook is the more wasteful (issue 9)
      const subscribed = await subscribedResourceEvents(
        db,
        applicationId,
        w.serviceId,
        resourceOfPattern(rules.get(create)?.pattern ?? ''),
      );
      push({
        applicationId,
        kind: 'poll_after_create',
        subject: `${label(rules, create)} → ${label(rules, read)}`,
        severity: ratio >= 3 || subscribed.length > 0 ? 'high' : 'medium',
        numbers: {
          creates,
          readsSoonAfter: polls,
          readsPerCreate: round(ratio),
          withinSeconds: settings.pollWithinSeconds,
          createRoute: create,
          readRoute: read,
          ...(subscribed.length > 0 && { subscribedEvents: subscribed.join(', ') }),
        },
        advice:
          `After each ${label(rules, create)} this application reads ${label(rules, read)} within ` +
          `${settings.pollWithinSeconds} s (${round(ratio, 1)} reads per create). ` +
          (subscribed.length > 0
            ? `It already receives ${subscribed.join(', ')} by webhook: react to the event when it arrives ` +
              'instead of polling, and read the resource only when an event says it changed.'
            : "Instead of polling, subscribe to the resource's webhook events and react when they arrive; read " +
              'the resource only when an event says it changed.'),
      });
    }
    // retry storm
    if (earlyRetries >= settings.retryStormCalls) {
      const limited = sumCalls(routeRows.filter((r) => r.status_class === '429'));
      push({
        applicationId,
        kind: 'retry_storm',
        subject: 'retry_after',
        severity: earlyRetries >= settings.retryStormCalls * 10 ? 'high' : 'medium',
        numbers: {
          callsBeforeRetryAfter: earlyRetries,
          refusedWith429: limited,
          threshold: settings.retryStormCalls,
        },
        advice:
          `This application made ${earlyRetries} calls after a 429 Too Many Requests before the Retry-After it ` +
          'was given had passed; they are refused again and count against it. On a 429, wait the number of ' +
          'seconds in Retry-After (or until the RateLimit reset) before the next call, and back off exponentially ' +
          'with jitter on repeated failures.',
      });
    }
    if (fastRetries5xx >= settings.retryStormCalls) {
      push({
        applicationId,
        kind: 'retry_storm',
        subject: 'no_backoff_5xx',
        severity: fastRetries5xx >= settings.retryStormCalls * 10 ? 'high' : 'medium',
        numbers: { retriesWithin1s: fastRetries5xx, threshold: settings.retryStormCalls },
        advice:
          `This application repeated ${fastRetries5xx} requests within a second of a server error (5xx). ` +
          'Retrying at once adds load when the API is struggling: back off exponentially with jitter ' +
          '(for example 1 s, 2 s, 4 s … plus a random part) and stop after a few attempts.',
      });
    }
    if (repeated4xx >= settings.retryStormCalls * 2) {
      push({
        applicationId,
        kind: 'retry_storm',
        subject: 'repeated_4xx',
        severity: 'medium',
        numbers: { repeatsWithin5s: repeated4xx, threshold: settings.retryStormCalls * 2 },
        advice:
          `This application sent the same request ${repeated4xx} times within seconds after it was refused ` +
          'with a client error (4xx). The same request gets the same answer: read the error code and fix the ' +
          'request (credentials, path or body) instead of repeating it.',
      });
    }
  }

  // integration health: error rates and a latency rise against the application's own baseline
  const baselineFrom = w.from - settings.baselineHours * 3_600_000;
  let baseline: Map<string, RouteCallRow[]> | null = null;
  for (const [applicationId, rows] of window) {
    const h: Health = healthOf(rows);
    if (h.calls < settings.minCalls) continue;
    if (h.serverErrorRate >= settings.serverErrorRate && settings.serverErrorRate > 0) {
      push({
        applicationId,
        kind: 'error_rate',
        subject: '5xx',
        severity: 'high',
        numbers: {
          calls: h.calls,
          serverErrors: h.byClass['5xx'] ?? 0,
          rate: h.serverErrorRate,
          threshold: settings.serverErrorRate,
        },
        advice:
          `${Math.round(h.serverErrorRate * 100)} % of this application's calls failed with a server error (5xx): ` +
          'the API, not the application, is failing. The provider is looking into it; retry idempotent calls ' +
          'with backoff meanwhile.',
      });
    }
    if (h.clientErrorRate >= settings.clientErrorRate && settings.clientErrorRate > 0) {
      push({
        applicationId,
        kind: 'error_rate',
        subject: '4xx',
        severity: 'medium',
        numbers: {
          calls: h.calls,
          clientErrors: h.byClass['4xx'] ?? 0,
          rate: h.clientErrorRate,
          threshold: settings.clientErrorRate,
        },
        advice:
          `${Math.round(h.clientErrorRate * 100)} % of this application's calls were refused as client errors ` +
          '(4xx, rate limits apart): check the error codes in the responses — credentials, paths or request ' +
          'bodies the API does not accept.',
      });
    }
    baseline ??= byApplication(
      await selectRouteCalls(db, { serviceId: w.serviceId, from: iso(baselineFrom), to: iso(w.from) }),
    );
    const b = healthOf(baseline.get(applicationId) ?? []);
    if (b.calls >= settings.minCalls && b.p95 !== null && h.p95 !== null) {
      if (h.p95 >= b.p95 * settings.latencyRiseFactor && h.p95 - b.p95 >= 50) {
        push({
          applicationId,
          kind: 'latency_rise',
          subject: 'p95',
          severity: h.p95 >= b.p95 * settings.latencyRiseFactor * 3 ? 'high' : 'medium',
          numbers: {
            p95Ms: h.p95,
            baselineP95Ms: b.p95,
            p50Ms: h.p50 ?? 0,
            p99Ms: h.p99 ?? 0,
            factor: settings.latencyRiseFactor,
          },
          advice:
            `Responses to this application got slower: p95 ${h.p95} ms against ${b.p95} ms over the previous ` +
            `${settings.baselineHours} h. If it sends larger requests or new kinds of calls, that may explain it; ` +
            'otherwise the provider is looking into it.',
        });
      }
    }
  }

  // dormant: live applications without usage for dormantDays
  const lastActive = await selectLastActiveDays(db, w.serviceId);
  for (const app of apps) {
    if (Date.parse(app.created_at) > now - settings.dormantDays * DAY) continue;
    if (window.has(app.id) || tokens.has(app.id)) continue;
    const last = lastActive.get(app.id);
    if (last !== undefined && Date.parse(last) >= now - settings.dormantDays * DAY) continue;
    push({
      applicationId: app.id,
      kind: 'dormant',
      subject: last === undefined ? 'never_used' : 'quiet',
      severity: 'low',
      numbers: { days: settings.dormantDays, lastActiveDay: last ?? '' },
      advice:
        last === undefined
          ? `This application has not made a single call in the ${settings.dormantDays} days since it was created. ` +
            'If it is not needed, delete it (and its credentials); unused credentials are a risk.'
          : `This application made no calls for ${settings.dormantDays} days (last on ${last.slice(0, 10)}). If it ` +
            'is retired, delete it and revoke its credentials; if not, check that the integration still runs.',
    });
  }
  return out;
}
