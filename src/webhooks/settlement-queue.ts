/**
 * Settlements that wait for the database (issue 9). A batch's settlement writes what its deliveries did (delivered,
 * failed, when to try again) in one transaction. When the database cannot take it (stopped, restarting,
 * unreachable), the batch's messages stay leased to this worker, and would be delivered again when the lease ends
 * although their receivers have them: an outage probe of 20 s had 192 of 245 messages in flight delivered twice.
 * So the worker keeps a refused settlement and writes it once the database answers, batches in the order they
 * were sent, trying again after 100 ms, doubling up to 5 s, and always once more just before the lease ends. A
 * settlement still refused when its lease ends is dropped with one log line: its messages are due again and are
 * delivered again (at least once, as documented). A worker that stops drops what the database still refuses
 * instead of waiting for the lease.
 *
 * Only a database that cannot be reached is waited for (`isDatabaseUnavailable`); any other failure drops the
 * batch at once, as retrying would fail the same way and hold up the batches behind it.
 *
 * Memory is bounded by the worker, not here: its running loop claims nothing while a settlement waits, so at most
 * two batches wait (the refused one and the one that was being sent meanwhile).
 */
import { performance } from 'node:perf_hooks';
import { type Clock, type Logger, errorFields } from '../kernel/index.js';
import { isDatabaseUnavailable } from '../store/index.js';

export interface SettlementQueueOptions<T> {
  /** Writes one batch's settlements in one transaction. */
  write(batch: readonly T[]): Promise<void>;
  clock: Clock;
  /** Where the queue says that settlements wait, were written, or were dropped. */
  logger?: Logger | undefined;
  /** True once the worker stops: a batch refused from then on is dropped, not tried again. */
  stopping?: () => boolean;
  /** First wait before writing again, doubled after each refusal up to `maxBackoffMs` (default 100 ms). */
  minBackoffMs?: number;
  /** Default 5 s. */
  maxBackoffMs?: number;
}

export interface SettlementQueue<T> {
  /** Queues a batch whose messages are leased until `leaseEndsAt` (the clock's time); written after those before. */
  add(batch: readonly T[], leaseEndsAt: number): void;
  /**
   * Writes what is queued, in order, after the writes already under way, trying again while the database is
   * away, until each batch is written or its lease ends. Never rejects.
   */
  drain(): Promise<void>;
  /** Writes what is queued, in order, once; rejects with the database's error (the batches kept) when it is away. */
  writeOnce(): Promise<void>;
  /** True from a refusal until the queue is written or dropped: the worker claims nothing meanwhile. */
  readonly waiting: boolean;
  /** Resolves when the writes under way and queued (drain, writeOnce) are done. */
  idle(): Promise<void>;
  /** Cuts a wait between tries short (the worker is stopping). */
  wake(): void;
}

interface Queued<T> {
  batch: readonly T[];
  leaseEndsAt: number;
  /** the same moment in `performance.now()` time: a clock that does not move (tests) still lets a lease end */
  realLeaseEndsAt: number;
}

/**
 * @example const queue = createSettlementQueue({ write: settle, clock }); queue.add(batch, leaseEndsAt); void queue.drain()
 */
export function createSettlementQueue<T>(options: SettlementQueueOptions<T>): SettlementQueue<T> {
  const { write, clock, logger } = options;
  const stopping = options.stopping ?? (() => false);
  const minBackoffMs = options.minBackoffMs ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  const queue: Queued<T>[] = [];
  /** one write of the queue at a time, so batches commit in the order they were sent */
  let turn: Promise<void> = Promise.resolve();
  /** since when settlements wait for the database (performance.now()), null when none does */
  let waitingSince: number | null = null;
  /** settlements written since they began to wait, for the line that says they were */
  let writtenWhileWaiting = 0;
  let cutWait: (() => void) | null = null;

  function inTurn(work: () => Promise<void>): Promise<void> {
    const done = turn.then(work);
    turn = done.catch(() => {});
    return done;
  }

  const msLeft = (q: Queued<T>) =>
    Math.min(q.leaseEndsAt - clock.now(), q.realLeaseEndsAt - performance.now());

  /** Drops the batches at the head whose lease has ended (every batch when `all`), with one line for them. */
  function dropEnded(all: boolean): void {
    let messages = 0;
    while (queue.length > 0 && (all || msLeft(queue[0]!) <= 0)) messages += queue.shift()!.batch.length;
    if (messages === 0) return;
    logger?.warn(
      { messages },
      all
        ? 'webhooks: stopping with settlements the database still refuses; their messages are delivered again when their lease ends'
        : 'webhooks: could not settle delivered messages before their lease ended (the database was away); they are delivered again',
    );
  }

  function refused(err: unknown): void {
    if (waitingSince !== null) return;
    waitingSince = performance.now();
    writtenWhileWaiting = 0;
    logger?.warn(
      { ...errorFields(err), messages: queue.reduce((n, q) => n + q.batch.length, 0) },
      'webhooks: cannot settle delivered messages, the database is away; keeping them and writing them when it answers, until their lease ends',
    );
  }

  function caughtUp(): void {
    if (waitingSince === null) return;
    if (writtenWhileWaiting > 0)
      logger?.info(
        { messages: writtenWhileWaiting, waitedMs: Math.round(performance.now() - waitingSince) },
        'webhooks: settled the delivered messages that waited for the database',
      );
    waitingSince = null;
  }

  /** One pass over the queue, in order; throws when the database is away (the batch it refused stays first). */
  async function writeQueued(): Promise<void> {
    for (;;) {
      dropEnded(false);
      const head = queue[0];
      if (!head) return;
      try {
        await write(head.batch);
        if (waitingSince !== null) writtenWhileWaiting += head.batch.length;
      } catch (err) {
        if (isDatabaseUnavailable(err)) throw err;
        logger?.warn(
          { err, messages: head.batch.length },
          'webhooks: cannot settle a batch; its leases will expire and it is sent again',
        );
      }
      queue.shift();
    }
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        cutWait = null;
        resolve();
      }
      cutWait = done;
    });
  }

  return {
    add(batch, leaseEndsAt) {
      if (batch.length === 0) return;
      const realLeaseEndsAt = performance.now() + (leaseEndsAt - clock.now());
      queue.push({ batch, leaseEndsAt, realLeaseEndsAt });
    },
    drain: () =>
      inTurn(async () => {
        let backoffMs = minBackoffMs;
        for (;;) {
          try {
            await writeQueued();
            caughtUp();
            return;
          } catch (err) {
            refused(err);
            if (stopping()) {
              dropEnded(true);
              caughtUp();
              return;
            }
            // the last try lands on the lease's end: dropped then if still refused
            await pause(Math.max(0, Math.min(backoffMs, msLeft(queue[0]!))));
            backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
          }
        }
      }),
    writeOnce: () =>
      inTurn(async () => {
        try {
          await writeQueued();
        } catch (err) {
          refused(err);
          throw err;
        }
        caughtUp();
      }),
    get waiting() {
      return waitingSince !== null;
    },
    idle: () => turn,
    wake() {
      cutWait?.();
    },
  };
}
