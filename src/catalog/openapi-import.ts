/**
 * OpenAPI documents (OpenAPI 3.0 and 3.1, Swagger 2.0) have two uses, kept apart:
 * - publishing: the document is stored for the portal's documentation and nothing else changes; what the gateway
 *   counts never depends on the docs (`publishOpenapi`);
 * - importing a definition: every operation not yet counted by a rule becomes a method (named after its
 *   operationId, or its verb and path) and a mapping rule `VERB /path/{param}$` counting on it. An operation a
 *   rule of the service already matches is skipped (no second rule, no method without a rule), and the answer
 *   says what was added and what was skipped, and why (`importOpenapi`). Importing the same document again adds
 *   nothing.
 */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { compileRule } from '../gateway/mapping-rules.js';
import { invalid, isoNow, newId } from '../kernel/index.js';
import { findHitsMetric, listMappingRuleRows, listMetricRows, nextRulePosition } from './catalog.store.js';
import { getService } from './catalog.js';

const verbs = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;

/** One operation an import skipped: a rule of the service already counts it. */
export interface SkippedOperation {
  /** `GET /v1/pets/{petId}` */
  operation: string;
  reason: string;
  /** The existing rule that matches the operation. */
  ruleId: string;
}

export interface ImportResult {
  methodsCreated: string[];
  rulesCreated: number;
  operations: number;
  /** The operations that got a rule (`GET /v1/pets$` and the method it counts on). */
  added: { operation: string; method: string; pattern: string }[];
  skipped: SkippedOperation[];
}

export interface PublishResult {
  /** `openapi 3.1.0`, `swagger 2.0` */
  version: string;
  operations: number;
}

interface Operation {
  verb: string;
  path: string;
  systemName: string;
  friendlyName: string;
  description: string;
}

/** A method system name from an operationId or a verb and path: `getStatus`, `get_statuses_id`. */
function systemNameOf(verb: string, path: string, operationId: unknown): string {
  const base =
    typeof operationId === 'string' && operationId.length > 0
      ? operationId
      : `${verb}_${path.replace(/[{}]/g, '')}`;
  const name = base
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 100);
  return name || `${verb}_root`;
}

/** Deeper than any real OpenAPI document; shallow enough for every walk of it (storing, serving, rendering). */
export const maxDocumentNesting = 64;

/** Whether a parsed document nests deeper than `max` levels; walks with a stack of its own, not the call stack. */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** `openapi 3.0.3` or `swagger 2.0`; a validation error for any other document. */
export function versionOf(document: Record<string, unknown>): string {
  const { openapi, swagger } = document;
  if (typeof openapi === 'string' && /^3\.[01](\.|$)/.test(openapi)) return `openapi ${openapi}`;
  // `swagger: 2.0` unquoted in YAML reads as the number 2
  if (swagger === '2.0' || swagger === 2) return 'swagger 2.0';
  const found = typeof openapi === 'string' ? `"openapi": "${openapi.slice(0, 20)}"` : null;
  throw invalid([
    {
      field: 'openapi',
      message: found
        ? `${found} is not a version this importer reads (OpenAPI 3.0, 3.1 or Swagger 2.0)`
        : 'not an OpenAPI 3.0/3.1 or Swagger 2.0 document (no "openapi" or "swagger" version field)',
    },
  ]);
}

/** The operations of a document, or a validation error naming what is wrong with it. */
export function operationsOf(document: Record<string, unknown>): Operation[] {
  if (nestsDeeperThan(document, maxDocumentNesting)) {
    throw invalid([
      { field: 'openapi', message: `the document is nested more than ${maxDocumentNesting} levels deep` },
    ]);
  }
  versionOf(document);
  const paths = document.paths;
  if (typeof paths !== 'object' || paths === null) {
    throw invalid([{ field: 'paths', message: 'the document has no paths object' }]);
  }
  // OpenAPI 2 documents may put a common prefix in basePath; 3.x in servers[0].url (a path part only).
  let prefix = typeof document.basePath === 'string' ? document.basePath : '';
  const servers = document.servers;
  if (Array.isArray(servers) && typeof servers[0]?.url === 'string') {
    try {
      prefix = new URL(servers[0].url, 'http://placeholder').pathname;
    } catch {
      prefix = '';
    }
  }
  prefix = prefix.replace(/\/+$/, '');
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(paths as Record<string, unknown>)) {
    if (!path.startsWith('/') || typeof item !== 'object' || item === null) continue;
    for (const verb of verbs) {
      const op = (item as Record<string, unknown>)[verb] as Record<string, unknown> | undefined;
      if (!op || typeof op !== 'object') continue;
      const summary = typeof op.summary === 'string' ? op.summary : '';
      out.push({
        verb: verb.toUpperCase(),
        path: prefix + path,
        systemName: systemNameOf(verb, path, op.operationId),
        friendlyName: (summary || `${verb.toUpperCase()} ${path}`).slice(0, 200),
        description: typeof op.description === 'string' ? op.description.slice(0, 10_000) : '',
      });
    }
  }
  return out;
}

