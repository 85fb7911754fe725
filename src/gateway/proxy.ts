/**
 * Forwarding to upstreams: one undici `Pool` per upstream origin with keep-alive, bodies streamed both ways with
 * backpressure (never buffered whole), hop-by-hop headers dropped per RFC 9110 §7.6.1.
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

export type UpstreamFailure = 'unreachable' | 'timeout' | 'body_too_large' | 'aborted';

/** Raised by the request body stream when it grows past the service's limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'TRELLIS_BODY_TOO_LARGE';
}

export interface ForwardRequest {
  origin: string;
  path: string;
  method: string;
  /** Flat `[name, value, name, value…]`. */
  headers: string[];
  body: Readable | null;
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
  /** Connections per upstream origin. */
  connections?: number;
  keepAliveTimeoutMs?: number;
}

function classify(err: Error): UpstreamFailure {
  if (err instanceof BodyTooLargeError) return 'body_too_large';
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

  constructor(private readonly call: ForwardRequest) {}

  clientGone(): void {
    this.gone = true;
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
  }

  onError(error: Error): void {
    this.finished = true;
    const failure = error instanceof ClientGoneError ? 'aborted' : classify(error);
    const res = this.call.res;
    if (!res.headersSent && !res.destroyed) {
      this.call.onFail(failure, error);
      return;
    }
    // headers are out: all that is left is to cut the response short so the client sees it is incomplete
    res.destroy();
    this.call.onEnd(this.status, this.bytes, failure);
  }
}

class ClientGoneError extends Error {
  override readonly name = 'AbortError';
}

/** Pools per origin; a pool is made on first use. */
export class UpstreamProxy {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly options: ProxyOptions) {}

  /** Sends the call upstream; the returned relay must be told if the client leaves (`res` 'close'). */
  forward(call: ForwardRequest): Relay {
    let pool = this.pools.get(call.origin);
    if (!pool) {
      pool = new Pool(call.origin, {
        connections: this.options.connections ?? 512,
        pipelining: 1,
        keepAliveTimeout: this.options.keepAliveTimeoutMs ?? 30_000,
        connectTimeout: this.options.connectTimeoutMs,
        headersTimeout: this.options.responseTimeoutMs,
        bodyTimeout: this.options.responseTimeoutMs,
      });
      this.pools.set(call.origin, pool);
    }
    const relay = new RelayHandler(call);
    pool.dispatch(
      {
        path: call.path,
        method: call.method,
        headers: call.headers,
        body: call.body,
        // requests with bodies are not retried on another connection; GET and HEAD are idempotent
        idempotent: call.method === 'GET' || call.method === 'HEAD',
      },
      relay,
    );
    return relay;
  }

  /** Closes pools of origins no longer in any service (after a snapshot reload); in-flight requests finish. */
  retainOnly(origins: ReadonlySet<string>): void {
    for (const [origin, pool] of this.pools) {
      if (origins.has(origin)) continue;
      this.pools.delete(origin);
      void pool.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => p.destroy())));
  }
}
