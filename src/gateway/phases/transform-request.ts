import { normalizeAddress } from '../../kernel/index.js';
import type { RequestContext } from '../request-context.js';
import { ANONYMOUS_END_USER } from './authorize.js';

/** Where and how the request goes upstream. */
export interface UpstreamRequest {
  origin: string;
  path: string;
  /** Flat `[name, value…]` as undici takes them. */
  headers: string[];
}

/** The query string without the parameters that carried credentials, other parameters byte for byte. */
export function stripParams(rawQuery: string, names: readonly string[]): string {
  if (rawQuery === '' || names.length === 0) return rawQuery;
  const kept: string[] = [];
  for (const part of rawQuery.split('&')) {
    const eq = part.indexOf('=');
    const rawName = eq === -1 ? part : part.slice(0, eq);
    let name = rawName;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '));
    } catch {
      // a malformed name cannot be a credential name; keep it as is
    }
    if (!names.includes(name)) kept.push(part);
  }
  return kept.join('&');
}

/** A header value the upstream can take as is: printable ASCII (a token claim could hold anything). */
const PRINTABLE = /^[\x20-\x7e]*$/;

/**
 * The end user the upstream is told of: the plan's end-user key when the plan names one, else the subject of a
 * verified OAuth token when it is a user (not the client itself, as in client-credentials tokens).
 */
function endUserOf(ctx: RequestContext): string | null {
  if (ctx.endUser !== null && ctx.endUser !== ANONYMOUS_END_USER) return ctx.endUser;
  const claims = ctx.claims;
  if (claims === null) return null;
  const sub = claims.sub;
  return typeof sub === 'string' && sub !== '' && sub !== claims.client_id ? sub : null;
}

/**
 * Who is calling, in headers the upstream can trust because the gateway sets them and drops every `X-Trellis-*`
 * header a client sent: application and account ids, the end user, the token's scopes (oauth2).
 */
function pushIdentity(ctx: RequestContext, headers: string[]): void {
  const app = ctx.app!;
  headers.push('x-trellis-application-id', app.applicationId, 'x-trellis-account-id', app.accountId);
  const endUser = endUserOf(ctx);
  if (endUser !== null && PRINTABLE.test(endUser)) headers.push('x-trellis-end-user', endUser);
  const scope = ctx.claims?.scope;
  if (typeof scope === 'string' && PRINTABLE.test(scope)) headers.push('x-trellis-scopes', scope);
}

/**
 * Phase 6, transform request: the upstream of the application's environment, the path without the service's
 * prefix, credentials removed (an `oauth2` bearer token too, unless the service forwards it), every `X-Trellis-*`
 * header of the client dropped, the caller's identity and the service's secret token added (so the upstream can
 * refuse calls that bypass the gateway), and the `X-Forwarded-*` and `X-Request-Id` headers set.
 */
export function transformRequest(ctx: RequestContext): UpstreamRequest {
  const service = ctx.service!;
  // check client refused sandbox calls to a service without a sandbox: `sandbox` is never null here
  const upstream = ctx.app!.environment === 'sandbox' ? service.sandbox! : service.production;
  const query = stripParams(ctx.rawQuery, service.credentialParams);
  const path = `${upstream.basePath}${ctx.path}${query === '' ? '' : `?${query}`}`;

  const raw = ctx.req.rawHeaders;
  const skip = service.skipHeaders;
  const connection = ctx.req.headers.connection;
  const listed =
    connection === undefined
      ? null
      : connection
          .toLowerCase()
          .split(',')
          .map((s) => s.trim());
  const headers: string[] = [];
  const peer = normalizeAddress(ctx.req.socket.remoteAddress ?? '');
  let forwardedFor: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (skip.has(lower) || listed?.includes(lower) || lower.startsWith('x-trellis-')) {
      if (lower === 'x-forwarded-for')
        forwardedFor = forwardedFor ? `${forwardedFor}, ${raw[i + 1]}` : raw[i + 1];
      continue;
    }
    headers.push(name, raw[i + 1]!);
  }
  headers.push(
    'x-forwarded-for',
    // the hop this gateway saw (the socket's peer, not the client it resolved behind trusted proxies) is appended
    forwardedFor ? `${forwardedFor}, ${peer}` : peer,
    'x-forwarded-proto',
    'http',
    'x-forwarded-host',
    ctx.header('host') ?? '',
    'x-request-id',
    ctx.requestId,
  );
  pushIdentity(ctx, headers);
  if (service.secretToken !== null) headers.push('x-trellis-secret', service.secretToken);
  return { origin: upstream.origin, path, headers };
}
