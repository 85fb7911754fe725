/**
 * The certification job (issue 11), in the worker role (`trellis worker`, and in-process in `trellis start`):
 * every few seconds it judges the running certification runs on the calls the gateways logged, so a run ends once
 * it has seen its `minCalls` calls or reached `ends_at`, without anyone asking. Several workers may run it on one
 * database: a run ends once (the state changes only from `running`), and the loser of a race returns the result.
 */
import type { ChangeDeps } from '../events/index.js';
import { judgeRunningRuns } from './certification-runs.js';

export interface CertificationJobLogger {
  error(data: object, message?: string): void;
}

/** How often running runs are judged (ms). */
export const CERTIFICATION_JUDGE_MS = 5000;

export class CertificationJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Runs this job ended. */
  ended = 0;

  constructor(
    private readonly deps: ChangeDeps,
    private readonly logger: CertificationJobLogger,
    private readonly intervalMs = CERTIFICATION_JUDGE_MS,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** One round: judges every running run; a failure is logged and the next round tries again. */
  tick(): Promise<void> {
    this.running ??= judgeRunningRuns(this.deps)
      .then((n) => {
        this.ended += n;
      })
      .catch((err: unknown) => {
        this.logger.error(
          { err: { message: err instanceof Error ? err.message : String(err) } },
          'certification: judging the running runs failed; trying again next round',
        );
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
