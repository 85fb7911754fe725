/**
 * A service's event types in `trellis apply` YAML (issue 9): `eventTypes:` lists them by name, each with its
 * description, payload schema and example. Listed types are created or updated; left out, the section leaves the
 * service's types as they are; with `prune`, types the list does not name are deleted. `trellis export` writes
 * them back. Checked as the management API checks them (the schema as a schema, the example against it).
 */
import type { Actor, ChangeDeps } from '../events/index.js';
import type { Executor } from '../store/index.js';
import {
  declareEventType,
  deleteEventType,
  listServiceEventTypes,
  updateEventType,
} from './consumer-event-types.js';
import type { EventTypeDecl } from './consumer-schemas.js';

interface Step {
  op: 'create' | 'update' | 'delete';
  what: string;
  fields?: string[];
  run: (deps: ChangeDeps, actor: Actor) => Promise<void>;
}

/** The steps that bring a service's event types to `wanted` (undefined: leave them). */
export async function planEventTypes(
  db: Executor,
  service: { systemName: string; id: string | undefined },
  wanted: readonly EventTypeDecl[] | undefined,
  prune: boolean,
  serviceIdOf: (db: Executor, systemName: string) => Promise<string>,
): Promise<Step[]> {
  if (wanted === undefined) return [];
  const have = service.id ? await listServiceEventTypes(db, service.id) : [];
  const steps: Step[] = [];
  const idOf = (deps: ChangeDeps) => serviceIdOf(deps.db, service.systemName);
  for (const decl of wanted) {
    const current = have.find((t) => t.name === decl.name);
    const what = `event type ${service.systemName} ${decl.name}`;
    if (!current) {
      steps.push({
        op: 'create',
        what,
        run: async (deps, actor) => void (await declareEventType(deps, actor, await idOf(deps), decl)),
      });
      continue;
    }
    const fields = (['description', 'schema', 'example'] as const).filter(
      (f) => JSON.stringify(current[f]) !== JSON.stringify(decl[f] ?? null),
    );
    if (fields.length > 0) {
      steps.push({
        op: 'update',
        what,
        fields: [...fields],
        run: async (deps, actor) =>
          void (await updateEventType(deps, actor, await idOf(deps), decl.name, {
            description: decl.description,
            schema: decl.schema,
            example: decl.example,
          })),
      });
    }
  }
  if (prune) {
    for (const t of have.filter((h) => !wanted.some((w) => w.name === h.name))) {
      steps.push({
        op: 'delete',
        what: `event type ${service.systemName} ${t.name}`,
        run: async (deps, actor) => deleteEventType(deps, actor, await idOf(deps), t.name),
      });
    }
  }
  return steps;
}

/** A service's event types as `trellis export` writes them; undefined when it declares none. */
export async function exportEventTypes(
  db: Executor,
  serviceId: string,
): Promise<EventTypeDecl[] | undefined> {
  const types = await listServiceEventTypes(db, serviceId);
  if (types.length === 0) return undefined;
  return types.map((t) => ({
    name: t.name,
    description: t.description,
    schema: t.schema as Record<string, unknown>,
    example: t.example,
  }));
}
