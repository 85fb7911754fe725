/**
 * The automated checks of a certification run (issue 11): what the client did next after the faults the gateway
 * injected, judged from the run's call log (`certification_calls`, written by the usage flush). Where a check and
 * an insights detector overlap, the definition is the detector's: calls before Retry-After and retries of a failed
 * request are counted by the same `CallPatterns` the gateway feeds insights with, polls after a create are the
 * detector's create → read pairs within `pollWithinSeconds`, token churn is tokens per call at or above the
 * service's `tokenChurnRatio`. Each result carries its numbers, the calls that decided it, and advice.
 */
import { type InsightSettings, proposedPair } from '../insights/index.js';
import { CallPatterns } from '../usage/index.js';
import type { CertificationPlan, CheckKind, CheckResult, TimelineEntry } from './certification-schemas.js';
import type { CertificationCallTable } from './certification-tables.js';

export type CallRow = Omit<CertificationCallTable, 'id'> & { id: number };

interface Rule {
  id: string;
  http_method: string;
  pattern: string;
}

export interface CheckInput {
  calls: readonly CallRow[];
  plan: CertificationPlan;
  settings: InsightSettings;
  /** The service's mapping rules (create → read pairs of the poll detector). */
  rules: Map<string, Rule>;
  /** How many webhook event types the service declares (`webhook_not_poll` asks only when there are some). */
  webhookEventTypes?: number;
}

type Verdict = Omit<CheckResult, 'kind' | 'required'>;

const ms = (c: CallRow) => Date.parse(c.at);
const MAX_TIMELINE = 12;

function entry(c: CallRow, note?: string): TimelineEntry {
  return {
    at: c.at,
    method: c.method,
    path: c.path,
    status: c.status,
    fault: c.fault === '' ? null : c.fault,
    ...(note !== undefined && { note }),
  };
}

/** The patterns insights would count over these calls (one bucket: the run). */
function patternsOf(calls: readonly CallRow[], serviceId: string) {
  const patterns = new CallPatterns();
  for (const c of calls) {
    patterns.record(
      {
        at: ms(c),
        serviceId,
        applicationId: c.run_id,
        method: c.method,
        route: c.route,
        status: c.status,
        latencyMs: c.latency_ms,
        retryAfterS: c.retry_after_s,
      },
      'run',
    );
  }
  return patterns.take().patternRows;
}

function notSeen(what: string, advice: string, numbers: Record<string, number> = {}): Verdict {
  return { passed: false, evidence: { numbers, timeline: [] }, advice: `${what} ${advice}` };
}

function retryAfter(input: CheckInput): Verdict {
  const { calls } = input;
  const limited = calls.filter((c) => c.status === 429 && c.retry_after_s > 0);
  const early = patternsOf(calls, '')
    .filter((r) => r.kind === 'early_retry')
    .reduce((n, r) => n + r.calls, 0);
  // the first 429 followed by a call before its Retry-After passed (or the first 429 and the call after it)
  let timeline: TimelineEntry[] = [];
  let shortestWaitMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < calls.length; i++) {
    const c = calls[i]!;
    if (!(c.status === 429 && c.retry_after_s > 0)) continue;
    const next = calls[i + 1];
    if (!next) continue;
    const wait = ms(next) - ms(c);
    shortestWaitMs = Math.min(shortestWaitMs, wait);
    const tooSoon = wait < c.retry_after_s * 1000;
    if (timeline.length === 0 || (tooSoon && !timeline.some((t) => t.note?.startsWith('too soon')))) {
      timeline = [
        entry(c, `429 with Retry-After: ${c.retry_after_s}`),
        entry(next, tooSoon ? `too soon: ${wait} ms after the 429` : `${wait} ms after the 429`),
      ];
    }
  }
  const numbers = {
    refusedWith429: limited.length,
    callsBeforeRetryAfter: early,
    ...(Number.isFinite(shortestWaitMs) && { shortestWaitMs }),
  };
  if (limited.length === 0)
    return notSeen(
      'The run saw no 429 to react to:',
      'make more calls during the run (every Nth is refused).',
      numbers,
    );
  const passed = early === 0;
  return {
    passed,
    evidence: { numbers, timeline },
    advice: passed
      ? ''
      : `After a 429 the application called again ${early} time(s) before the Retry-After it was given had passed; ` +
        'those calls are refused again and count against it. On a 429, wait the seconds in Retry-After before the ' +
        'next call (queue the work, do not show the user "429"), and back off exponentially on repeated refusals.',
  };
}