/** A request path that the operation's path template describes: `/pets/{petId}` → `/pets/p`. */
function samplePath(path: string): string {
  return path.replace(/\{[^}]*\}/g, 'p');
}

/**
 * Publishes a document for the portal's documentation: stores it (after checking it is OpenAPI 3.0/3.1 or
 * Swagger 2.0 with paths) and changes nothing the gateway counts.
 */
export async function publishOpenapi(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  document: Record<string, unknown>,
): Promise<PublishResult> {
  const operations = operationsOf(document);
  const version = versionOf(document);
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    await tx
      .updateTable('services')
      .set({ openapi: JSON.stringify(document), updated_at: isoNow(deps.clock) })
      .where('id', '=', serviceId)
      .execute();
    const result = { version, operations: operations.length };
    await record({
      type: 'service.openapi_updated',
      entityType: 'service',
      entityId: serviceId,
      payload: { serviceId, ...result },
    });
    return result;
  });
}

/**
 * Imports a definition: stores the document (as `publishOpenapi` does) and adds a method and a rule for each
 * operation no rule of the service counts yet; an operation an existing rule already matches (a hand-made rule,
 * or a catch-all on hits) is skipped, so no call counts twice and no method is left without a rule.
 */
export async function importOpenapi(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  document: Record<string, unknown>,
): Promise<ImportResult> {
  const operations = operationsOf(document);
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    const now = isoNow(deps.clock);
    // Writing the service row first locks it: imports into one service run one after the other, so importing the
    // same document twice at once adds nothing the second time instead of colliding on the same names.
    await tx
      .updateTable('services')
      .set({ openapi: JSON.stringify(document), updated_at: now })
      .where('id', '=', serviceId)
      .execute();
    const hits = await findHitsMetric(tx, serviceId);
    const metrics = new Map((await listMetricRows(tx, serviceId)).map((m) => [m.systemName, m.id]));
    const existing = (await listMappingRuleRows(tx, serviceId))
      .sort((a, b) => a.position - b.position)
      .map((r) => ({ id: r.id, compiled: compileRule(r) }));
    let position = await nextRulePosition(tx, serviceId);
    const methodsCreated: string[] = [];
    const added: ImportResult['added'] = [];
    const skipped: SkippedOperation[] = [];
    for (const op of operations) {
      const operation = `${op.verb} ${op.path}`;
      const path = samplePath(op.path);
      const match = existing.find(
        ({ compiled: c }) =>
          (c.method === op.verb || c.method === 'ANY') && c.query.length === 0 && c.path.test(path),
      );
      if (match) {
        skipped.push({
          operation,
          reason: 'a mapping rule of the service already counts it',
          ruleId: match.id,
        });
        continue;
      }
      let metricId = metrics.get(op.systemName);
      if (!metricId) {
        metricId = newId('metric');
        await tx
          .insertInto('metrics')
          .values({
            id: metricId,
            service_id: serviceId,
            system_name: op.systemName,
            friendly_name: op.friendlyName,
            unit: 'hit',
            description: op.description,
            parent_id: hits.id,
            kind: 'method',
            created_at: now,
          })
          .execute();
        metrics.set(op.systemName, metricId);
        methodsCreated.push(op.systemName);
      }
      const pattern = `${op.path}$`;
      const rule = {
        id: newId('mappingRule'),
        service_id: serviceId,
        http_method: op.verb,
        pattern,
        metric_id: metricId,
        delta: 1,
        position: position++,
        last: 0,
        created_at: now,
      };
      await tx.insertInto('mapping_rules').values(rule).execute();
      existing.push({
        id: rule.id,
        compiled: compileRule({
          httpMethod: op.verb,
          pattern,
          metricId,
          delta: 1,
          position: rule.position,
          last: false,
        }),
      });
      added.push({ operation, method: op.systemName, pattern });
    }
    const result = {
      methodsCreated,
      rulesCreated: added.length,
      operations: operations.length,
      added,
      skipped,
    };
    await record({
      type: 'service.openapi_imported',
      entityType: 'service',
      entityId: serviceId,
      payload: { serviceId, ...result },
    });
    return result;
  });
}
