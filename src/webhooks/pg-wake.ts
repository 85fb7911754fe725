/**
 * Wakes a webhook worker in a process of its own on PostgreSQL without Redis: every transaction that writes
 * outbox events (or webhook messages) also runs `pg_notify` on {@link OUTBOX_CHANNEL}, which PostgreSQL delivers
 * only when that transaction commits; one dedicated connection here `LISTEN`s and calls `onNotify` for each
 * notification, so the worker reads the outbox at once instead of at its next poll (issue 9).
 *
 * The connection is outside the store's pool (a `LISTEN` belongs to one session). When it is lost (a restart,
 * `pg_terminate_backend`, a network cut) the process goes on: one warning is logged, and it reconnects with a
 * doubling backoff; meanwhile the worker's poll still delivers. After each (re)connect `onNotify` is called once,
 * since a commit while nobody listened was not heard.
 */
import pg from 'pg';
import { OUTBOX_CHANNEL } from '../events/index.js';

/** Where the listener reports a lost connection and its return; pino's logger satisfies it. */
export interface PgWakeLogger {
  warn(data: object, message?: string): void;
  info(data: object, message?: string): void;
}

export interface PgWakeOptions {
  /** The PostgreSQL URL (`TRELLIS_DATABASE_URL`). */
  url: string;
  /** Called for each notification, and once after each (re)connect. */
  onNotify: () => void;
  logger: PgWakeLogger;
  /** First wait before reconnecting, doubled after each failed try up to `maxBackoffMs`. Default 100 ms. */
  minBackoffMs?: number;
  /** Default 5 s. */
  maxBackoffMs?: number;
}

export interface PgWake {
  /** Resolves once the first `LISTEN` is in place, or the first try failed (the listener keeps trying then). */
  ready: Promise<void>;
  /** Stops listening and reconnecting. */
  close(): Promise<void>;
}

/**
 * Listens for committed outbox writes on one dedicated connection, reconnecting when it is lost.
 * @example const wake = listenForOutboxWrites({ url, onNotify: () => worker.nudge(), logger }); await wake.close()
 */
export function listenForOutboxWrites(options: PgWakeOptions): PgWake {
  const { url, onNotify, logger } = options;
  const minBackoffMs = options.minBackoffMs ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  let client: pg.Client | null = null;
  let closed = false;
  let backoffMs = minBackoffMs;
  /** whether the current outage was logged already: one line per outage, not one per failed try */
  let lost = false;
  let retry: NodeJS.Timeout | null = null;

  function reportLost(err: unknown): void {
    if (lost) return;
    lost = true;
    const code = (err as { code?: unknown } | null)?.code;
    logger.warn(
      {
        err: {
          message: (err as Error | null)?.message ?? 'connection ended',
          ...(typeof code === 'string' && { code }),
        },
      },
      'webhooks: the worker lost its LISTEN connection; polling until it reconnects',
    );
  }

  function scheduleReconnect(): void {
    if (closed || retry) return;
    const wait = backoffMs;
    backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
    retry = setTimeout(() => {
      retry = null;
      void connect();
    }, wait);
  }

  async function connect(): Promise<void> {
    if (closed) return;
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    let gone = false;
    const onGone = (err?: unknown) => {
      if (gone) return;
      gone = true;
      if (client === c) client = null;
      c.end().catch(() => {});
      if (closed) return;
      reportLost(err ?? null);
      scheduleReconnect();
    };
    // without an 'error' listener a lost connection's error event would end the process
    c.on('error', onGone);
    c.on('end', () => onGone());
    c.on('notification', (msg) => {
      if (msg.channel === OUTBOX_CHANNEL) onNotify();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${OUTBOX_CHANNEL}`);
    } catch (err) {
      onGone(err);
      return;
    }
    if (closed || gone) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    backoffMs = minBackoffMs;
    if (lost) {
      lost = false;
      logger.info({}, 'webhooks: the worker listens for outbox writes again');
    }
    onNotify();
  }

  const ready = connect();
  return {
    ready,
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      retry = null;
      await ready;
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
