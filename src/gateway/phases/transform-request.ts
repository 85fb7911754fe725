import type { RequestContext } from '../request-context.js';

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

/**
 * Phase 6, transform request: the upstream of the application's environment, the path without the service's
 * prefix, credentials removed, the service's secret token added (so the upstream can refuse calls that bypass the
 * gateway), and the `X-Forwarded-*` and `X-Request-Id` headers set.
 */
export function transformRequest(ctx: RequestContext): UpstreamRequest {
  const service = ctx.service!;
  const upstream = ctx.app!.environment === 'sandbox' ? service.sandbox : service.production;
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
  let forwardedFor: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (skip.has(lower) || listed?.includes(lower)) {
      if (lower === 'x-forwarded-for')
        forwardedFor = forwardedFor ? `${forwardedFor}, ${raw[i + 1]}` : raw[i + 1];
      continue;
    }
    headers.push(name, raw[i + 1]!);
  }
  headers.push(
    'x-forwarded-for',
    forwardedFor ? `${forwardedFor}, ${ctx.clientIp}` : ctx.clientIp,
    'x-forwarded-proto',
    'http',
    'x-forwarded-host',
    ctx.header('host') ?? '',
    'x-request-id',
    ctx.requestId,
  );
  if (service.secretToken !== null) headers.push('x-trellis-secret', service.secretToken);
  return { origin: upstream.origin, path, headers };
}
