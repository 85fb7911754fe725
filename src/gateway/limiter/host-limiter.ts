/**
 * Counters shared by the gateway processes of one host without an external server: the cluster's primary process
 * holds them (a {@link MemoryLimiter}, or whatever limiter it is given) and every gateway process asks it over the
 * cluster's IPC channel. So `trellis start --workers N` on the embedded defaults enforces each limit exactly across
 * its N processes; Redis stays the way to share counters across hosts.
 *
 * The requests of one event-loop turn in a gateway process share one message (as the strict Redis limiter shares one
 * script call), and the primary handles a message's requests one after the other in arrival order — the same
 * outcome as one check-and-increment per request. A request waits for one IPC round trip shared with its
 * neighbours. If the primary does not answer (it is gone, or stuck past `timeoutMs`), the service's failure mode
 * decides: `open` counts in this process alone, `closed` refuses with `unavailable`.
 */
import type {
  ConsumeOptions,
  CounterCheck,
  CounterSubject,
  Limiter,
  LimiterFailure,
  LimiterOutcome,
} from './limiter.js';
import { MemoryLimiter } from './memory-limiter.js';

/**
 * A check as it travels: `[key, windowStart, windowEnd (null: never ends), limit, delta, subject]` (JSON has no
 * Infinity). The subject lets the primary start counters from recorded usage.
 */
type WireCheck = [string, number, number | null, number, number, CounterSubject | null];

interface ConsumeMessage {
  type: 'trellis:limiter:consume';
  id: number;
  now: number;
  requests: WireCheck[][];
}

interface OutcomesMessage {
  type: 'trellis:limiter:outcomes';
  id: number;
  outcomes: LimiterOutcome[];
}

/** The side of an IPC channel a gateway process has (`process` in a cluster worker). */
export interface LimiterChannel {
  send(message: ConsumeMessage): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
  readonly connected: boolean;
}

/** The primary's side of one gateway process's channel (a cluster `Worker`). */
export interface CounterPeer {
  /** The callback hears of a failed send (a worker that died meanwhile) instead of an 'error' event. */
  send(message: OutcomesMessage, callback: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  isConnected(): boolean;
}

function isMessage<T extends { type: string }>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

function toWire(check: CounterCheck): WireCheck {
  return [
    check.key,
    check.windowStart,
    check.windowEnd === Number.POSITIVE_INFINITY ? null : check.windowEnd,
    check.limit,
    check.delta,
    check.subject ?? null,
  ];
}

function fromWire(w: WireCheck): CounterCheck {
  return {
    key: w[0],
    windowStart: w[1],
    windowEnd: w[2] ?? Number.POSITIVE_INFINITY,
    limit: w[3],
    delta: w[4],
    ...(w[5] ? { subject: w[5] } : {}),
  };
}

/**
 * In the primary: answers the consume messages of a gateway process from `limiter` (the host's one set of
 * counters). Call it for every worker forked.
 * @example const counters = new MemoryLimiter(); cluster.on('fork', (w) => serveHostCounters(w, counters));
 */
export function serveHostCounters(peer: CounterPeer, limiter: Limiter): void {
  peer.on('message', (message: unknown) => {
    if (!isMessage<ConsumeMessage>(message, 'trellis:limiter:consume')) return;
    void answer(peer, limiter, message);
  });
}

async function answer(peer: CounterPeer, limiter: Limiter, message: ConsumeMessage): Promise<void> {
  const options = { mode: 'strict', failureMode: 'closed', now: message.now } as const;
  const outcomes: LimiterOutcome[] = [];
  // one after the other: each request sees the counts of those before it, as if each came alone
  for (const request of message.requests) {
    outcomes.push(await limiter.consume(request.map(fromWire), options));
  }
  // a worker that died meanwhile needs no answer: its requests died with it
  if (peer.isConnected()) peer.send({ type: 'trellis:limiter:outcomes', id: message.id, outcomes }, () => {});
}

interface Waiting {
  readonly checks: readonly CounterCheck[];
  readonly options: ConsumeOptions;
  readonly resolve: (outcome: LimiterOutcome) => void;
}

interface Sent {
  readonly requests: Waiting[];
  readonly timer: NodeJS.Timeout;
}

export interface HostLimiterOptions {
  channel: LimiterChannel;
  /** How long a request waits for the primary before its failure mode decides. Default 1,000 ms. */
  timeoutMs?: number;
  onFailure?: (failure: LimiterFailure) => void;
}

/** In a gateway process: counters held by the cluster's primary (see the module's comment). */
export class HostLimiter implements Limiter {
  private readonly channel: LimiterChannel;
  private readonly timeoutMs: number;
  private readonly onFailure: (failure: LimiterFailure) => void;
  /** Where a failing-open request counts while the primary does not answer. */
  private readonly local = new MemoryLimiter();
  private batch: Waiting[] = [];
  private readonly sent = new Map<number, Sent>();
  private nextId = 1;
  private readonly listener = (message: unknown) => {
    if (isMessage<OutcomesMessage>(message, 'trellis:limiter:outcomes')) this.settle(message);
  };

  constructor(options: HostLimiterOptions) {
    this.channel = options.channel;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.onFailure = options.onFailure ?? (() => {});
    this.channel.on('message', this.listener);
  }

  consume(checks: readonly CounterCheck[], options: ConsumeOptions): Promise<LimiterOutcome> {
    return new Promise((resolve) => {
      if (this.batch.length === 0) setImmediate(() => this.flush());
      this.batch.push({ checks, options, resolve });
    });
  }

  private flush(): void {
    const requests = this.batch;
    this.batch = [];
    if (requests.length === 0) return;
    const id = this.nextId++;
    const message: ConsumeMessage = {
      type: 'trellis:limiter:consume',
      id,
      now: requests[requests.length - 1]!.options.now,
      requests: requests.map((r) => r.checks.map(toWire)),
    };
    let delivered = false;
    try {
      delivered = this.channel.connected && this.channel.send(message);
    } catch {
      delivered = false;
    }
    // `send` returning false only means the pipe is backed up: the message still goes, so wait for it
    if (!delivered && !this.channel.connected) {
      this.fail(requests, new Error('the primary process is gone'));
      return;
    }
    const timer = setTimeout(() => {
      if (!this.sent.delete(id)) return;
      this.fail(requests, new Error(`the primary process did not answer within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    timer.unref();
    this.sent.set(id, { requests, timer });
  }

  private settle(message: OutcomesMessage): void {
    const sent = this.sent.get(message.id);
    if (!sent) return; // timed out already: those requests were decided by their failure mode
    this.sent.delete(message.id);
    clearTimeout(sent.timer);
    sent.requests.forEach((request, i) => {
      request.resolve(message.outcomes[i] ?? { kind: 'unavailable' });
    });
  }

  private fail(requests: Waiting[], error: Error): void {
    for (const request of requests) {
      const { mode, failureMode } = request.options;
      this.onFailure({ mode, failureMode, error });
      if (failureMode === 'closed') request.resolve({ kind: 'unavailable' });
      else void Promise.resolve(this.local.consume(request.checks, request.options)).then(request.resolve);
    }
  }

  /** Sends what is waiting and lets the answers in flight arrive (each is bounded by `timeoutMs`). */
  async close(): Promise<void> {
    this.flush();
    const deadline = Date.now() + this.timeoutMs;
    while (this.sent.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    this.channel.off('message', this.listener);
  }
}
