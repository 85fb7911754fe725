import { type Denial, deny } from '../denials.js';
import type { CounterCheck, Limiter, LimiterOutcome } from '../limiter/limiter.js';
import { type Window, type WindowCalendar, periodSeconds } from '../limiter/periods.js';
import type { AppAccess } from '../credential-cache.js';
import type { RequestContext } from '../request-context.js';
import type { CompiledLimit, CompiledPlan } from '../snapshot.js';

export interface AuthorizeDeps {
  limiter: Limiter;
  calendar: WindowCalendar;
  /** Rebuilds the snapshot: an application may name a plan created a moment ago. */
  refreshSnapshot(): Promise<void>;
  currentSnapshot(): { plans: ReadonlyMap<string, CompiledPlan> };
}

/** End users who do not say who they are share one bucket, so leaving the key out is no way around the limit. */
export const ANONYMOUS_END_USER = '(anonymous)';

/** Reads a claim from the payload of a bearer JWT without verifying it (the header is as trusted: the client's). */
function unverifiedClaim(authorization: string | undefined, claim: string): string | null {
  if (!authorization?.toLowerCase().startsWith('bearer ')) return null;
  const parts = authorization.slice(7).trim().split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (typeof payload !== 'object' || payload === null) return null;
    const value = (payload as Record<string, unknown>)[claim];
    return typeof value === 'string' || typeof value === 'number' ? String(value) : null;
  } catch {
    return null;
  }
}

function endUserOf(ctx: RequestContext, plan: CompiledPlan): string | null {
  const source = plan.endUser;
  if (source === null) {
    // A verified OAuth 2.0 token says who the end user is: unless the plan names another key, its subject does.
    const sub = ctx.claims?.sub;
    return typeof sub === 'string' && sub !== '' ? sub.slice(0, 200) : null;
  }
  let value: string | null | undefined;
  if (source.source === 'header') value = ctx.header(source.name);
  else if (ctx.claims !== null) {
    const claim = ctx.claims[source.name];
    value = typeof claim === 'string' || typeof claim === 'number' ? String(claim) : null;
  } else value = unverifiedClaim(ctx.header('authorization'), source.name);
  return value ? value.slice(0, 200) : ANONYMOUS_END_USER;
}

interface PlannedCheck {
  check: CounterCheck;
  limit: CompiledLimit;
}

/**
 * Phase 5, authorize: the plan allows every metric the request maps to, and every limit of every period has room.
 * Counters are checked and incremented in one step; a refused request adds nothing.
 */
