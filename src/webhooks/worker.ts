/**
 * The webhook worker (issue 9): drains the outbox into messages, one per (event, subscribed endpoint), and
 * delivers them, signed per Standard Webhooks v1, retried on the published schedule (schedule.ts).
 *
 * The database is the queue. An event and the change that caused it commit together (runChange); fan-out marks
 * the event (`events.dispatched_at`) in the transaction that makes its messages; a delivery is claimed with a
 * lease (`locked_until`), made, then settled with its attempt logged. A worker killed at any point leaves either
 * an event not yet marked (fanned out again, the unique (endpoint, event) key keeps one message) or a lease that
 * expires (the message is delivered again, with the same `webhook-id`): at least once, nothing lost. A settlement
 * the database refuses while it is away is kept and written when it answers, before the lease ends where it can
 * (settlement-queue.ts). Any number of workers share a PostgreSQL database (`FOR UPDATE SKIP LOCKED`); on SQLite,
 * run one.
 *
 * Every time is read from the injected clock, so tests drive the schedule without sleeping.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type ChangeDeps, runChange, systemActor } from '../events/index.js';
import { type Clock, type Logger, newId } from '../kernel/index.js';
import type { Sealer } from '../oauth/index.js';
import { OutboundError, type OutboundClient } from '../outbound/index.js';
import type { Mailer } from '../mail/index.js';
import type { Db } from '../store/index.js';
import {
  type DisabledNotice,
  deferEndpoint,
  mailDisabled,
  releaseMessages,
  trackFailing,
} from './delivery-health.js';
import { type EndpointThrottle, effectiveRate, memoryThrottle } from './endpoint-throttle.js';
import { roundFailureReporter } from './round-failures.js';
import { nextRetryDelay, parseRetryAfter } from './schedule.js';
import { createSettlementQueue } from './settlement-queue.js';
import { webhookHeaders } from './signing.js';
import type { WebhookAttemptTable, WebhookMessageTable } from './webhook-tables.js';
import {
  type ClaimedMessage,
  type EndpointRow,
  claimDueMessages,
  claimUndispatchedEvents,
  findEndpointRow,
  findEndpointRows,
  insertAttemptRows,
  type SettleSet,
  insertMessageRows,
  listEnabledEndpointRows,
  markEventsDispatched,
  messageExists,
  relaxCommit,
  settleMessage,
  settleSucceeded,
  toEndpointView,
  updateEndpointRow,
} from './webhooks.store.js';

/** How a delivery is sent: the guarded outbound client (src/outbound) satisfies it. */
export type WebhookSender = Pick<OutboundClient, 'request'>;

/** The largest part of an answer kept in the delivery log. */
export const responseExcerptBytes = 1024;

export interface WebhookWorkerOptions {
  /** Names this worker in leases (default: a random id with the pid). */
  workerId?: string;
  /** Events fanned out per transaction (default 200). */
  fanOutBatch?: number;
  /** Messages claimed at once, delivered concurrently, settled in one transaction (default 64). */
  deliveryBatch?: number;
  /** How long a claim holds a message; longer than the outbound timeout (default 60 s). */
  leaseMs?: number;
  /** Idle wait between polls when there is nothing to do, in real milliseconds (default 250). */
  pollMs?: number;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  /** An endpoint whose every attempt failed for this long is disabled (default 5 days). */
  disableAfterMs?: number;
}

export interface WebhookWorkerDeps {
  db: Db;
  clock: Clock;
  sealer: Sealer;
  sender: WebhookSender;
  options?: WebhookWorkerOptions;
  /** Where the worker reports what goes wrong, and what recovers. */
  logger?: Logger;
  /** Told after each attempt (metrics). */
  onAttempt?: (outcome: AttemptOutcome) => void;
  /** Each endpoint's rate and circuit breaker (default: in this process's memory; Redis shares it). */
  throttle?: EndpointThrottle;
  /** Tells an endpoint's owner it was disabled for failing (default: no mail). */
  mailer?: Mailer;
}

export interface AttemptOutcome {
  endpointId: string;
  messageId: string;
  status: number | null;
  outcome: 'succeeded' | 'failed';
  /** false once the schedule is done (or the endpoint is gone) */
  willRetry: boolean;
  latencyMs: number;
  /** how it went, for the metrics' `outcome` label (see attemptKind) */
  kind: AttemptKind;
}

