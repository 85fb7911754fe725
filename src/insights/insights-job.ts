/**
 * The periodic run of insights in the worker role (`trellis worker`, and in-process in `trellis start`): the
 * detectors and the quota alerts over the flushed usage, once per round of `TRELLIS_INSIGHTS_INTERVAL_MS`.
 *
 * Rounds are aligned on the clock (round n starts at n × interval). However many workers share the database,
 * one runs each round: before running, a worker claims the round in `job_rounds` (migration 0020) with one
 * atomic statement that only one claim of a round can win (`claimJobRound`). A claim row rather than a PostgreSQL
 * advisory lock because (1) a lock says "one at a time", not "once per round": two workers whose timers are a few
 * seconds apart would each run the same round, one after the other; (2) it behaves the same on SQLite, where the
 * tests of both dialects run it; (3) nothing is held during the run (a session lock would keep a pool connection
 * for the whole run, and a transaction-scoped one cannot span the run's own transactions). A worker that dies
 * mid-run loses that round only; the next round is claimed afresh, and the run is idempotent anyway (one open
 * finding per application, kind and subject; one quota alert per level and window).
 *
 * Each worker checks four times a round, so a round is run early in it whatever the timers' phases; runs of one
 * worker never overlap; a failed run is logged and the next round tries again.
 */
import type { ChangeDeps } from '../events/index.js';
import type { Mailer } from '../mail/index.js';
import { runInsights } from './insights.js';
import { claimJobRound } from './insights.store.js';
import { runQuotaAlerts } from './quota-alerts.js';

export interface InsightsJobLogger {
  error(data: object, message?: string): void;
}

export interface InsightsJobOptions {
  /** The length of a round in ms (`TRELLIS_INSIGHTS_INTERVAL_MS`); > 0. */
  intervalMs: number;
  /** Who claims the rounds: the worker's id, kept in `job_rounds.holder`. */
  holder: string;
  logger: InsightsJobLogger;
}

export type InsightsJobDeps = ChangeDeps & { mailer?: Mailer; portalUrl?: string };

/** The name of the job in `job_rounds`. */
export const INSIGHTS_JOB = 'insights';

const iso = (ms: number) => new Date(ms).toISOString();

export class InsightsJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<boolean> | null = null;
  /** Rounds this worker claimed and ran. */
  runs = 0;

  constructor(
    private readonly deps: InsightsJobDeps,
    private readonly options: InsightsJobOptions,
  ) {
    if (!(options.intervalMs > 0)) throw new RangeError('intervalMs must be positive');
  }

  /** Starts checking for an unclaimed round, at once and then four times a round. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), Math.max(10, Math.floor(this.options.intervalMs / 4)));
    this.timer.unref();
    void this.tick();
  }

  /**
   * Claims the current round and, if this worker won it, runs the detectors and the quota alerts. Resolves
   * true when this call ran the round; while a run of this worker is under way, resolves with that run.
   */
  tick(): Promise<boolean> {
    this.running ??= (async () => {
      try {
        const now = this.deps.clock.now();
        const roundStart = now - (now % this.options.intervalMs);
        const claimed = await claimJobRound(this.deps.db, {
          job: INSIGHTS_JOB,
          roundStart: iso(roundStart),
          holder: this.options.holder,
          at: iso(now),
        });
        if (!claimed) return false;
        await runInsights(this.deps, now);
        await runQuotaAlerts(this.deps, now);
        this.runs++;
        return true;
      } catch (err) {
        this.options.logger.error(
          { err: { message: err instanceof Error ? err.message : String(err) } },
          'insights: run failed',
        );
        return false;
      }
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Stops the timer and waits for the run under way. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
