/**
 * Request bodies on their way upstream. A client's slowness must not hold an upstream connection (issue 8, item
 * 13: 600 slow uploads of one key took all 512 connections of an upstream, and every other caller hung):
 *
 * - a body whose declared length is at most `bufferedBodyBytes` is read whole before the call takes an upstream
 *   connection, as nginx does with `proxy_request_buffering`; most API bodies are small;
 * - a larger or chunked body is streamed, and takes one of its application's `uploadsPerApplication` places until
 *   its response is done; beyond them the call is refused with 429 `too_many_uploads`, before it counts;
 * - a body that sends no byte for `idleTimeoutMs` while the gateway could take one is cut off with 408
 *   `request_timeout` (waiting on a slow upstream is not the client's idleness).
 */
import { type Readable, Transform, pipeline } from 'node:stream';
import { type Denial, deny } from './denials.js';
import { BodyTooLargeError, RequestTimeoutError } from './proxy.js';
import type { RequestContext } from './request-context.js';

export interface RequestBodyOptions {
  /** Declared bodies up to this size are read whole before the upstream call. */
  bufferedBodyBytes: number;
  /** A body that sends nothing for this long is refused (408). */
  idleTimeoutMs: number;
  /** Streamed (larger or chunked) uploads one application may have in flight. */
  uploadsPerApplication: number;
}

/** Why a body could not be read. */
export type BodyFailure = 'request_timeout' | 'aborted';

function isStreamed(ctx: RequestContext, bufferedBodyBytes: number): boolean {
  const declared = ctx.req.headers['content-length'];
  if (declared !== undefined) return Number(declared) > bufferedBodyBytes;
  return ctx.req.headers['transfer-encoding'] !== undefined;
}

/** The request bodies of one gateway: the buffering rule, the idle timeout, and the uploads in flight. */
export class RequestBodies {
  private readonly uploads = new Map<string, number>();

  constructor(private readonly options: RequestBodyOptions) {}

  /**
   * An access check: a streamed upload takes a place of its application, given back when the response closes.
   * @example { name: 'check client', run: (ctx, deps) => checkClient(ctx) ?? deps.bodies.admit(ctx) }
   */
  admit(ctx: RequestContext): Denial | null {
    // a response already closed would never give the place back (and the pipeline stops there anyway)
    if (ctx.res.destroyed || !isStreamed(ctx, this.options.bufferedBodyBytes)) return null;
    const applicationId = ctx.app!.applicationId;
    const current = this.uploads.get(applicationId) ?? 0;
    if (current >= this.options.uploadsPerApplication) return deny('too_many_uploads');
    this.uploads.set(applicationId, current + 1);
    ctx.res.once('close', () => {
      const left = (this.uploads.get(applicationId) ?? 1) - 1;
      if (left <= 0) this.uploads.delete(applicationId);
      else this.uploads.set(applicationId, left);
    });
    return null;
  }

  /**
   * The body as it goes upstream, given to `ready`: none, a buffer read whole, or a stream (counted against the
   * service's limit when no length was declared). Synchronous when there is no body or it is streamed.
   */
  read(
    ctx: RequestContext,
    ready: (body: Buffer | Readable | null) => void,
    fail: (failure: BodyFailure) => void,
  ): void {
    const req = ctx.req;
    const declared = req.headers['content-length'];
    if (declared !== undefined) {
      ctx.bytesIn = Number(declared) || 0;
      if (ctx.bytesIn === 0) ready(null);
      else if (ctx.bytesIn <= this.options.bufferedBodyBytes) this.readWhole(ctx, ready, fail);
      else ready(this.stream(ctx, null));
      return;
    }
    if (req.headers['transfer-encoding'] === undefined) ready(null);
    else ready(this.stream(ctx, ctx.service!.maxBodyBytes));
  }

  private readWhole(
    ctx: RequestContext,
    ready: (body: Buffer) => void,
    fail: (failure: BodyFailure) => void,
  ): void {
    const req = ctx.req;
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      return true;
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      timer.refresh();
    };
    const timer = setTimeout(() => {
      if (settle()) fail('request_timeout');
    }, this.options.idleTimeoutMs);
    timer.unref();
    req.on('data', onData);
    req.once('end', () => {
      if (settle()) ready(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    // a client that leaves before its body is in: 'error' (aborted) then 'close'
    req.once('error', () => {});
    req.once('close', () => {
      if (settle()) fail('aborted');
    });
  }

  /** The request piped through a stream that notices idleness and, with `max`, counts the bytes. */
  private stream(ctx: RequestContext, max: number | null): Readable {
    const body = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        timer.refresh();
        if (max !== null) {
          ctx.bytesIn += chunk.length;
          if (ctx.bytesIn > max) {
            callback(new BodyTooLargeError('The request body is too large.'));
            return;
          }
        }
        callback(null, chunk);
      },
      flush(callback) {
        clearTimeout(timer);
        callback();
      },
      destroy(err, callback) {
        clearTimeout(timer);
        callback(err);
      },
    });
    const timer = setTimeout(() => {
      // the upstream (or the lane) is not taking the body: the client is held back, not idle
      if (body.writableNeedDrain) timer.refresh();
      else body.destroy(new RequestTimeoutError('The request body stalled.'));
    }, this.options.idleTimeoutMs);
    timer.unref();
    // an upstream may answer before it read the whole body: the call is over, nothing is idle any more
    ctx.res.once('close', () => clearTimeout(timer));
    pipeline(ctx.req, body, () => {});
    return body;
  }
}
