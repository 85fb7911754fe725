/**
 * Fault injection for certification runs (issue 11). While a sandbox application has a running certification run,
 * the gateway answers some of its calls itself, as the run's plan says — a 429 with `Retry-After`, a 500, a 503,
 * the 401 of an expired token, or a late answer — and marks every call of the run so the usage flush writes it to
 * the run's call log (`certification_calls`), from which the checks judge what the client did next.
 *
 * The gateway learns running runs from the database at start and whenever the change feed carries a
 * `certification.*` event (one process or many, SQLite or PostgreSQL). No certifying application: the phase costs
 * one size check; otherwise one Map lookup. Production applications and other applications are never touched.
 *
 * "Every Nth call" is counted over the run's calls however many gateways serve them: given the gateway's limiter,
 * each certifying call adds one to a counter of the run there (`certification:<run id>`, strict, fail open) —
 * Redis when configured, the cluster primary's host counters under `--workers`, this process's memory otherwise —
 * and takes its place in the run from the count. Only certifying calls pay that round trip; every other call
 * stops at the Map lookup. Without a limiter, or when the shared counters do not answer, the process counts alone.
 */
import type { ChangeFeedEntry } from '../events/index.js';
import type { CertificationMark } from '../usage/index.js';
import type { CertificationTables } from '../golive/certification-tables.js';
import type { Executor } from '../store/index.js';
import { type Denial, deny } from './denials.js';
import type { Limiter, LimiterOutcome } from './limiter/limiter.js';
import type { RequestContext } from './request-context.js';

/** The faults of a run's plan (every Nth call of the run; 0 = off). */
export interface RunFaults {
  rateLimitEvery: number;
  retryAfterSeconds: number;
  serverErrorEvery: number;
  unavailableEvery: number;
  slowEvery: number;
  slowMs: number;
  expiredTokenEvery: number;
}

export type FaultKind = NonNullable<CertificationMark['fault']>;

interface ActiveRun {
  runId: string;
  faults: RunFaults;
  endsAt: number;
  /** Calls of the run this process served (its place in the run when there are no shared counters). */
  calls: number;
}

/** Which fault the nth call gets (the rarest kinds first when several fall on one call). */
export function faultOf(faults: RunFaults, n: number): FaultKind | null {
  const hits = (every: number) => every > 0 && n % every === 0;
  if (hits(faults.expiredTokenEvery)) return 'expired_token';
  if (hits(faults.unavailableEvery)) return 'unavailable';
  if (hits(faults.serverErrorEvery)) return 'server_error';
  if (hits(faults.rateLimitEvery)) return 'rate_limit';
  if (hits(faults.slowEvery) && faults.slowMs > 0) return 'slow';
  return null;
}

/** The running runs, by sandbox application id, with the faults of each. */
export class CertifyingRuns {
  private runs = new Map<string, ActiveRun>();
  private loading: Promise<void> | null = null;
  private again = false;

  /**
   * @param counters the gateway's limiter, which counts each run's calls across gateways (see the module's
   * comment); without it each process counts the calls it serves.
   */
  constructor(
    private readonly db: Executor,
    private readonly now: () => number,
    private readonly counters: Limiter | null = null,
  ) {}

  /** True when a batch of changes may have started or ended a run. */
  static concerns(entries: readonly ChangeFeedEntry[]): boolean {
    return entries.some((e) => e.type.startsWith('certification.'));
  }

  /** Reads the running runs again (counts of runs already known carry on). */
  load(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        const rows = await this.db
          .withTables<CertificationTables>()
          .selectFrom('certification_runs')
          .select(['id', 'application_id', 'plan', 'ends_at'])
          .where('state', '=', 'running')
          .where('ends_at', '>', new Date(this.now()).toISOString())
          .execute();
        const next = new Map<string, ActiveRun>();
        for (const raw of rows) {
          const known = this.runs.get(raw.application_id);
          const plan = JSON.parse(raw.plan) as { faults: RunFaults };
          next.set(raw.application_id, {
            runId: raw.id,
            faults: plan.faults,
            endsAt: Date.parse(raw.ends_at),
            calls: known?.runId === raw.id ? known.calls : 0,
          });
        }
        this.runs = next;
      } while (this.again);
    })().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  /** How many applications are certifying (for tests and metrics). */
  get size(): number {
    return this.runs.size;
  }

  /**
   * The phase: nothing for applications without a running run; for a certifying sandbox application, marks the
   * call and answers the fault its place in the run asks for (a slow fault delays the call, then lets it through).
   */
  inject(ctx: RequestContext): Denial | null | Promise<Denial | null> {
    if (this.runs.size === 0) return null;
    const app = ctx.app;
    if (app === null) return null;
    const run = this.runs.get(app.applicationId);
    if (run === undefined || app.environment !== 'sandbox' || ctx.at >= run.endsAt) return null;
    run.calls++;
    if (this.counters === null) return this.answer(ctx, run, run.calls);
    const outcome = this.counters.consume(
      [
        {
          key: `certification:${run.runId}`,
          windowStart: 0,
          windowEnd: run.endsAt,
          limit: Number.MAX_SAFE_INTEGER,
          delta: 1,
        },
      ],
      { mode: 'strict', failureMode: 'open', now: ctx.at },
    );
    const nth = (o: LimiterOutcome) => (o.kind === 'allowed' ? o.used[0]! : run.calls);
    return outcome instanceof Promise
      ? outcome.then((o) => this.answer(ctx, run, nth(o)))
      : this.answer(ctx, run, nth(outcome));
  }

  /** Marks the nth call of the run and answers the fault its place asks for. */
  private answer(ctx: RequestContext, run: ActiveRun, n: number): Denial | null | Promise<Denial | null> {
    const fault = faultOf(run.faults, n);
    const claims = ctx.claims;
    ctx.certification = {
      runId: run.runId,
      fault,
      path: ctx.rawPath,
      idempotencyKey: ctx.header('idempotency-key') ?? '',
      credential:
        claims !== null && typeof claims.jti === 'string'
          ? claims.jti
          : (ctx.credentialHash ?? '').slice(0, 16),
    };
    switch (fault) {
      case null:
        return null;
      case 'rate_limit':
        ctx.responseHeaders['retry-after'] = String(run.faults.retryAfterSeconds);
        return deny('limit_exceeded', undefined, { retryAfterSeconds: run.faults.retryAfterSeconds });
      case 'server_error':
        return deny('internal');
      case 'unavailable':
        return deny('upstream_busy');
      case 'expired_token':
        return deny('token_expired');
      case 'slow':
        return new Promise((resolve) => setTimeout(() => resolve(null), run.faults.slowMs));
    }
  }
}
