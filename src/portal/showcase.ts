/**
 * The partner showcase, "Success stories" (issue 13): integrations the provider chooses to feature — a name, a
 * logo, a description and a link — on a public page. The provider marks an application as featured; it is shown
 * only once the partner has ticked their consent on the application's page in the portal, and disappears the
 * moment they withdraw it.
 */
import { getApplication } from '../access/index.js';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { isoNow, notFound } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import {
  type ShowcaseRow,
  deleteShowcaseRow,
  findShowcaseRow,
  listShowcaseRows,
  upsertShowcaseRow,
} from './brand.store.js';
import type { ShowcaseEntry, ShowcaseWrite } from './brand-schemas.js';

function toEntry(row: ShowcaseRow): ShowcaseEntry {
  return {
    applicationId: row.application_id,
    accountId: row.account_id,
    consent: row.consent === 1,
    consentAt: row.consent_at,
    featured: row.featured === 1,
    shown: row.consent === 1 && row.featured === 1,
    name: row.name,
    logoUrl: row.logo_url,
    description: row.description,
    linkUrl: row.link_url,
    position: row.position,
    updatedAt: row.updated_at,
  };
}

async function applicationOr404(db: Executor, applicationId: string) {
  const app =
    applicationId.length <= 64 ? await getApplication(db, applicationId).catch(() => undefined) : undefined;
  if (!app) throw notFound('application', applicationId);
  return app;
}

/** Every entry (the provider's view), or only those on the public page. */
export async function listShowcase(
  db: Executor,
  filter: { shownOnly?: boolean } = {},
): Promise<ShowcaseEntry[]> {
  return (await listShowcaseRows(db, filter)).map(toEntry);
}

/** The entry of an application, if it has one. */
export async function findShowcaseEntry(
  db: Executor,
  applicationId: string,
): Promise<ShowcaseEntry | undefined> {
  const row = await findShowcaseRow(db, applicationId);
  return row ? toEntry(row) : undefined;
}

export async function getShowcaseEntry(db: Executor, applicationId: string): Promise<ShowcaseEntry> {
  const entry = await findShowcaseEntry(db, applicationId);
  if (!entry) throw notFound('showcase entry of application', applicationId);
  return entry;
}

/**
 * The provider writes an application's entry (featured or not); the partner's consent is kept as it is, and so is
 * the position when none is given. Only the provider's columns are written, so a consent given at the same moment
 * is not undone.
 */
export async function writeShowcaseEntry(
  deps: ChangeDeps,
  actor: Actor,
  applicationId: string,
  input: ShowcaseWrite,
): Promise<ShowcaseEntry> {
  await applicationOr404(deps.db, applicationId);
  return runChange(deps, actor, async (tx, record) => {
    const written = {
      featured: input.featured ? 1 : 0,
      name: input.name,
      logo_url: input.logoUrl ?? '',
      description: input.description,
      link_url: input.linkUrl ?? '',
      ...(input.position !== undefined && { position: input.position }),
      updated_at: isoNow(deps.clock),
    };
    await upsertShowcaseRow(
      tx,
      { application_id: applicationId, consent: 0, consent_at: null, position: 100, ...written },
      written,
    );
    const entry = toEntry((await findShowcaseRow(tx, applicationId))!);
    await record({
      type: 'showcase_entry.updated',
      entityType: 'application',
      entityId: applicationId,
      payload: { entry, applicationId, accountId: entry.accountId },
    });
    return entry;
  });
}

export async function deleteShowcaseEntry(
  deps: ChangeDeps,
  actor: Actor,
  applicationId: string,
): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const gone = () => notFound('showcase entry of application', applicationId);
    const row = await findShowcaseRow(tx, applicationId);
    if (!row) throw gone();
    // of two deletions at once (two control processes), the one that removed nothing is told so, as it would be
    // after the other: one deletion, one event
    if (!(await deleteShowcaseRow(tx, applicationId))) throw gone();
    await record({
      type: 'showcase_entry.deleted',
      entityType: 'application',
      entityId: applicationId,
      payload: { entry: toEntry(row), applicationId, accountId: row.account_id },
    });
  });
}

/**
 * The partner gives or withdraws consent for their application (the caller checked the application is theirs).
 * Consent before the provider wrote an entry is kept on an entry that is not featured, with the application's name.
 */
export async function setShowcaseConsent(
  deps: ChangeDeps,
  actor: Actor,
  applicationId: string,
  consent: boolean,
): Promise<ShowcaseEntry> {
  const app = await applicationOr404(deps.db, applicationId);
  return runChange(deps, actor, async (tx, record) => {
    const now = isoNow(deps.clock);
    // only the partner's columns: the provider's text written at the same moment is kept
    const given = { consent: consent ? 1 : 0, consent_at: consent ? now : null, updated_at: now };
    await upsertShowcaseRow(
      tx,
      {
        application_id: applicationId,
        featured: 0,
        name: app.name,
        logo_url: '',
        description: '',
        link_url: '',
        position: 100,
        ...given,
      },
      given,
    );
    const entry = toEntry((await findShowcaseRow(tx, applicationId))!);
    await record({
      type: consent ? 'showcase_entry.consented' : 'showcase_entry.consent_withdrawn',
      entityType: 'application',
      entityId: applicationId,
      payload: { entry, applicationId, accountId: entry.accountId },
    });
    return entry;
  });
}
