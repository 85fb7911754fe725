/**
 * The edge of the control server: what no route of it (management API, portal, console, OAuth) should ever pass to
 * the database or to a recursive walk. NUL characters are refused in every path parameter, query value and body
 * string or key (PostgreSQL text cannot hold them), and bodies may nest at most `maxNesting` levels. One hook for
 * the whole server, so a new route cannot forget it; each face renders the error its own way (JSON or a page).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type FieldProblem, invalid } from '../kernel/index.js';

/** Deeper than any real request or OpenAPI document; shallow enough for every recursive walk after it. */
export const maxNesting = 64;

const nul = '\u0000';

/**
 * The problems of one part of a request: NUL characters (by field) and nesting beyond `maxNesting`. Walks with
 * an explicit stack, so a hostile depth cannot overflow the call stack here.
 */
export function inputProblems(part: string, value: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: '', depth: 0 }];
  const at = (path: string) => path || part;
  while (stack.length > 0 && problems.length < 20) {
    const { value: v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes(nul)) problems.push({ field: at(path), message: 'must not contain NUL characters' });
      continue;
    }
    // binary bodies (the portal's try-it relay) go to the gateway as they are, never to the database
    if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) continue;
    if (depth >= maxNesting) {
      problems.push({ field: at(path), message: `is nested more than ${maxNesting} levels deep` });
      continue;
    }
    const entries: [string, unknown][] = Array.isArray(v)
      ? v.map((x, i) => [String(i), x])
      : Object.entries(v as Record<string, unknown>);
    for (const [key, child] of entries) {
      const childPath = path ? `${path}.${key.replaceAll(nul, '\\0')}` : key.replaceAll(nul, '\\0');
      if (key.includes(nul)) problems.push({ field: childPath, message: 'must not contain NUL characters' });
      stack.push({ value: child, path: childPath, depth: depth + 1 });
    }
  }
  return problems;
}

/** Throws `validation_failed` naming every bad field of the request's params, query and body. */
export function checkRequestInput(req: FastifyRequest): void {
  const problems = [
    ...inputProblems('params', req.params),
    ...inputProblems('query', req.query),
    ...inputProblems('body', req.body),
  ];
  if (problems.length > 0) throw invalid(problems);
}

/** Installs the check for every route of the server (a root hook: every scope inherits it). */
export function installInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => checkRequestInput(req));
}