function backoff5xx(input: CheckInput): Verdict {
  const { calls } = input;
  const failures = calls.filter((c) => c.status >= 500);
  const fast = patternsOf(calls, '')
    .filter((r) => r.kind === 'repeat_failure' && r.prior_route === '5xx' && r.lag <= 1)
    .reduce((n, r) => n + r.calls, 0);
  let timeline: TimelineEntry[] = [];
  for (let i = 0; i < calls.length && timeline.length < MAX_TIMELINE; i++) {
    const c = calls[i]!;
    if (c.status < 500) continue;
    const retries = calls
      .slice(i + 1)
      .filter((n) => n.method === c.method && n.route === c.route && ms(n) - ms(c) <= 1000);
    if (retries.length > 0) {
      timeline = [
        entry(c, `${c.status}`),
        ...retries.map((n) => entry(n, `again ${ms(n) - ms(c)} ms later`)),
      ];
      break;
    }
    if (timeline.length === 0) {
      const next = calls[i + 1];
      timeline = [entry(c, `${c.status}`), ...(next ? [entry(next, `${ms(next) - ms(c)} ms later`)] : [])];
    }
  }
  const numbers = { serverErrors: failures.length, retriesWithin1s: fast };
  if (failures.length === 0)
    return notSeen('The run saw no 500 or 503 to react to:', 'make more calls during the run.', numbers);
  const passed = fast === 0;
  return {
    passed,
    evidence: { numbers, timeline: timeline.slice(0, MAX_TIMELINE) },
    advice: passed
      ? ''
      : `The application repeated ${fast} request(s) within a second of a server error. Retrying at once adds load ` +
        'when the API is struggling: back off exponentially with jitter (1 s, 2 s, 4 s … plus a random part), stop ' +
        'after a few attempts, and tell the user in words that the service is unavailable for a moment.',
  };
}

function tokenReuse(input: CheckInput): Verdict {
  const { calls, settings } = input;
  const tokens = new Set(calls.filter((c) => c.credential !== '').map((c) => c.credential));
  const ratio = calls.length === 0 ? 0 : tokens.size / calls.length;
  const numbers = {
    tokensUsed: tokens.size,
    apiCalls: calls.length,
    tokensPerCall: Math.round(ratio * 1000) / 1000,
    threshold: settings.tokenChurnRatio,
  };
  if (calls.length === 0)
    return notSeen('The run saw no calls:', 'call the sandbox during the run.', numbers);
  const passed = ratio < settings.tokenChurnRatio;
  const seen = new Set<string>();
  const timeline = calls
    .filter((c) => {
      if (seen.has(c.credential)) return false;
      seen.add(c.credential);
      return true;
    })
    .slice(0, MAX_TIMELINE)
    .map((c) => entry(c, 'a new token'));
  return {
    passed,
    evidence: { numbers, timeline },
    advice: passed
      ? ''
      : `This application used ${tokens.size} access tokens for ${calls.length} API calls. Keep the token and reuse ` +
        'it until it expires (expires_in of the token response says when), then request a new one.',
  };
}

function webhookNotPoll(input: CheckInput): Verdict {
  const { calls, settings, rules } = input;
  if (input.webhookEventTypes === 0)
    return {
      passed: true,
      evidence: { numbers: { webhookEventTypes: 0 }, timeline: [] },
      advice:
        'Not asked: the service declares no webhook events, so reading a resource after creating it is how to learn of its changes.',
    };
  const creates = calls.filter((c) => c.method === 'POST' && c.route !== '' && c.status < 400);
  const polls = patternsOf(calls, '').filter((r) => {
    if (r.kind !== 'after_create' || r.lag > settings.pollWithinSeconds) return false;
    return settings.pollPairs.length > 0
      ? settings.pollPairs.some((p) => p.create === r.prior_route && p.read === r.route)
      : proposedPair(rules, r.prior_route, r.route);
  });
  const reads = polls.reduce((n, r) => n + r.calls, 0);
  const pollRoutes = new Set(polls.map((r) => r.route));
  const numbers = {
    creates: creates.length,
    readsSoonAfter: reads,
    readsPerCreate: creates.length === 0 ? 0 : Math.round((reads / creates.length) * 1000) / 1000,
    withinSeconds: settings.pollWithinSeconds,
    threshold: settings.pollRatio,
  };
  if (creates.length === 0)
    return notSeen(
      'The run saw no create (POST):',
      'make the creates your integration makes during the run.',
      numbers,
    );
  const passed = reads / creates.length < settings.pollRatio;
  const first = calls.findIndex((c) => c.method === 'GET' && pollRoutes.has(c.route));
  const createBefore = first < 0 ? -1 : calls.slice(0, first).findLastIndex((c) => c.method === 'POST');
  const timeline =
    first < 0
      ? creates.slice(0, 3).map((c) => entry(c, 'a create, no read soon after'))
      : calls
          .slice(Math.max(0, createBefore), first + 4)
          .filter((c) => c.method === 'POST' || pollRoutes.has(c.route))
          .slice(0, MAX_TIMELINE)
          .map((c) => entry(c, c.method === 'POST' ? 'create' : 'read soon after the create'));
  return {
    passed,
    evidence: { numbers, timeline },
    advice: passed
      ? ''
      : `After a create the application read the new resource within ${settings.pollWithinSeconds} s ` +
        `(${numbers.readsPerCreate} reads per create). Subscribe to the webhook events of the resource and react ` +
        'when they arrive instead of polling.',
  };
}

