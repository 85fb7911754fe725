/**
 * How the worker reports rounds that fail (issue 9). While the database is away every round fails, about four
 * times a second at the default poll, and a line with a stack for each buried everything else in the log. Now the
 * first failure is logged with its error, then at most one line per interval while rounds go on failing (how many
 * since the last line, and the last error's message), and one line when a round succeeds again.
 */
import { type Clock, type Logger, errorFields } from '../kernel/index.js';

export interface RoundFailures {
  /** A round failed with `err`. */
  failed(err: unknown): void;
  /** A round went through. */
  succeeded(): void;
}

/** How often a worker whose rounds keep failing says so (default of {@link roundFailureReporter}). */
export const roundFailureLogIntervalMs = 30_000;

/**
 * @example const rounds = roundFailureReporter(logger, clock); try { await tick(); rounds.succeeded() } catch (err) { rounds.failed(err) }
 */
export function roundFailureReporter(
  logger: Logger | undefined,
  clock: Clock,
  intervalMs = roundFailureLogIntervalMs,
): RoundFailures {
  /** rounds failed in a row, and since the last line */
  let failed = 0;
  let sinceLine = 0;
  let firstAt = 0;
  let lineAt = 0;
  return {
    failed(err) {
      const now = clock.now();
      failed++;
      if (failed === 1) {
        firstAt = now;
        lineAt = now;
        sinceLine = 0;
        logger?.warn(
          { err },
          `webhooks: a worker round failed; trying again (one line every ${intervalMs / 1000} s while rounds fail)`,
        );
        return;
      }
      sinceLine++;
      if (now - lineAt < intervalMs) return;
      logger?.warn(
        { rounds: sinceLine, failingForMs: now - firstAt, ...errorFields(err) },
        'webhooks: worker rounds still failing',
      );
      lineAt = now;
      sinceLine = 0;
    },
    succeeded() {
      if (failed === 0) return;
      logger?.info(
        { failedRounds: failed, failingForMs: clock.now() - firstAt },
        'webhooks: worker rounds succeed again',
      );
      failed = 0;
    },
  };
}
