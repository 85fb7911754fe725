/**
 * Forwarding to upstreams: one undici `Pool` per upstream origin with keep-alive, bodies streamed both ways with
 * backpressure (never buffered whole), hop-by-hop headers dropped per RFC 9110 §7.6.1.
 *
 * A pool has a fixed number of connections and undici queues what is beyond them without a deadline, so each
 * origin has a lane in front of its pool: at most `connections` calls in flight, the others wait in arrival order
 * and are answered 503 `upstream_busy` when their turn has not come within `queueTimeoutMs` (issue 8, item 13:
 * slow uploads took every connection and every other call hung).
 *
 * This is the hot path of every call, so the relay uses undici's raw handler callbacks (`onHeaders` with the
 * header lines as received, no parsed header object) and writes the response head from a flat array.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { type Dispatcher, Pool } from 'undici';

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus `trailer` (trailers are not relayed). */
export const hopByHopHeaders: ReadonlySet<string> = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The names listed in a `Connection` header, which are hop-by-hop too. */
export function connectionListed(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '' && s !== 'close' && s !== 'keep-alive');
}

/** The common `Connection` values that name no other header. */
function listsNothing(value: string): boolean {
  return (
    value.length <= 10 &&
    (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close')
  );
}

export type UpstreamFailure =
  | 'unreachable'
  | 'timeout'
  | 'body_too_large'
  | 'aborted'
  /** no connection of the origin's pool came free within the queue deadline */
  | 'busy'
  /** the client stopped sending its request body */
  | 'request_timeout';

/** Raised by the request body stream when it grows past the service's limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'TRELLIS_BODY_TOO_LARGE';
}

/** Raised by the request body stream when the client sends no byte of it for too long. */
export class RequestTimeoutError extends Error {
  readonly code = 'TRELLIS_REQUEST_TIMEOUT';
}

class UpstreamBusyError extends Error {
  readonly code = 'TRELLIS_UPSTREAM_BUSY';
}

export interface ForwardRequest {
  origin: string;
  path: string;
  method: string;
  /** Flat `[name, value, name, value…]`. */
  headers: string[];
  /** A body read whole (small ones, so a slow client holds no connection), a stream, or none. */
  body: Buffer | Readable | null;
  res: ServerResponse;
  /** Added to the upstream's response headers (rate-limit headers, request id); they win over the upstream's. */
  responseHeaders: OutgoingHttpHeaders;
  /** Called once the response is complete, or has failed after its headers were sent. */
  onEnd(status: number, bytesOut: number, failure: UpstreamFailure | null): void;
  /** Called when the upstream failed before any response was sent: the caller answers the client. */
  onFail(failure: UpstreamFailure, error: Error): void;
}

/** A call on its way: the caller tells it when the client went away, so the upstream is not read for nothing. */
export interface Relay {
  clientGone(): void;
}

export interface ProxyOptions {
  /** Time to open a connection to an upstream before answering 502. */
  connectTimeoutMs: number;
  /** Time to wait for the upstream's response headers, and between body chunks, before answering 504. */
  responseTimeoutMs: number;
  /** Connections per upstream origin: calls in flight to it at once. */
  connections?: number;
  /** How long a call waits for a connection of a full pool before 503 `upstream_busy`. Default 5 s. */
  queueTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
}

function classify(err: Error): UpstreamFailure {
  if (err instanceof BodyTooLargeError) return 'body_too_large';
  if (err instanceof RequestTimeoutError) return 'request_timeout';
  const code = (err as { code?: unknown }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (code === 'UND_ERR_ABORTED' || err.name === 'AbortError') return 'aborted';
  return 'unreachable';
}

/**
 * Relays one upstream response into the client response (undici's raw handler interface: no parsed header
 * object, no wrapper). Header names go out lower-cased, as before.
 */
class RelayHandler implements Dispatcher.DispatchHandler, Relay {
  private abortUpstream: ((err?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private status = 0;
  private bytes = 0;
  private finished = false;
  private gone = false;
  /** queued: waiting in the lane; running: holds one of the lane's places until it completes or fails */
  private state: 'queued' | 'running' | 'done' = 'queued';
  private queueTimer: NodeJS.Timeout | null = null;
  private readonly bodyFailed = (err: Error) => this.leaveQueue(classify(err), err);

  constructor(
    private readonly call: ForwardRequest,
    private readonly lane: Lane,
  ) {}

  /** Sends the call on one of the lane's places. */
  start(): void {
    this.clearQueue();
    this.state = 'running';
    const call = this.call;
    this.lane.pool.dispatch(
      {
        path: call.path,
        method: call.method,
        headers: call.headers,
        body: call.body,
        // requests with bodies are not retried on another connection; GET and HEAD are idempotent
        idempotent: call.method === 'GET' || call.method === 'HEAD',
      },
      this,
    );
  }

  /** Waits for a place; a body that fails meanwhile (idle client, too large) ends the wait. */
  wait(timeoutMs: number): void {
    this.queueTimer = setTimeout(
      () => this.leaveQueue('busy', new UpstreamBusyError('No upstream connection came free in time.')),
      timeoutMs,
    );
    this.queueTimer.unref();
    const body = this.call.body;
    if (body !== null && !Buffer.isBuffer(body)) body.once('error', this.bodyFailed);
  }

  private clearQueue(): void {
    if (this.queueTimer !== null) clearTimeout(this.queueTimer);
    this.queueTimer = null;
    const body = this.call.body;
    if (body !== null && !Buffer.isBuffer(body)) body.off('error', this.bodyFailed);
  }

  private leaveQueue(failure: UpstreamFailure, error: Error): void {
    if (this.state !== 'queued') return;
    this.state = 'done';
    this.clearQueue();
    this.lane.drop(this);
    this.call.onFail(failure, error);
  }

  /** The place is given back once, when the upstream call completed or failed. */
  private release(): void {
    if (this.state !== 'running') return;
    this.state = 'done';
    this.lane.leave();
  }

  clientGone(): void {
    this.gone = true;
    if (this.state === 'queued') {
      this.leaveQueue('aborted', new ClientGoneError());
      return;
    }
    // the client went away: stop reading from the upstream
    if (!this.finished) this.abortUpstream?.(new ClientGoneError());
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.gone || this.call.res.destroyed) abort(new ClientGoneError());
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx informational responses are not relayed
    this.status = statusCode;
    this.resumeUpstream = resume;
    const extra = this.call.responseHeaders;
    const out: string[] = [];
    let listed: string[] | null = null;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1').toLowerCase();
      if (name === 'connection') {
        const value = raw[i + 1]!.toString('latin1');
        if (!listsNothing(value)) listed = [...(listed ?? []), ...connectionListed(value)];
        continue;
      }
      if (hopByHopHeaders.has(name) || extra[name] !== undefined) continue;
      out.push(name, raw[i + 1]!.toString('latin1'));
    }
    if (listed !== null) {
      const drop = listed;
      for (let i = out.length - 2; i >= 0; i -= 2) if (drop.includes(out[i]!)) out.splice(i, 2);
    }
    for (const name in extra) {
      const value = extra[name];
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) out.push(name, v);
      else out.push(name, String(value));
    }
    const res = this.call.res;
    if (statusText) res.writeHead(statusCode, statusText, out);
    else res.writeHead(statusCode, out);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    if (this.call.res.write(chunk)) return true;
    if (this.resumeUpstream !== null) {
      this.call.res.once('drain', this.resumeUpstream);
    }
    return false;
  }

  onComplete(): void {
    this.finished = true;
    this.call.res.end();
    this.call.onEnd(this.status, this.bytes, null);
    this.release();
  }

  onError(error: Error): void {
    this.finished = true;
    const failure = error instanceof ClientGoneError ? 'aborted' : classify(error);
    const res = this.call.res;
    if (!res.headersSent && !res.destroyed) this.call.onFail(failure, error);
    else {
      // headers are out: all that is left is to cut the response short so the client sees it is incomplete
      res.destroy();
      this.call.onEnd(this.status, this.bytes, failure);
    }
    this.release();
  }
}

/** One origin: its pool, and the calls in flight to it and waiting for a place (first come, first served). */
class Lane {
  private active = 0;
  private readonly waiting: RelayHandler[] = [];

  constructor(
    readonly pool: Pool,
    private readonly places: number,
    private readonly queueTimeoutMs: number,
  ) {}

  enter(relay: RelayHandler): void {
    if (this.active < this.places) {
      this.active++;
      relay.start();
      return;
    }
    this.waiting.push(relay);
    relay.wait(this.queueTimeoutMs);
  }

  leave(): void {
    this.active--;
    const next = this.waiting.shift();
    if (next !== undefined) {
      this.active++;
      next.start();
    }
  }

  drop(relay: RelayHandler): void {
    const i = this.waiting.indexOf(relay);
    if (i !== -1) this.waiting.splice(i, 1);
  }
}

class ClientGoneError extends Error {
  override readonly name = 'AbortError';
}

/** Pools per origin, each behind its lane; made on first use. */
export class UpstreamProxy {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly options: ProxyOptions) {}

  /** Sends the call upstream; the returned relay must be told if the client leaves (`res` 'close'). */
  forward(call: ForwardRequest): Relay {
    let lane = this.lanes.get(call.origin);
    if (!lane) {
      const connections = this.options.connections ?? 512;
      const pool = new Pool(call.origin, {
        connections,
        pipelining: 1,
        keepAliveTimeout: this.options.keepAliveTimeoutMs ?? 30_000,
        connectTimeout: this.options.connectTimeoutMs,
        headersTimeout: this.options.responseTimeoutMs,
        bodyTimeout: this.options.responseTimeoutMs,
      });
      lane = new Lane(pool, connections, this.options.queueTimeoutMs ?? 5000);
      this.lanes.set(call.origin, lane);
    }
    const relay = new RelayHandler(call, lane);
    lane.enter(relay);
    return relay;
  }

  /** Closes pools of origins no longer in any service (after a snapshot reload); in-flight requests finish. */
  retainOnly(origins: ReadonlySet<string>): void {
    for (const [origin, lane] of this.lanes) {
      if (origins.has(origin)) continue;
      this.lanes.delete(origin);
      void lane.pool.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    const pools = [...this.lanes.values()].map((l) => l.pool);
    this.lanes.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => p.destroy())));
  }
}