function idempotencyKey(input: CheckInput): Verdict {
  const { calls } = input;
  let retried = 0;
  let withSameKey = 0;
  let timeline: TimelineEntry[] = [];
  for (let i = 0; i < calls.length; i++) {
    const c = calls[i]!;
    if (c.method !== 'POST' || !(c.status >= 500 || c.status === 429 || c.status === 499)) continue;
    const retry = calls.slice(i + 1).find((n) => n.method === 'POST' && n.path === c.path);
    if (!retry) continue;
    retried++;
    const ok = c.idempotency_key !== '' && retry.idempotency_key === c.idempotency_key;
    if (ok) withSameKey++;
    if (
      timeline.length === 0 ||
      (!ok && withSameKey === retried - 1 && timeline[1]?.note?.startsWith('retried with the same'))
    ) {
      const key = (k: string) => (k === '' ? 'no Idempotency-Key' : `Idempotency-Key ${k}`);
      timeline = [
        entry(c, `${key(c.idempotency_key)}`),
        entry(
          retry,
          ok
            ? `retried with the same ${key(retry.idempotency_key)}`
            : `retried with ${key(retry.idempotency_key)}`,
        ),
      ];
    }
  }
  const numbers = { retriedPosts: retried, withTheSameKey: withSameKey };
  if (retried === 0)
    return notSeen(
      'The run saw no POST retried after a failure:',
      'make the creates your integration makes during the run (some of them fail, so they are retried).',
      numbers,
    );
  const passed = withSameKey === retried;
  return {
    passed,
    evidence: { numbers, timeline },
    advice: passed
      ? ''
      : `${retried - withSameKey} of ${retried} retried POSTs did not carry the Idempotency-Key of the first attempt. ` +
        'Make one key per operation (a UUID), send it as Idempotency-Key with the first attempt and every retry, so ' +
        'a retry never creates the thing twice.',
  };
}

function expiredToken(input: CheckInput): Verdict {
  const { calls } = input;
  let faults = 0;
  let renewed = 0;
  let timeline: TimelineEntry[] = [];
  for (let i = 0; i < calls.length; i++) {
    const c = calls[i]!;
    if (c.fault !== 'expired_token') continue;
    const next = calls[i + 1];
    if (!next) continue;
    faults++;
    const ok = next.credential !== c.credential;
    if (ok) renewed++;
    if (timeline.length === 0 || (!ok && renewed === faults - 1))
      timeline = [entry(c, '401 token_expired'), entry(next, ok ? 'a new token' : 'the expired token again')];
  }
  const numbers = { expiredTokenAnswers: faults, renewedAfter: renewed };
  if (faults === 0)
    return notSeen(
      'The run saw no expired-token 401 to react to:',
      'make more calls during the run.',
      numbers,
    );
  const passed = renewed === faults;
  return {
    passed,
    evidence: { numbers, timeline },
    advice: passed
      ? ''
      : 'After a 401 for an expired token the application sent the same token again. On a 401 with ' +
        'error="invalid_token", request a new token, then repeat the call once.',
  };
}

function keyRotation(input: CheckInput): Verdict {
  const { calls } = input;
  const order: string[] = [];
  for (const c of calls) if (c.credential !== '' && !order.includes(c.credential)) order.push(c.credential);
  const numbers: Record<string, number> = { credentialsUsed: order.length };
  if (order.length < 2)
    return notSeen(
      'The run saw one key only:',
      'rotate the key during the run — add a new key, switch the integration to it, revoke the old one.',
      numbers,
    );
  const latest = order[order.length - 1]!;
  const switchedAt = calls.findIndex((c) => c.credential === latest);
  const refused = calls
    .slice(switchedAt)
    .filter((c) => c.fault === '' && (c.status === 401 || c.status === 403));
  numbers.refusedAfterRotation = refused.length;
  const passed = refused.length === 0 && calls.slice(switchedAt).some((c) => c.status < 400);
  return {
    passed,
    evidence: {
      numbers,
      timeline: [
        ...(switchedAt > 0 ? [entry(calls[switchedAt - 1]!, 'the last call with the previous key')] : []),
        entry(calls[switchedAt]!, 'the first call with the new key'),
        ...refused.slice(0, MAX_TIMELINE - 2).map((c) => entry(c, 'refused after the rotation')),
      ],
    },
    advice: passed
      ? ''
      : 'After the key rotation some calls were refused: read the key from configuration (not code), switch to the ' +
        'new key before the old one is revoked, and alert on 401s.',
  };
}