export function authorize(ctx: RequestContext, deps: AuthorizeDeps): Denial | null | Promise<Denial | null> {
  const app = ctx.app!;
  const plan = ctx.plan ?? ctx.snapshot.plans.get(app.planId);
  if (plan === undefined) {
    return deps.refreshSnapshot().then(() => {
      const fresh = deps.currentSnapshot().plans.get(app.planId);
      if (fresh === undefined)
        return deny('internal', "The application's plan is not known to the gateway yet.");
      ctx.plan = fresh;
      return authorize(ctx, deps);
    });
  }
  ctx.plan = plan;
  for (const m of ctx.usage) if (plan.disabled.has(m.metricId)) return deny('method_disabled');
  if (plan.limits.size === 0) return null;

  const service = ctx.service!;
  const options = { mode: service.limiterMode, failureMode: service.failureMode, now: ctx.at };
  const known = knownChecks(app, plan, ctx.usage, ctx.at);
  if (known !== null) {
    const outcome = deps.limiter.consume(known.checks, options);
    return outcome instanceof Promise
      ? outcome.then((o) => decide(ctx, known.planned, known.policy, o))
      : decide(ctx, known.planned, known.policy, outcome);
  }

  let byEndUser = false;
  const planned: PlannedCheck[] = [];
  for (const m of ctx.usage) {
    const limits = plan.limits.get(m.metricId);
    if (limits === undefined) continue;
    for (const limit of limits) {
      const window = deps.calendar.windowOf(limit.period, ctx.at);
      if (limit.scope !== 'end_user') {
        planned.push(applicationCheck(app, m.metricId, limit, window, m.delta));
        continue;
      }
      ctx.endUser ??= endUserOf(ctx, plan) ?? ANONYMOUS_END_USER;
      byEndUser = true;
      planned.push({
        check: {
          key: `{${app.applicationId}}:${m.metricId}:${limit.period}:eu:${encodeURIComponent(ctx.endUser)}`,
          windowStart: window.start,
          windowEnd: window.end,
          limit: limit.value,
          delta: m.delta,
          subject: {
            applicationId: app.applicationId,
            metricId: m.metricId,
            period: limit.period,
            endUser: true,
          },
        },
        limit,
      });
    }
  }
  if (planned.length === 0) return null;
  const checks = planned.map((p) => p.check);
  const policy = policyHeader(planned);
  // end users' checks are the call's own: only an application's checks are worth keeping for its next call
  if (!byEndUser)
    applicationPlans.set(app, {
      plan,
      usage: ctx.usage.map((m) => ({ metricId: m.metricId, delta: m.delta })),
      planned,
      checks,
      policy,
    });
  const outcome = deps.limiter.consume(checks, options);
  return outcome instanceof Promise
    ? outcome.then((o) => decide(ctx, planned, policy, o))
    : decide(ctx, planned, policy, outcome);
}

/**
 * An application's checks for a call, as its previous call made them: the same plan and usage, every window still
 * current. A call then builds no list of checks, no `RateLimit-Policy` text and looks nothing up per limit (the
 * bench's two limits cost two arrays, a string and four lookups per call). Keyed by the cached application object,
 * as `applicationChecks`.
 */
interface ApplicationPlan {
  readonly plan: CompiledPlan;
  /** The metric increments the checks were made for, copied (a call's usage is its own). */
  readonly usage: readonly { readonly metricId: string; readonly delta: number }[];
  readonly planned: PlannedCheck[];
  readonly checks: readonly CounterCheck[];
  /** `RateLimit-Policy` of these checks. */
  readonly policy: string;
}

const applicationPlans = new WeakMap<AppAccess, ApplicationPlan>();

function knownChecks(
  app: AppAccess,
  plan: CompiledPlan,
  usage: readonly { metricId: string; delta: number }[],
  at: number,
): ApplicationPlan | null {
  const known = applicationPlans.get(app);
  if (known === undefined || known.plan !== plan || known.usage.length !== usage.length) return null;
  for (let i = 0; i < usage.length; i++) {
    const a = known.usage[i]!;
    const b = usage[i]!;
    if (a.metricId !== b.metricId || a.delta !== b.delta) return null;
  }
  for (const c of known.checks) if (at < c.windowStart || at >= c.windowEnd) return null;
  return known;
}

/**
 * An application's check of one limit, made once per application, limit and window and then shared by its calls
 * (the counter key and check were two strings and three objects per limit per call). Keyed by the cached
 * application object: a changed application (evicted, looked up again) gets new checks.
 */
const applicationChecks = new WeakMap<AppAccess, Map<CompiledLimit, PlannedCheck>>();

function applicationCheck(
  app: AppAccess,
  metricId: string,
  limit: CompiledLimit,
  window: Window,
  delta: number,
): PlannedCheck {
  let byLimit = applicationChecks.get(app);
  if (byLimit === undefined) {
    byLimit = new Map();
    applicationChecks.set(app, byLimit);
  }
  const known = byLimit.get(limit);
  if (known !== undefined && known.check.windowStart === window.start && known.check.delta === delta)
    return known;
  const made: PlannedCheck = {
    check: {
      key: known?.check.key ?? `{${app.applicationId}}:${metricId}:${limit.period}`,
      windowStart: window.start,
      windowEnd: window.end,
      limit: limit.value,
      delta,
      subject: { applicationId: app.applicationId, metricId, period: limit.period, endUser: false },
    },
    limit,
  };
  byLimit.set(limit, made);
  return made;
}

