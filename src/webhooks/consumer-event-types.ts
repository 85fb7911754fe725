/**
 * Event types a provider declares for a service (issue 9, consumer webhooks): a name, a description, the JSON
 * Schema of the payload (checked as a schema when declared, with ajv) and an example (checked against it).
 * Published events are validated against the schema; a wrong payload is refused naming the field.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
// the catalog's service module itself, not its index: the index loads `trellis apply`, which loads this module
import { getService } from '../catalog/catalog.js';
import { type Actor, type ChangeDeps, eventCatalogue, runChange } from '../events/index.js';
import { type FieldProblem, TrellisError, invalid, isoNow, notFound } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import type { ServiceEventType, ServiceEventTypeCreate, ServiceEventTypeUpdate } from './consumer-schemas.js';
import type { ServiceEventTypeTable } from './consumer-tables.js';
import {
  deleteEventTypeRow,
  findEventTypeRow,
  insertEventTypeRow,
  listEventTypeRows,
  updateEventTypeRow,
} from './consumer.store.js';

function newAjv() {
  const ajv = new Ajv.default({ allErrors: true, strict: false, validateFormats: true });
  addFormats.default(ajv);
  return ajv;
}

/** Compiled validators by (service, name, updated_at): a changed type compiles afresh. At most 500 kept. */
const compiled = new Map<string, ValidateFunction>();

function validatorOf(row: ServiceEventTypeTable): ValidateFunction {
  const key = `${row.service_id} ${row.name} ${row.updated_at}`;
  let v = compiled.get(key);
  if (!v) {
    // a fresh ajv per schema: two providers' schemas with the same $id never clash
    v = newAjv().compile(JSON.parse(row.schema) as object);
    if (compiled.size >= 500) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, v);
  }
  return v;
}

/** ajv's errors as field problems, each named by its JSON pointer under `prefix` (`payload/amount`). */
export function problemsOf(
  errors: readonly ErrorObject[] | null | undefined,
  prefix: string,
): FieldProblem[] {
  return (errors ?? []).map((e) => {
    const missing =
      e.keyword === 'required' ? `/${(e.params as { missingProperty: string }).missingProperty}` : '';
    return { field: `${prefix}${e.instancePath}${missing}`, message: e.message ?? 'is not valid' };
  });
}

/** Checks a schema as a schema (and that it compiles), then the example against it. */
function checkDeclaration(schema: object, example: unknown): void {
  const ajv = newAjv();
  if (!ajv.validateSchema(schema)) {
    throw invalid(problemsOf(ajv.errors, 'schema').map((p) => ({ ...p, field: p.field || 'schema' })));
  }
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema);
  } catch (err) {
    throw invalid([{ field: 'schema', message: (err as Error).message.slice(0, 300) }]);
  }
  if (!validate(example)) throw invalid(problemsOf(validate.errors, 'example'));
}

export function toEventTypeView(row: ServiceEventTypeTable): ServiceEventType {
  return {
    serviceId: row.service_id,
    name: row.name,
    description: row.description,
    schema: JSON.parse(row.schema) as unknown,
    example: JSON.parse(row.example) as unknown,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function listServiceEventTypes(db: Executor, serviceId: string): Promise<ServiceEventType[]> {
  await getService(db, serviceId);
  return (await listEventTypeRows(db, serviceId)).map(toEventTypeView);
}

export async function getServiceEventType(
  db: Executor,
  serviceId: string,
  name: string,
): Promise<ServiceEventType> {
  const row = await findEventTypeRow(db, serviceId, name);
  if (!row) throw notFound('event type', name);
  return toEventTypeView(row);
}

/**
 * Declares an event type of a service.
 * @example await declareEventType(deps, actor, svc.id, { name: 'paymentrequest.paid', description: '…', schema, example })
 */
export async function declareEventType(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  input: ServiceEventTypeCreate,
): Promise<ServiceEventType> {
  if (eventCatalogue.has(input.name)) {
    throw invalid([{ field: 'name', message: `${input.name} is one of Trellis's own event types` }]);
  }
  checkDeclaration(input.schema, input.example);
  return runChange(deps, actor, async (tx, record) => {
    await getService(tx, serviceId);
    if (await findEventTypeRow(tx, serviceId, input.name)) {
      throw new TrellisError('conflict', `The service already declares ${input.name}.`);
    }
    const now = isoNow(deps.clock);
    await insertEventTypeRow(tx, {
      service_id: serviceId,
      name: input.name,
      description: input.description,
      schema: JSON.stringify(input.schema),
      example: JSON.stringify(input.example ?? null),
      created_at: now,
      updated_at: now,
    });
    const eventType = await getServiceEventType(tx, serviceId, input.name);
    await record({
      type: 'service_event_type.created',
      entityType: 'service',
      entityId: serviceId,
      payload: { eventType, serviceId },
    });
    return eventType;
  });
}

/** Changes a type's description, schema or example; the example (new or kept) must fit the schema (new or kept). */
export async function updateEventType(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  name: string,
  input: ServiceEventTypeUpdate,
): Promise<ServiceEventType> {
  return runChange(deps, actor, async (tx, record) => {
    const current = await findEventTypeRow(tx, serviceId, name);
    if (!current) throw notFound('event type', name);
    const schema = input.schema ?? (JSON.parse(current.schema) as object);
    const example = 'example' in input ? input.example : (JSON.parse(current.example) as unknown);
    checkDeclaration(schema, example);
    let updatedAt = isoNow(deps.clock);
    // the validator cache is keyed by updated_at: a change within the same millisecond still recompiles
    if (updatedAt <= current.updated_at)
      updatedAt = new Date(Date.parse(current.updated_at) + 1).toISOString();
    await updateEventTypeRow(tx, serviceId, name, {
      ...(input.description !== undefined && { description: input.description }),
      schema: JSON.stringify(schema),
      example: JSON.stringify(example ?? null),
      updated_at: updatedAt,
    });
    const eventType = await getServiceEventType(tx, serviceId, name);
    await record({
      type: 'service_event_type.updated',
      entityType: 'service',
      entityId: serviceId,
      payload: { eventType, serviceId },
    });
    return eventType;
  });
}

export async function deleteEventType(
  deps: ChangeDeps,
  actor: Actor,
  serviceId: string,
  name: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const eventType = await getServiceEventType(tx, serviceId, name);
    if (!(await deleteEventTypeRow(tx, serviceId, name))) throw notFound('event type', name);
    await record({
      type: 'service_event_type.deleted',
      entityType: 'service',
      entityId: serviceId,
      payload: { eventType, serviceId },
    });
  });
}

/** Refuses a payload that does not fit the type's schema: 422 naming each field (ajv's instancePath). */
export function checkPayload(row: ServiceEventTypeTable, payload: unknown): void {
  const validate = validatorOf(row);
  if (!validate(payload)) {
    const problems = problemsOf(validate.errors, 'payload');
    throw new TrellisError(
      'payload_invalid',
      `${row.name}: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
      problems,
    );
  }
}
