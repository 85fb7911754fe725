/**
 * The gateway's denial catalogue: every answer the gateway gives instead of the upstream's has a stable code,
 * an HTTP status and a default message here. Clients and dashboards key on the code, so codes never change
 * meaning. The body shape is the one of the rest of Trellis: `{"error": {"code", "message", "requestId"}}`.
 */
export const denialCatalogue = {
  service_not_found: { status: 404, message: 'No API is served at this address.' },
  path_invalid: {
    status: 400,
    message:
      'The request path cannot be used: encoded slashes, backslashes, control characters and `..` above the root are refused.',
  },
  credentials_missing: { status: 401, message: 'The request carries no credentials.' },
  credentials_invalid: { status: 401, message: 'The credentials are not valid for this API.' },
  credentials_revoked: { status: 401, message: 'The credentials were revoked.' },
  token_invalid: { status: 401, message: 'The access token is not valid.' },
  token_expired: { status: 401, message: 'The access token has expired.' },
  token_wrong_audience: { status: 401, message: 'The access token is for another API.' },
  token_revoked: { status: 401, message: 'The access token was revoked.' },
  token_unknown_client: { status: 401, message: 'The access token names no application of this API.' },
  insufficient_scope: { status: 403, message: 'The access token does not allow this call.' },
  application_pending: { status: 403, message: 'The application is awaiting approval.' },
  application_suspended: { status: 403, message: 'The application is suspended.' },
  account_pending: { status: 403, message: 'The developer account is awaiting approval.' },
  account_suspended: { status: 403, message: 'The developer account is suspended.' },
  sandbox_unavailable: {
    status: 403,
    message:
      'This API has no sandbox: sandbox credentials cannot call it. Production credentials come with go-live.',
  },
  ip_not_allowed: { status: 403, message: 'Calls from this address are not allowed for this application.' },
  no_mapping_rule: { status: 404, message: 'No mapping rule matches this request.' },
  method_disabled: { status: 403, message: "This method is not enabled in the application's plan." },
  limit_exceeded: { status: 429, message: 'A usage limit of the plan was reached.' },
  body_too_large: { status: 413, message: 'The request body is too large.' },
  request_timeout: { status: 408, message: 'The request body stopped arriving.' },
  too_many_uploads: {
    status: 429,
    message: 'This application has too many uploads in progress; try again when one has finished.',
  },
  limiter_unavailable: {
    status: 503,
    message: 'Usage limits cannot be checked right now; try again shortly.',
  },
  backend_unavailable: {
    status: 503,
    message: 'The gateway cannot check these credentials right now; try again shortly.',
  },
  upstream_unreachable: { status: 502, message: 'The API behind the gateway could not be reached.' },
  upstream_timeout: { status: 504, message: 'The API behind the gateway did not answer in time.' },
  upstream_busy: { status: 503, message: 'The API behind the gateway is busy; try again shortly.' },
  internal: { status: 500, message: 'Something went wrong in the gateway.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type DenialCode = keyof typeof denialCatalogue;

/** An expected outcome of a phase that stops the request: a value, not an exception. */
export interface Denial {
  readonly code: DenialCode;
  readonly status: number;
  readonly message: string;
  /** Extra facts for the client, e.g. which limit was hit. */
  readonly details?: Record<string, unknown>;
}

/**
 * @example return deny('ip_not_allowed')
 */
export function deny(code: DenialCode, message?: string, details?: Record<string, unknown>): Denial {
  const entry = denialCatalogue[code];
  return details === undefined
    ? { code, status: entry.status, message: message ?? entry.message }
    : { code, status: entry.status, message: message ?? entry.message, details };
}

/** The JSON body of a denial. */
export function denialBody(denial: Denial, requestId: string): string {
  return JSON.stringify({
    error: {
      code: denial.code,
      message: denial.message,
      ...(denial.details === undefined ? {} : { details: denial.details }),
      requestId,
    },
  });
}

/** Denials that mean "this bearer token is no good", RFC 6750 §3.1 `invalid_token`. */
const invalidTokenCodes: ReadonlySet<DenialCode> = new Set([
  'credentials_invalid',
  'token_invalid',
  'token_expired',
  'token_wrong_audience',
  'token_revoked',
  'token_unknown_client',
]);

/**
 * The `WWW-Authenticate` challenge a bearer-protected (oauth2) API sends with a 401 or 403, so OAuth clients
 * know to fetch a new token (RFC 6750 §3). Null for denials that are not about the token.
 * @example bearerChallenge(deny('token_expired'), 'weather') // 'Bearer realm="weather", error="invalid_token", …'
 */
export function bearerChallenge(denial: Denial, realm: string): string | null {
  const quoted = (v: string) => v.replace(/["\\]/g, '');
  if (denial.code === 'credentials_missing') return `Bearer realm="${quoted(realm)}"`;
  const error = invalidTokenCodes.has(denial.code)
    ? 'invalid_token'
    : denial.code === 'insufficient_scope'
      ? 'insufficient_scope'
      : null;
  if (error === null) return null;
  return `Bearer realm="${quoted(realm)}", error="${error}", error_description="${quoted(denial.message)}"`;
}