function decide(
  ctx: RequestContext,
  planned: PlannedCheck[],
  policy: string,
  outcome: LimiterOutcome,
): Denial | null {
  // the limiter has already logged and counted the failure
  if (outcome.kind === 'unavailable') return deny('limiter_unavailable');
  const headers = ctx.responseHeaders;
  headers['ratelimit-policy'] = policy;
  if (outcome.kind === 'allowed') {
    // the limit closest to running out is the one a client needs to watch
    let tightest = 0;
    let tightestRemaining = Number.POSITIVE_INFINITY;
    for (let i = 0; i < planned.length; i++) {
      const remaining = planned[i]!.check.limit - (outcome.used[i] ?? 0);
      if (remaining < tightestRemaining) {
        tightest = i;
        tightestRemaining = remaining;
      }
    }
    headers.ratelimit = rateLimitItem(planned[tightest]!, Math.max(0, tightestRemaining), ctx.at);
    return null;
  }
  // every exceeded limit must have room again before a retry can pass: wait for the latest reset
  let retryAfter = 0;
  let named = planned[outcome.exceeded[0] ?? 0]!;
  for (const i of outcome.exceeded) {
    const p = planned[i]!;
    const wait = secondsUntil(p.check.windowEnd, ctx.at);
    if (wait !== null && wait >= retryAfter) {
      retryAfter = wait;
      named = p;
    }
  }
  headers.ratelimit = rateLimitItem(named, 0, ctx.at);
  if (retryAfter > 0) headers['retry-after'] = String(retryAfter);
  const { limit, check } = named;
  const used = outcome.used[planned.indexOf(named)] ?? 0;
  return deny(
    'limit_exceeded',
    `The ${limit.period} limit of ${limit.value} on ${limit.metricName}${limit.scope === 'end_user' ? ' per end user' : ''} is reached.`,
    {
      limit: limit.policyName,
      metricId: limit.metricId,
      period: limit.period,
      scope: limit.scope,
      value: limit.value,
      used,
      ...(Number.isFinite(check.windowEnd) ? { resetsAt: new Date(check.windowEnd).toISOString() } : {}),
    },
  );
}

function secondsUntil(end: number, now: number): number | null {
  return Number.isFinite(end) ? Math.max(1, Math.ceil((end - now) / 1000)) : null;
}

/**
 * `RateLimit-Policy` of draft-ietf-httpapi-ratelimit-headers: one item per limit that applies,
 * `"hits-minute";q=100;w=60`. Eternity limits have no window, so no `w`.
 */
function policyHeader(planned: PlannedCheck[]): string {
  let out = policyItem(planned[0]!);
  for (let i = 1; i < planned.length; i++) out += `, ${policyItem(planned[i]!)}`;
  return out;
}

/** Each limit's `RateLimit-Policy` item, built once per window (a month's `w` depends on the month). */
const policyItems = new WeakMap<CompiledLimit, { windowStart: number; text: string }>();

function policyItem({ limit, check }: PlannedCheck): string {
  const cached = policyItems.get(limit);
  if (cached !== undefined && cached.windowStart === check.windowStart) return cached.text;
  const w = periodSeconds(limit.period, { start: check.windowStart, end: check.windowEnd });
  const text = `"${limit.policyName}";q=${limit.value}${w === null ? '' : `;w=${w}`}`;
  policyItems.set(limit, { windowStart: check.windowStart, text });
  return text;
}

/** `RateLimit` of the draft: the remaining quota `r` and seconds to reset `t` of one policy. */
function rateLimitItem(p: PlannedCheck, remaining: number, now: number): string {
  const t = secondsUntil(p.check.windowEnd, now);
  return `"${p.limit.policyName}";r=${remaining}${t === null ? '' : `;t=${t}`}`;
}