export type AttemptKind =
  | 'success'
  | 'http_4xx'
  | 'http_429'
  | 'http_5xx'
  | 'http_other'
  | 'timeout'
  | 'network'
  | 'refused'
  | 'redirect'
  | 'too_large';

/** An attempt's outcome from its status, or from the outbound client's error code when there was no answer. */
export function attemptKind(status: number | null, errorCode: string | null): AttemptKind {
  if (status !== null) {
    if (status >= 200 && status < 300) return 'success';
    if (status === 429) return 'http_429';
    if (status >= 400 && status < 500) return 'http_4xx';
    if (status >= 500) return 'http_5xx';
    return 'http_other';
  }
  switch (errorCode) {
    case 'outbound_timeout':
      return 'timeout';
    case 'outbound_address_refused':
    case 'outbound_scheme_refused':
    case 'outbound_url_invalid':
      return 'refused';
    case 'outbound_redirect_refused':
      return 'redirect';
    case 'outbound_too_large':
      return 'too_large';
    default:
      return 'network';
  }
}

export interface TickResult {
  /** events fanned out */
  events: number;
  /** messages made */
  messages: number;
  /** attempts made */
  attempts: number;
}

export interface WebhookWorker {
  readonly workerId: string;
  /** One round: fan out what is new, then deliver what is due. Tests call this after moving the clock. */
  tick(): Promise<TickResult>;
  /** Fans out new events only. */
  fanOut(): Promise<{ events: number; messages: number }>;
  /** Delivers due messages only (one claim). */
  deliverDue(): Promise<number>;
  /** Runs rounds until stopped, waiting `pollMs` when a round found nothing. */
  start(): void;
  /** Cuts the idle wait short (a change was just committed). */
  nudge(): void;
  /**
   * Stops after the round in progress and its settlement; a settlement the database refuses is then dropped (its
   * messages are delivered again when their lease ends) rather than waited for.
   */
  stop(): Promise<void>;
}

function subscribed(endpoint: EndpointRow, type: string): boolean {
  const types = JSON.parse(endpoint.event_types) as string[];
  return types.includes('*') || types.includes(type);
}

/** The body every endpoint receives for an event (Standard Webhooks' `type`, `timestamp`, `data`). */
export function messageBody(event: {
  id: string;
  type: string;
  occurredAt: string;
  payload: string;
}): string {
  return `{"type":${JSON.stringify(event.type)},"timestamp":${JSON.stringify(event.occurredAt)},"eventId":${JSON.stringify(event.id)},"version":1,"data":${event.payload}}`;
}

function excerptOf(body: Buffer): string {
  // PostgreSQL text cannot hold NUL
  return body.subarray(0, responseExcerptBytes).toString('utf8').replaceAll(String.fromCharCode(0), '');
}

/**
 * @example const worker = createWebhookWorker({ db, clock, sealer, sender: outboundClient }); worker.start()
 */
