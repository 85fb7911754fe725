/** Custom fields the provider defines for accounts, users and applications, and the check of their values. */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { type FieldProblem, TrellisError, invalid, isoNow, newId, notFound } from '../kernel/index.js';
import { type Executor, deleteRow, flag, isUniqueViolation } from '../store/index.js';
import { listCustomFieldRows, toCustomField } from './access.store.js';
import type { CustomField, CustomFieldCreate, CustomFieldUpdate } from './schemas.js';

export function listCustomFields(db: Executor, target?: string): Promise<CustomField[]> {
  return listCustomFieldRows(db, target);
}

export async function getCustomField(db: Executor, id: string): Promise<CustomField> {
  const row = await db.selectFrom('custom_fields').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('custom field', id);
  return toCustomField(row);
}

export async function createCustomField(
  deps: ChangeDeps,
  actor: Actor,
  input: CustomFieldCreate,
): Promise<CustomField> {
  try {
    return await runChange(deps, actor, async (tx, record) => {
      const id = newId('customField');
      await tx
        .insertInto('custom_fields')
        .values({
          id,
          target: input.target,
          name: input.name,
          label: input.label,
          required: flag(input.required ?? false),
          choices: input.choices?.length ? JSON.stringify(input.choices) : '',
          position: input.position ?? 1000,
          created_at: isoNow(deps.clock),
        })
        .execute();
      const field = await getCustomField(tx, id);
      await record({
        type: 'custom_field.created',
        entityType: 'custom_field',
        entityId: id,
        payload: { field },
      });
      return field;
    });
  } catch (err) {
    if (isUniqueViolation(err))
      throw new TrellisError('conflict', `A ${input.target} field "${input.name}" exists.`);
    throw err;
  }
}

export async function updateCustomField(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  input: CustomFieldUpdate,
): Promise<CustomField> {
  // an empty PATCH changes nothing (an update with no column would be an SQL error)
  if (Object.values(input).every((v) => v === undefined)) return getCustomField(deps.db, id);
  return runChange(deps, actor, async (tx, record) => {
    await getCustomField(tx, id);
    await tx
      .updateTable('custom_fields')
      .set({
        ...(input.label !== undefined && { label: input.label }),
        ...(input.required !== undefined && { required: flag(input.required) }),
        ...(input.choices !== undefined && {
          choices: input.choices.length > 0 ? JSON.stringify(input.choices) : '',
        }),
        ...(input.position !== undefined && { position: input.position }),
      })
      .where('id', '=', id)
      .execute();
    const field = await getCustomField(tx, id);
    await record({
      type: 'custom_field.updated',
      entityType: 'custom_field',
      entityId: id,
      payload: { field },
    });
    return field;
  });
}

export async function deleteCustomField(deps: ChangeDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const field = await getCustomField(tx, id);
    if (!(await deleteRow(tx, 'custom_fields', id))) throw notFound('custom field', id);
    await record({
      type: 'custom_field.deleted',
      entityType: 'custom_field',
      entityId: id,
      payload: { field },
    });
  });
}

/**
 * Checks custom field values against the definitions of `target`: unknown names, missing required fields and
 * values that are not one of a select's choices are named. On an update (`existing` given) required fields already set need not be sent again.
 * `prefix` names the fields in errors (`customFields`, `user.customFields`).
 */
export async function checkCustomFields(
  db: Executor,
  target: 'account' | 'user' | 'application',
  values: Record<string, string> | undefined,
  options: { existing?: Record<string, string>; prefix?: string } = {},
): Promise<Record<string, string>> {
  const prefix = options.prefix ?? 'customFields';
  const defs = await listCustomFieldRows(db, target);
  const merged = { ...(options.existing ?? {}), ...(values ?? {}) };
  const problems: FieldProblem[] = [];
  for (const name of Object.keys(values ?? {})) {
    if (!defs.some((d) => d.name === name)) {
      problems.push({ field: `${prefix}.${name}`, message: `no ${target} field "${name}" is defined` });
    }
  }
  for (const d of defs) {
    const value = (merged[d.name] ?? '').trim();
    if (d.required && !value) {
      problems.push({ field: `${prefix}.${d.name}`, message: `${d.label} is required` });
    } else if (value && d.choices.length > 0 && !d.choices.includes(value)) {
      problems.push({
        field: `${prefix}.${d.name}`,
        message: `${d.label} must be one of: ${d.choices.join(', ')}`,
      });
    }
  }
  if (problems.length > 0) throw invalid(problems);
  return merged;
}
