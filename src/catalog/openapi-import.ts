/**
 * Importing an OpenAPI document: every operation becomes a method (named after its operationId, or its verb and
 * path) and a mapping rule `VERB /path/{param}$` counting on it. Importing the same document again adds nothing.
 */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { invalid, isoNow, newId } from '../kernel/index.js';
import { findHitsMetric, listMappingRuleRows, listMetricRows, nextRulePosition } from './catalog.store.js';
import { getService } from './catalog.js';

const verbs = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;

export interface ImportResult {
  methodsCreated: string[];
  rulesCreated: number;
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

/** The operations of a document, or a validation error naming what is wrong with it. */
export function operationsOf(document: Record<string, unknown>): Operation[] {
  const version = document.openapi ?? document.swagger;
  if (typeof version !== 'string') {
    throw invalid([{ field: 'openapi', message: 'not an OpenAPI document (no "openapi" version field)' }]);
  }
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

export async function importOpenapi(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  document: Record<string, unknown>,
): Promise<ImportResult> {
  const operations = operationsOf(document);
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    const hits = await findHitsMetric(tx, serviceId);
    const metrics = new Map((await listMetricRows(tx, serviceId)).map((m) => [m.systemName, m.id]));
    const rules = new Set(
      (await listMappingRuleRows(tx, serviceId)).map((r) => `${r.httpMethod} ${r.pattern}`),
    );
    let position = await nextRulePosition(tx, serviceId);
    const methodsCreated: string[] = [];
    let rulesCreated = 0;
    const now = isoNow(deps.clock);
    for (const op of operations) {
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
            created_at: now,
          })
          .execute();
        metrics.set(op.systemName, metricId);
        methodsCreated.push(op.systemName);
      }
      const pattern = `${op.path}$`;
      if (rules.has(`${op.verb} ${pattern}`)) continue;
      rules.add(`${op.verb} ${pattern}`);
      await tx
        .insertInto('mapping_rules')
        .values({
          id: newId('mappingRule'),
          service_id: serviceId,
          http_method: op.verb,
          pattern,
          metric_id: metricId,
          delta: 1,
          position: position++,
          last: 0,
          created_at: now,
        })
        .execute();
      rulesCreated++;
    }
    await tx
      .updateTable('services')
      .set({ openapi: JSON.stringify(document), updated_at: now })
      .where('id', '=', serviceId)
      .execute();
    const result = { methodsCreated, rulesCreated, operations: operations.length };
    await record({
      type: 'service.openapi_imported',
      entityType: 'service',
      entityId: serviceId,
      payload: { serviceId, ...result },
    });
    return result;
  });
}