export function createWebhookWorker(deps: WebhookWorkerDeps): WebhookWorker {
  const { db, clock, sealer, sender } = deps;
  const o = deps.options ?? {};
  const workerId = o.workerId ?? `wkr_${process.pid}_${randomBytes(4).toString('hex')}`;
  const fanOutBatch = o.fanOutBatch ?? 200;
  const deliveryBatch = o.deliveryBatch ?? 64;
  const leaseMs = o.leaseMs ?? 60_000;
  const pollMs = o.pollMs ?? 250;
  const random = o.random ?? Math.random;
  const disableAfterMs = o.disableAfterMs ?? 5 * 86_400_000;
  const throttle = deps.throttle ?? memoryThrottle();
  const changeDeps: ChangeDeps = { db, clock };

  async function fanOut(): Promise<{ events: number; messages: number }> {
    return db.transaction().execute(async (tx) => {
      await relaxCommit(tx);
      const events = await claimUndispatchedEvents(tx, fanOutBatch);
      if (events.length === 0) return { events: 0, messages: 0 };
      const endpoints = await listEnabledEndpointRows(tx);
      const now = new Date(clock.now()).toISOString();
      const rows: WebhookMessageTable[] = [];
      for (const event of events) {
        const body = messageBody(event);
        for (const endpoint of endpoints) {
          if (!subscribed(endpoint, event.type)) continue;
          rows.push({
            id: newId('webhookMessage', clock.now()),
            endpoint_id: endpoint.id,
            event_id: event.id,
            event_type: event.type,
            body,
            state: 'pending',
            attempts: 0,
            next_attempt_at: now,
            locked_until: null,
            locked_by: null,
            last_status: null,
            last_error: null,
            created_at: now,
            updated_at: now,
          });
        }
      }
      await insertMessageRows(tx, rows);
      await markEventsDispatched(
        tx,
        events.map((e) => e.id),
        now,
      );
      return { events: events.length, messages: rows.length };
    });
  }

  interface Settlement {
    message: ClaimedMessage;
    endpoint: EndpointRow;
    attempt: WebhookAttemptTable;
    set: SettleSet;
    gone: boolean;
    /** the breaker opened on this attempt: the endpoint's other messages wait until then */
    pausedUntil: number | null;
  }

  /** Sends one message and says how to settle it (nothing is written yet). */
  async function send(
    message: ClaimedMessage,
    endpoint: EndpointRow | undefined,
  ): Promise<Settlement | null> {
    if (!endpoint) return null; // deleted meanwhile; its messages went with it
    const now = clock.now();
    const secrets = [sealer.open(endpoint.secret)];
    if (
      endpoint.previous_secret !== null &&
      endpoint.previous_secret_expires_at !== null &&
      endpoint.previous_secret_expires_at > new Date(now).toISOString()
    ) {
      secrets.push(sealer.open(endpoint.previous_secret));
    }
    const headers = webhookHeaders(message.id, Math.floor(now / 1000), message.body, secrets);
    const started = performance.now();
    let status: number | null = null;
    let excerpt = '';
    let error: string | null = null;
    let errorCode: string | null = null;
    let retryAfterHeader: string | string[] | undefined;
    try {
      const res = await sender.request(endpoint.url, { method: 'POST', headers, body: message.body });
      status = res.status;
      excerpt = excerptOf(res.body);
      retryAfterHeader = res.headers['retry-after'];
    } catch (err) {
      errorCode = err instanceof OutboundError ? err.code : null;
      error = err instanceof OutboundError ? `${err.code}: ${err.message}` : (err as Error).message;
    }
    const latencyMs = Math.round(performance.now() - started);
    const succeeded = status !== null && status >= 200 && status < 300;
    const gone = status === 410;
    const attemptsMade = message.attempts + 1;
    const settledAt = clock.now();
    const retryAfter = status === 429 || status === 503 ? parseRetryAfter(retryAfterHeader, settledAt) : null;
    const delay = succeeded || gone ? null : nextRetryDelay(attemptsMade, retryAfter, random);
    const state = succeeded ? 'succeeded' : delay === null ? 'failed' : 'pending';
    // the endpoint's breaker and rate learn how it went; a paused endpoint's retry waits for the pause
    const health = await throttle
      .report(endpoint.id, succeeded, settledAt, retryAfter)
      .catch((err: unknown) => {
        deps.logger?.warn(
          { err, endpointId: endpoint.id },
          'webhooks: cannot report to the endpoint throttle',
        );
        return { blockedUntil: null, opened: false };
      });
    const dueAt = Math.max(settledAt + (delay ?? 0), health.blockedUntil ?? 0);
    deps.onAttempt?.({
      endpointId: endpoint.id,
      messageId: message.id,
      status,
      outcome: succeeded ? 'succeeded' : 'failed',
      willRetry: state === 'pending',
      latencyMs,
      kind: attemptKind(status, errorCode),
    });
    return {
      message,
      endpoint,
      gone,
      pausedUntil: health.opened ? health.blockedUntil : null,
      set: {
        state,
        attempts: attemptsMade,
        next_attempt_at: new Date(state === 'pending' ? dueAt : settledAt).toISOString(),
        last_status: status,
        last_error: error,
        updated_at: new Date(settledAt).toISOString(),
      },
      attempt: {
        id: newId('webhookAttempt', settledAt),
        message_id: message.id,
        endpoint_id: endpoint.id,
        attempted_at: new Date(now).toISOString(),
        status,
        outcome: succeeded ? 'succeeded' : 'failed',
        latency_ms: latencyMs,
        response_excerpt: excerpt,
        error,
      },
    };
  }

  /**
   * Writes a batch's outcomes in one transaction (one commit for the batch, not one per message): each message
   * this worker still holds is settled, every attempt that happened is logged, and an endpoint that answered 410
   * is disabled with an event.
   */
  async function settle(settlements: readonly Settlement[]): Promise<void> {
    if (settlements.length === 0) return;
    const notices: DisabledNotice[] = [];
    await runChange(changeDeps, systemActor, async (tx, record) => {
      await relaxCommit(tx);
      const held = new Set<string>();
      const succeeded = new Map<number, string[]>();
      for (const s of settlements) {
        if (s.set.state !== 'succeeded' || s.set.last_status === null) {
          if (await settleMessage(tx, s.message.id, workerId, s.set)) held.add(s.message.id);
        } else succeeded.set(s.set.last_status, [...(succeeded.get(s.set.last_status) ?? []), s.message.id]);
      }
      const at = new Date(clock.now()).toISOString();
      for (const [status, ids] of succeeded) {
        for (const id of await settleSucceeded(tx, ids, workerId, status, at)) held.add(id);
      }
      const attempts: WebhookAttemptTable[] = [];
      for (const s of settlements) {
        // a message deleted with its endpoint meanwhile has no log left to write to
        if (held.has(s.message.id) || (await messageExists(tx, s.message.id))) attempts.push(s.attempt);
      }
      await insertAttemptRows(tx, attempts);
      const disabled = new Set<string>();
      for (const s of settlements) {
        if (!s.gone || s.endpoint.enabled !== 1 || disabled.has(s.endpoint.id)) continue;
        disabled.add(s.endpoint.id);
        // read again: a settlement written a second time (its first commit's answer lost) disables it once
        const current = await findEndpointRow(tx, s.endpoint.id);
        if (current?.enabled !== 1) continue;
        // 410 Gone: the receiver says the endpoint will not come back (Standard Webhooks, "Disabling endpoints")
        const at = s.set.updated_at;
        await updateEndpointRow(tx, s.endpoint.id, { enabled: 0, disabled_reason: 'gone', updated_at: at });
        const row = { ...current, enabled: 0, disabled_reason: 'gone', updated_at: at };
        await record({
          type: 'webhook_endpoint.disabled',
          entityType: 'webhook_endpoint',
          entityId: s.endpoint.id,
          payload: { endpoint: toEndpointView(row), endpointId: s.endpoint.id, reason: 'gone' },
        });
      }
      notices.push(...(await settleHealth(tx, record, settlements, disabled)));
    });
    if (notices.length > 0 && deps.mailer) {
      await mailDisabled(db, deps.mailer, notices).catch((err: unknown) => {
        deps.logger?.warn({ err }, 'webhooks: cannot mail the owner of a disabled endpoint');
      });
    }
  }

  /**
   * An endpoint's health after a batch: paused endpoints' messages wait for the pause; `failing_since` follows
   * the attempts; an endpoint that has only failed for `disableAfterMs` is disabled (reason `failing`).
   */
  async function settleHealth(
    tx: Parameters<Parameters<typeof runChange>[2]>[0],
    record: Parameters<Parameters<typeof runChange>[2]>[1],
    settlements: readonly Settlement[],
    alreadyDisabled: Set<string>,
  ): Promise<DisabledNotice[]> {
    const now = clock.now();
    const nowIso = new Date(now).toISOString();
    for (const s of settlements) {
      if (s.pausedUntil !== null)
        await deferEndpoint(tx, s.endpoint.id, new Date(s.pausedUntil).toISOString(), nowIso);
    }
    const succeeded = new Set<string>();
    const failed = new Set<string>();
    for (const s of settlements) (s.attempt.outcome === 'succeeded' ? succeeded : failed).add(s.endpoint.id);
    const failing = await trackFailing(
      tx,
      [...succeeded],
      [...failed],
      nowIso,
      new Date(now - disableAfterMs).toISOString(),
    );
    const notices: DisabledNotice[] = [];
    for (const id of failing) {
      if (alreadyDisabled.has(id)) continue;
      await updateEndpointRow(tx, id, { enabled: 0, disabled_reason: 'failing', updated_at: nowIso });
      const row = await findEndpointRow(tx, id);
      if (!row) continue;
      await record({
        type: 'webhook_endpoint.disabled',
        entityType: 'webhook_endpoint',
        entityId: id,
        payload: { endpoint: toEndpointView(row), endpointId: id, reason: 'failing' },
      });
      const since = row.failing_since ?? nowIso;
      notices.push({
        endpointId: id,
        url: row.url,
        failingSince: since,
        days: Math.floor((now - Date.parse(since)) / 86_400_000),
      });
    }
    return notices;
  }

  /**
   * Which claimed messages go now: as many of each endpoint's as its rate and breaker allow; the others are given
   * back, due when the endpoint may be sent to again.
   */
  async function admit(
    claimed: readonly ClaimedMessage[],
    endpoints: ReadonlyMap<string, EndpointRow>,
    now: number,
  ): Promise<ClaimedMessage[]> {
    const byEndpoint = new Map<string, ClaimedMessage[]>();
    for (const m of claimed) byEndpoint.set(m.endpointId, [...(byEndpoint.get(m.endpointId) ?? []), m]);
    const go: ClaimedMessage[] = [];
    const held = new Map<number, string[]>();
    for (const [id, messages] of byEndpoint) {
      const endpoint = endpoints.get(id);
      if (!endpoint) {
        go.push(...messages);
        continue;
      }
      const rate = effectiveRate(endpoint.rate_per_second ?? null, endpoint.owner_rate_per_second ?? null);
      const grant = await throttle.acquire(id, rate, messages.length, now);
      go.push(...messages.slice(0, grant.granted));
      if (grant.granted < messages.length) {
        const at = grant.retryAt ?? now + 1000;
        held.set(at, [...(held.get(at) ?? []), ...messages.slice(grant.granted).map((m) => m.id)]);
      }
    }
    for (const [at, ids] of held) await releaseMessages(db, ids, workerId, new Date(at).toISOString());
    return go;
  }

  let running: Promise<void> | null = null;
  let stopped = false;

  /**
   * The batches sent and not settled yet, written in order, one at a time. The running loop does not wait for a
   * batch's settlement before claiming and sending the next (its messages stay leased to this worker until
   * settled, so nobody else claims them); it waits for it before settling the next. A settlement the database
   * refuses waits in the queue, and the loop claims nothing until it is written or its lease has ended.
   */
  const settlements = createSettlementQueue<Settlement>({
    write: settle,
    clock,
    logger: deps.logger,
    stopping: () => stopped,
  });

  async function deliverDue(pipelined = false): Promise<number> {
    // a round run by hand (tick) first writes what an earlier one could not, so a kept lease is not claimed past
    if (!pipelined) await settlements.writeOnce();
    const now = clock.now();
    const blocked = await throttle.blocked(now);
    const claimed = await db.transaction().execute(async (tx) => {
      await relaxCommit(tx);
      return claimDueMessages(
        tx,
        workerId,
        new Date(now).toISOString(),
        new Date(now + leaseMs).toISOString(),
        deliveryBatch,
        blocked,
      );
    });
    if (claimed.length === 0) return 0;
    const endpoints = new Map(
      (await findEndpointRows(db, [...new Set(claimed.map((m) => m.endpointId))])).map((e) => [e.id, e]),
    );
    const admitted = await admit(claimed, endpoints, now);
    const sent = await Promise.all(admitted.map((m) => send(m, endpoints.get(m.endpointId))));
    const batch = sent.filter((s): s is Settlement => s !== null);
    if (!pipelined) {
      settlements.add(batch, now + leaseMs);
      await settlements.writeOnce();
      return admitted.length;
    }
    // the previous batch's settlement first: at most one in flight, and this batch held here meanwhile
    await settlements.idle();
    settlements.add(batch, now + leaseMs);
    void settlements.drain();
    return admitted.length;
  }

  async function tick(pipelined = false): Promise<TickResult> {
    const fanned = await fanOut();
    const attempts = await deliverDue(pipelined);
    return { events: fanned.events, messages: fanned.messages, attempts };
  }

  let wake: (() => void) | null = null;
  /** a nudge that came while a round ran: that round may have looked before the change committed */
  let nudged = false;

  const rounds = roundFailureReporter(deps.logger, clock);

  async function loop(): Promise<void> {
    while (!stopped) {
      let busy = false;
      nudged = false;
      // settlements waiting for the database go first: nothing new is claimed (and delivered) meanwhile
      if (settlements.waiting) await settlements.idle();
      if (stopped) break;
      try {
        const r = await tick(true);
        busy = r.events > 0 || r.attempts > 0;
        rounds.succeeded();
      } catch (err) {
        rounds.failed(err);
      }
      if (busy || stopped || nudged) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
    await settlements.idle();
  }

  return {
    workerId,
    tick: () => tick(),
    fanOut,
    deliverDue: () => deliverDue(),
    start() {
      if (running) return;
      stopped = false;
      running = loop();
    },
    nudge() {
      nudged = true;
      wake?.();
    },
    async stop() {
      stopped = true;
      settlements.wake();
      wake?.();
      await running;
      running = null;
    },
  };
}
