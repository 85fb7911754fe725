/**
 * Turns every failure into the one error body `{"error": {"code", "message", "details", "requestId"}}`.
 * Fastify's own errors (bad JSON, oversized bodies, schema failures) get stable Trellis codes; anything unknown is
 * logged and becomes a plain 500 that leaks nothing.
 */
import type { ErrorObject } from 'ajv';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type FieldProblem, TrellisError, errorBody, invalid } from '../kernel/index.js';

const fastifyCodes: Record<string, () => TrellisError> = {
  FST_ERR_CTP_INVALID_JSON_BODY: () => new TrellisError('malformed_json'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () =>
    new TrellisError('malformed_json', 'The request body is empty but declared as JSON.'),
  FST_ERR_CTP_BODY_TOO_LARGE: () => new TrellisError('body_too_large'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new TrellisError('unsupported_media_type'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () =>
    new TrellisError('validation_failed', 'The Content-Length header is wrong.'),
  FST_ERR_CTP_INVALID_TYPE: () => new TrellisError('unsupported_media_type'),
};

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
  if (err.statusCode === 413) return new TrellisError('body_too_large');
  if (err.statusCode === 415) return new TrellisError('unsupported_media_type');
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
