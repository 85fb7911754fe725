/**
 * The one error catalogue of Trellis: every failure a client can see has a stable code, an HTTP status and a
 * default message here. Services throw `TrellisError`; the HTTP faces render it as
 * `{"error": {"code", "message", "details", "requestId"}}`. Anything else is logged and becomes a plain 500.
 */
export const errorCatalogue = {
  // request shape
  malformed_json: { status: 400, message: 'The request body is not valid JSON.' },
  validation_failed: { status: 400, message: 'The request is not valid.' },
  body_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'The request content type is not supported.' },
  malformed_request: { status: 400, message: 'The request is not valid HTTP.' },
  request_timeout: { status: 408, message: 'The request took too long to arrive.' },
  uri_too_long: { status: 414, message: 'The request URL is too long.' },
  headers_too_large: { status: 431, message: 'The request headers are too large.' },
  // who is asking
  unauthenticated: { status: 401, message: 'A valid admin API token is required.' },
  forbidden: { status: 403, message: 'This token may not do that.' },
  csrf_invalid: {
    status: 403,
    message: 'The form is out of date or was not sent from this site; reload and try again.',
  },
  // what is asked for
  not_found: { status: 404, message: 'No such resource.' },
  route_not_found: { status: 404, message: 'No such route.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  conflict: { status: 409, message: 'The resource conflicts with an existing one.' },
  invalid_state: { status: 409, message: 'The resource is not in a state that allows this.' },
  limit_reached: { status: 409, message: 'A limit of the resource was reached.' },
  // every rule matching a call counts it: a second rule of the same verb, pattern and metric would count it twice
  mapping_rule_exists: {
    status: 409,
    message: 'The service has a mapping rule with this verb, pattern and metric already.',
  },
  // issue 11: production access comes through go-live, not by creating a production application
  certification_required: {
    status: 409,
    message: 'Production access comes with go-live: certification, then the provider’s approval.',
  },
  rate_limited: { status: 429, message: 'Too many requests.' },
  // a URL Trellis would fetch from on someone's behalf points into a network it refuses (src/outbound)
  outbound_address_refused: {
    status: 422,
    message: 'The URL points to an address Trellis does not fetch from.',
  },
  // consumer webhooks (issue 9): a published event's payload against its type's schema; a reused idempotency key
  payload_invalid: { status: 422, message: 'The payload does not match the schema of its event type.' },
  idempotency_key_reused: {
    status: 409,
    message: 'This Idempotency-Key was used with another request; use a new key for a new request.',
  },
  // server side
  internal: { status: 500, message: 'Something went wrong on our side.' },
  unavailable: { status: 503, message: 'The service is temporarily unavailable.' },
  database_unavailable: {
    status: 503,
    message: 'The database cannot be reached right now; try again shortly.',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

/** One problem with one field of a request, as listed in `details` of a `validation_failed` error. */
export interface FieldProblem {
  field: string;
  message: string;
}

/**
 * An expected failure with a stable code.
 * @example throw new TrellisError('not_found', 'No application app_123.')
 */
export class TrellisError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message?: string, details?: unknown) {
    super(message ?? errorCatalogue[code].message);
    this.name = 'TrellisError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.details = details;
  }
}

/** Shorthand for the most common failure: `throw notFound('application', id)`. */
export function notFound(kind: string, id: string): TrellisError {
  return new TrellisError('not_found', `No ${kind} ${id}.`);
}

/** A `validation_failed` error naming every bad field. */
export function invalid(problems: FieldProblem[]): TrellisError {
  const message = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  return new TrellisError('validation_failed', message, problems);
}

/** The body every error response carries. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown; requestId: string };
}

export function errorBody(err: TrellisError, requestId: string): ErrorBody {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.details === undefined ? {} : { details: err.details }),
      requestId,
    },
  };
}