/** A copy sent this long before the slow answer ended still counts as sent after it (clock and scheduling skew). */
const SKEW_MS = 50;
/** A copy sent within this long after the client gave up is a retry of the slow call. */
const RETRY_WINDOW_MS = 1000;

/**
 * After a slow answer: the client waits for it, or gives up after its timeout and retries. It fails when it sends
 * the same call (method and path) again in parallel: while the slow one is still waiting (a hedged copy), or, after
 * giving up, several retries at once (retries that start before the first retry has ended). A client that
 * gives up closes its connection before the answer: the gateway records that call as 499 (client closed request)
 * with the latency until it left, so the call log tells a client that waited from one that timed out, and when.
 * Retries one after the other are not counted: they cannot be told from the client's ordinary next calls.
 */
function slowAnswer(input: CheckInput): Verdict {
  const { calls } = input;
  let slow = 0;
  let waited = 0;
  let gaveUp = 0;
  let sentWhileWaiting = 0;
  let retriesInParallel = 0;
  let timeline: TimelineEntry[] = [];
  let failedShown = false;
  for (let i = 0; i < calls.length; i++) {
    const s = calls[i]!;
    if (s.fault !== 'slow') continue;
    slow++;
    const abandoned = s.status === 499;
    if (abandoned) gaveUp++;
    else waited++;
    const start = ms(s);
    const end = start + s.latency_ms;
    const same = calls.slice(i + 1).filter((c) => c.method === s.method && c.path === s.path);
    const hedged = same.filter((c) => ms(c) < end - SKEW_MS);
    const retries = abandoned
      ? same.filter((c) => ms(c) >= end - SKEW_MS && ms(c) <= end + RETRY_WINDOW_MS)
      : [];
    // several retries at once: those that start before the first retry has ended
    const first = retries[0];
    const overlapping = first
      ? retries.slice(1).filter((c) => ms(c) < ms(first) + Math.max(1, first.latency_ms))
      : [];
    sentWhileWaiting += hedged.length;
    retriesInParallel += overlapping.length;
    const bad = hedged.length > 0 || overlapping.length > 0;
    if (timeline.length === 0 || (bad && !failedShown)) {
      failedShown = bad;
      const shown = [...hedged, ...retries.filter((c, j) => j === 0 || overlapping.includes(c))];
      timeline = [
        entry(
          s,
          abandoned
            ? `slow answer: the client gave up after ${s.latency_ms} ms`
            : `slow answer: the client waited ${s.latency_ms} ms`,
        ),
        ...shown
          .slice(0, MAX_TIMELINE - 1)
          .map((c) =>
            entry(
              c,
              hedged.includes(c)
                ? `sent again ${ms(c) - start} ms in, while the first was waiting`
                : overlapping.includes(c)
                  ? `another retry at the same time, ${Math.max(0, ms(c) - end)} ms after giving up`
                  : `retry ${Math.max(0, ms(c) - end)} ms after giving up`,
            ),
          ),
      ];
    }
  }
  const numbers = { slowAnswers: slow, waited, gaveUp, sentWhileWaiting, retriesInParallel };
  if (slow === 0)
    return notSeen('The run saw no slow answer to react to:', 'make more calls during the run.', numbers);
  const passed = sentWhileWaiting === 0 && retriesInParallel === 0;
  const what = [
    ...(sentWhileWaiting > 0 ? [`${sentWhileWaiting} time(s) while the first was still waiting`] : []),
    ...(retriesInParallel > 0 ? [`${retriesInParallel} time(s) in parallel after giving up`] : []),
  ];
  return {
    passed,
    evidence: { numbers, timeline },
    advice: passed
      ? ''
      : `After a slow answer the application sent the same call again ${what.join(', and ')}. Copies in ` +
        'parallel multiply the load on an API that is already slow. Give each call a timeout, retry once after it ' +
        '(with the same Idempotency-Key for a POST), then back off and tell the user in words.',
  };
}

const judges: Record<CheckKind, (input: CheckInput) => Verdict> = {
  retry_after: retryAfter,
  backoff_5xx: backoff5xx,
  token_reuse: tokenReuse,
  webhook_not_poll: webhookNotPoll,
  idempotency_key: idempotencyKey,
  key_rotation: keyRotation,
  expired_token: expiredToken,
  slow_answer: slowAnswer,
};

/** The results of the plan's automated checks over the run's calls. */
export function judgeChecks(input: CheckInput): CheckResult[] {
  return input.plan.checks.map((check) => ({
    kind: check.kind,
    required: check.required,
    ...judges[check.kind](input),
  }));
}
