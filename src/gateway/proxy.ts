/**
 * Forwarding to upstreams: one undici `Pool` per upstream origin with keep-alive, bodies streamed both ways with
 * backpressure (never buffered whole), hop-by-hop headers dropped per RFC 9110 §7.6.1.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
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

/** Relays one upstream response into the client response. */
class RelayHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private status = 0;
  private bytes = 0;
  private finished = false;

  constructor(private readonly call: ForwardRequest) {
    call.res.once('close', () => {
      // the client went away: stop reading from the upstream
      if (!this.finished) this.controller?.abort(new ClientGoneError());
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.call.res.destroyed) controller.abort(new ClientGoneError());
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx informational responses are not relayed
    this.status = statusCode;
    const out: OutgoingHttpHeaders = {};
    const listed = connectionListed(headers.connection);
    for (const name in headers) {
      if (hopByHopHeaders.has(name) || (listed.length > 0 && listed.includes(name))) continue;
      out[name] = headers[name];
    }
    const extra = this.call.responseHeaders;
    for (const name in extra) out[name] = extra[name];
    const res = this.call.res;
    if (statusMessage) res.writeHead(statusCode, statusMessage, out);
    else res.writeHead(statusCode, out);
    res.on('drain', () => controller.resume());
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.call.res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.finished = true;
    this.call.res.end();
    this.call.onEnd(this.status, this.bytes, null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
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

  forward(call: ForwardRequest): void {
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
    pool.dispatch(
      {
        path: call.path,
        method: call.method,
        headers: call.headers,
        body: call.body,
        // requests with bodies are not retried on another connection; GET and HEAD are idempotent
        idempotent: call.method === 'GET' || call.method === 'HEAD',
      },
      new RelayHandler(call),
    );
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
