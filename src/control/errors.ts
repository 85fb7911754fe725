/**
 * Turns every failure into the one error body `{"error": {"code", "message", "details", "requestId"}}`.
 * Fastify's own errors (bad JSON, oversized bodies, schema failures) get stable Trellis codes; anything unknown is
 * logged and becomes a plain 500 that leaks nothing.
 */
import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorObject } from 'ajv';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, type FieldProblem, TrellisError, errorBody, invalid } from '../kernel/index.js';
import { isDatabaseUnavailable, isForeignKeyViolation, isUniqueViolation } from '../store/index.js';

const fastifyCodes: Record<string, () => TrellisError> = {
  FST_ERR_CTP_INVALID_JSON_BODY: () => new TrellisError('malformed_json'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () =>
    new TrellisError('malformed_json', 'The request body is empty but declared as JSON.'),
  FST_ERR_CTP_BODY_TOO_LARGE: () => new TrellisError('body_too_large'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new TrellisError('unsupported_media_type'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () =>
    new TrellisError('validation_failed', 'The Content-Length header is wrong.'),
  FST_ERR_CTP_INVALID_TYPE: () => new TrellisError('unsupported_media_type'),
  FST_ERR_BAD_URL: () => invalid([{ field: 'url', message: 'has a broken percent-encoding' }]),
  FST_ERR_MAX_PARAM_LENGTH: () =>
    new TrellisError('uri_too_long', 'A path parameter of the URL is too long.'),
};

/** What a client error status means when something other than Trellis refused the request. */
const codeOfStatus: Record<number, ErrorCode> = {
  400: 'validation_failed',
  404: 'route_not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  413: 'body_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  431: 'headers_too_large',
};

/** PostgreSQL's refusals of a value (SQLSTATE class 22: NUL bytes, too long, out of range). */
function isValueRefused(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code);
}

/**
 * Database refusals a client's request can cause, as client errors: two identical writes at once (a unique
 * violation), a write that refers to something deleted meanwhile (a foreign key), a value the database cannot
 * hold. They are a second line: the edge and the operations refuse what they can before the database does.
 */
function fromDatabase(err: unknown): TrellisError | undefined {
  // a lost or refused connection (the database restarting, a network cut): retry later, not a bug
  if (isDatabaseUnavailable(err)) return new TrellisError('database_unavailable');
  if (isUniqueViolation(err)) {
    return new TrellisError('conflict', 'The resource conflicts with an existing one (a concurrent write?).');
  }
  if (isForeignKeyViolation(err)) {
    return new TrellisError(
      'conflict',
      'The change refers to something that no longer exists, or is in use.',
    );
  }
  if (isValueRefused(err)) return new TrellisError('validation_failed', 'A value cannot be stored as given.');
  return undefined;
}

/** The name of the field an ajv error is about, as the client wrote it: `body.plan.name`, `query.limit`. */
function problemOf(part: string, e: ErrorObject): FieldProblem {
  const path = e.instancePath
    .split('/')
    .filter(Boolean)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') {
    return { field: [...path, String(params.additionalProperty)].join('.'), message: 'unknown field' };
  }
  if (e.keyword === 'required') {
    return { field: [...path, String(params.missingProperty)].join('.'), message: 'is required' };
  }
  const field = path.join('.') || part;
  return { field, message: e.message ?? 'is invalid' };
}

function toTrellisError(err: FastifyError): TrellisError | undefined {
  if (err instanceof TrellisError) return err;
  if (err.validation) {
    const part = err.validationContext ?? 'body';
    const problems = dedupe((err.validation as ErrorObject[]).map((e) => problemOf(part, e)));
    return invalid(problems);
  }
  const mapped = err.code ? fastifyCodes[err.code] : undefined;
  if (mapped) return mapped();
  const stored = fromDatabase(err);
  if (stored) return stored;
  const status = err.statusCode ?? 0;
  if (status >= 400 && status < 500) return new TrellisError(codeOfStatus[status] ?? 'validation_failed');
  return undefined;
}

/** Unions produce one ajv error per branch; keep one line per field. */
function dedupe(problems: FieldProblem[]): FieldProblem[] {
  const seen = new Map<string, FieldProblem>();
  for (const p of problems) {
    const prev = seen.get(p.field);
    if (!prev) seen.set(p.field, p);
    else if (!prev.message.includes(p.message)) prev.message += `; ${p.message}`;
  }
  return [...seen.values()];
}

export function sendError(reply: FastifyReply, err: TrellisError): FastifyReply {
  return reply
    .status(err.status)
    .type('application/json')
    .send(errorBody(err, String(reply.request.id)));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const known = toTrellisError(err);
    if (known) return sendError(reply, known);
    req.log.error({ err }, 'unhandled error');
    return sendError(reply, new TrellisError('internal'));
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new TrellisError('route_not_found', `No route ${req.method} ${req.url.split('?')[0]}.`)),
  );
}

/**
 * Fastify's `frameworkErrors`: what its router refuses before any route runs (a broken percent-encoding such as
 * `%ff`, a path parameter longer than `maxParamLength`) gets the one error shape too.
 */
export function frameworkErrorHandler(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  reply.header('X-Request-Id', String(reply.request.id));
  sendError(reply, toTrellisError(err) ?? new TrellisError('malformed_request'));
}

/** The statuses node's HTTP parser refuses with, by the code of its error. */
function clientErrorOf(code: string | undefined): TrellisError {
  if (code === 'HPE_HEADER_OVERFLOW') return new TrellisError('headers_too_large');
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return new TrellisError('request_timeout');
  return new TrellisError('malformed_request');
}

/**
 * The server's `clientError` handler: a request node's HTTP parser refuses (headers, URL included, too large; a
 * broken request line; a request that took too long) never reaches fastify; it is answered here, on the raw socket, in the one
 * error shape, then the connection is closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const known = clientErrorOf(err.code);
    const requestId = `req_${randomBytes(12).toString('hex')}`;
    const body = JSON.stringify(errorBody(known, requestId));
    socket.write(
      `HTTP/1.1 ${known.status} ${STATUS_CODES[known.status] ?? 'Bad Request'}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestId}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  }
  socket.destroy(err);
}
