/**
 * What the portal and the console share as server-rendered HTML faces: templates (Eta, escaping every
 * interpolation by default), security headers, form reading, redirects and error pages.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Eta } from 'eta';
import { sendError } from '../control/index.js';
import { type FieldProblem, TrellisError, invalid } from '../kernel/index.js';
import { isDatabaseUnavailable, isForeignKeyViolation, isUniqueViolation } from '../store/index.js';

export interface Views {
  render(name: string, data: object): string;
}

/** Templates of one face; `<%= %>` escapes, `<%~ %>` (raw) is used only for HTML the templates build. */
export function createViews(dir: string): Views {
  const eta = new Eta({ views: dir, autoEscape: true, cache: true });
  return { render: (name, data) => eta.render(name, data) };
}

/**
 * The Content Security Policy of every page: scripts and styles only from this site (the docs and chart bundles
 * are served from node_modules by Trellis itself), nothing may frame the pages, forms post only here.
 * Inline styles stay allowed because the interactive docs set element styles.
 */
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: https:",
  "connect-src 'self'",
  "font-src 'self' data:",
  "frame-ancestors 'none'",
  "form-action 'self'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

export function sendHtml(reply: FastifyReply, html: string, status = 200): FastifyReply {
  return (
    reply
      .status(status)
      .type('text/html; charset=utf-8')
      .header('Content-Security-Policy', contentSecurityPolicy)
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'same-origin')
      .header('X-Frame-Options', 'DENY')
      // Pages show account data: never kept by shared caches or the back-forward cache of another user.
      .header('Cache-Control', 'no-store')
      .send(html)
  );
}

/** Thrown by a handler to send the browser elsewhere (after a form, or to the login page). */
export class Redirect extends Error {
  constructor(readonly location: string) {
    super(`redirect to ${location}`);
    this.name = 'Redirect';
  }
}

/** A local path to return to after sign-in; anything else (other sites, `//host`) becomes `fallback`. */
export function safeNext(raw: unknown, fallback: string): string {
  if (typeof raw !== 'string' || raw.length > 500) return fallback;
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return fallback;
  return raw;
}

/** The fields of a submitted `application/x-www-form-urlencoded` form, read defensively. */
export class Form {
  private readonly fields: Record<string, unknown>;
  constructor(body: unknown) {
    this.fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  }

  /** A field as trimmed text ('' when absent); a repeated field gives its first value. */
  text(name: string, max = 10_000): string {
    const v = this.fields[name];
    const s = Array.isArray(v) ? v[0] : v;
    return typeof s === 'string' ? s.trim().slice(0, max) : '';
  }

  /** A field as it was typed (passwords are not trimmed). */
  raw(name: string, max = 10_000): string {
    const v = this.fields[name];
    const s = Array.isArray(v) ? v[0] : v;
    return typeof s === 'string' ? s.slice(0, max) : '';
  }

  /** Every value of a repeated field. */
  list(name: string): string[] {
    const v = this.fields[name];
    const all = Array.isArray(v) ? v : v === undefined ? [] : [v];
    return all.filter((x): x is string => typeof x === 'string');
  }

  has(name: string): boolean {
    return this.fields[name] !== undefined;
  }

  /** Fields named `<prefix><name>`, as `{name: value}` (custom fields: `acf_company`). */
  prefixed(prefix: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const key of Object.keys(this.fields)) {
      if (key.startsWith(prefix) && key.length > prefix.length)
        out[key.slice(prefix.length)] = this.text(key);
    }
    return out;
  }

  /** Fields as `{name: value}` for re-filling a form after a problem (passwords are never sent back). */
  values(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const key of Object.keys(this.fields)) if (!/password|_csrf/.test(key)) out[key] = this.text(key);
    return out;
  }
}

export function formOf(req: FastifyRequest): Form {
  return new Form(req.body);
}

/** The problems of a validation failure, by field, for showing beside the form. */
export function problemsOf(err: unknown): FieldProblem[] | undefined {
  if (err instanceof TrellisError && err.code === 'validation_failed' && Array.isArray(err.details)) {
    return err.details as FieldProblem[];
  }
  return undefined;
}

export interface ErrorPage {
  status: number;
  title: string;
  message: string;
  problems: FieldProblem[];
}

/**
 * HTML errors for one face: a `Redirect` becomes a 303, a `TrellisError` its status and message, anything else
 * is logged and becomes a plain 500 page that leaks nothing. A database that cannot be reached (stopped,
 * restarting, hanging past the store's query timeout) is not a bug: 503 `database_unavailable`, on a page of its
 * own that needs no database (the face's layout reads the brand and the session from it); a request that does
 * not prefer HTML (a script, curl) gets the one JSON error body, as the management API answers.
 */
export function installHtmlErrors(
  scope: FastifyInstance,
  render: (req: FastifyRequest, reply: FastifyReply, page: ErrorPage) => Promise<FastifyReply> | FastifyReply,
): void {
  scope.setErrorHandler(async (err: FastifyError, req, reply) => {
    if (err instanceof Redirect) return reply.status(303).header('Location', err.location).send();
    let known: TrellisError | undefined;
    if (err instanceof TrellisError) known = err;
    else if (err.statusCode === 413) known = new TrellisError('body_too_large');
    else if (err.statusCode === 415) known = new TrellisError('unsupported_media_type');
    else if (err.statusCode === 400)
      known = new TrellisError('validation_failed', 'The request is not valid.');
    // Two forms creating the same name at once: the database's refusal is the visitor's conflict, not a bug.
    else if (isUniqueViolation(err))
      known = new TrellisError(
        'conflict',
        'Something with the same name or address already exists. Choose another and try again.',
      );
    else if (isForeignKeyViolation(err))
      known = new TrellisError(
        'conflict',
        'This refers to something that no longer exists, or is still in use.',
      );
    else if (isDatabaseUnavailable(err)) known = new TrellisError('database_unavailable');
    if (!known) {
      req.log.error({ err }, 'unhandled error');
      known = new TrellisError('internal');
    }
    if (known.code === 'database_unavailable') return sendUnavailable(scope, req, reply, known);
    if (known.code === 'rate_limited') reply.header('Retry-After', '900');
    try {
      return await render(req, reply, {
        status: known.status,
        title: titles[known.status] ?? 'Something is wrong',
        message: known.message,
        problems: problemsOf(known) ?? [],
      });
    } catch (renderErr) {
      // the layout needs the database too: if it went away meanwhile, the page that needs none
      if (isDatabaseUnavailable(renderErr))
        return sendUnavailable(scope, req, reply, new TrellisError('database_unavailable'));
      throw renderErr;
    }
  });
}

/** A 503 for a database that cannot be reached: a page for browsers, the JSON error body for anything else. */
function sendUnavailable(
  scope: FastifyInstance,
  req: FastifyRequest,
  reply: FastifyReply,
  err: TrellisError,
): FastifyReply {
  if (!prefersHtml(req)) return sendError(reply, err);
  return sendHtml(reply, unavailablePage(scope.prefix, err.code, String(req.id)), err.status);
}

const htmlEscapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => htmlEscapes[c] ?? c);
}

/**
 * The page of a face whose database cannot be reached: built from nothing the database holds (no brand, no
 * session), so it renders while the database is away; it shows the stable code and the request id, for support,
 * and nothing of the failure itself. `prefix` is the face's (`''` for the portal, `/admin` for the console):
 * its stylesheet is a file, served without the database.
 */
export function unavailablePage(prefix: string, code: string, requestId: string): string {
  const home = escapeHtml(prefix === '' ? '/' : prefix);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Temporarily unavailable</title>
<link rel="stylesheet" href="${escapeHtml(prefix)}/assets/portal.css">
</head>
<body>
<main id="main" tabindex="-1">
<h1>Temporarily unavailable</h1>
<p role="alert">The service is temporarily unavailable. Please try again in a moment.</p>
<p class="muted">Code: <code>${escapeHtml(code)}</code> · Request id: <code>${escapeHtml(requestId)}</code></p>
<p><a href="${home}">Try again</a></p>
</main>
</body>
</html>
`;
}

/**
 * Whether a request asks for a page rather than data: its Accept header names `text/html` (or XHTML) with a
 * weight at least that of `application/json`. Browsers navigating send `text/html` first; API clients and curl
 * (which accept anything) do not, and keep getting the JSON error body.
 */
export function prefersHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept;
  if (typeof accept !== 'string' || accept.length > 1000) return false;
  let html = 0;
  let json = 0;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    const weight = q === undefined ? 1 : Number(q);
    if (type === 'text/html' || type === 'application/xhtml+xml') html = Math.max(html, weight);
    if (type === 'application/json') json = Math.max(json, weight);
  }
  return html > 0 && html >= json;
}

/**
 * The HTML "not found" page of a face, for a browser asking for a page no route serves. It is a catch-all GET
 * route (the router tries it after every other route); requests that do not prefer HTML, and paths of
 * `jsonPrefixes`, get the control server's JSON 404 (`route_not_found`) as before.
 */
export function htmlNotFoundRoute(
  scope: FastifyInstance,
  jsonPrefixes: string[],
  render: (req: FastifyRequest, reply: FastifyReply, page: ErrorPage) => Promise<FastifyReply> | FastifyReply,
): void {
  scope.get('/*', async (req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    if (!prefersHtml(req) || jsonPrefixes.some((p) => path === p || path.startsWith(`${p}/`))) {
      return reply.callNotFound();
    }
    return render(req, reply, {
      status: 404,
      title: 'Page not found',
      message: 'There is no page at this address. It may have moved, or the link may be mistyped.',
      problems: [],
    });
  });
}

const titles: Record<number, string> = {
  400: 'That did not work',
  403: 'Not allowed',
  404: 'Not found',
  409: 'That did not work',
  413: 'Too large',
  429: 'Too many attempts',
  500: 'Something went wrong',
  503: 'Unavailable',
};

/**
 * Checks form input against the operation's schema (the same one the management API validates with) and
 * throws a `validation_failed` naming every bad field.
 * @example const input = checked(ServiceCreate, { name: form.text('name'), … })
 */
export function checked<S extends TSchema>(schema: S, value: unknown): Static<S> {
  if (Value.Check(schema, value)) return value;
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, value)) {
    const field = e.path.split('/').filter(Boolean).join('.') || 'form';
    if (seen.has(field)) continue;
    seen.add(field);
    problems.push({ field, message: e.message });
  }
  throw invalid(problems);
}
