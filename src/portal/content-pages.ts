/**
 * Content pages the provider writes in Markdown (issue 13): the front page (`index`) and any number of pages at
 * `/pages/<slug>`, each visible to everyone, to signed-in developers, or to developers whose account has a live
 * application on given plans. A page a visitor may not see is "not found" to them, exactly like a page that does
 * not exist, so nobody learns what is there.
 *
 * Markdown is rendered by markdown-it with HTML switched off (a tag is shown as text), and every link and image
 * must be http(s), mailto or a path on this site: a page with another (`javascript:`, `data:` …) is refused when
 * saved, and the renderer drops any that reached it. Links to other sites get `rel="noopener noreferrer"`.
 */
import MarkdownIt from 'markdown-it';
import { listApplications } from '../access/index.js';
import { getPlan } from '../catalog/index.js';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { type FieldProblem, TrellisError, invalid, isoNow, newId, notFound } from '../kernel/index.js';
import { type Executor, isUniqueViolation } from '../store/index.js';
import {
  type ContentPageRow,
  deletePageRow,
  findPageRow,
  findPageRowBySlug,
  insertPageRow,
  listPageRows,
  updatePageRow,
} from './brand.store.js';
import type { ContentPage, ContentPageCreate, ContentPageUpdate } from './brand-schemas.js';

/** The slug of the front page. */
export const frontPageSlug = 'index';

/** http(s), mailto, or a path / anchor on this site; no other scheme. */
export function isAllowedLink(url: string): boolean {
  const u = url.trim();
  if (/^(https?:\/\/|mailto:)/i.test(u)) return !/[\s<>"']/.test(u);
  // relative: no scheme before the first / ? or #
  return !/^[^/?#]*:/.test(u) && !u.startsWith('//');
}

const renderer = new MarkdownIt({ html: false, linkify: true, typographer: false });
renderer.validateLink = isAllowedLink;
const defaultLinkOpen =
  renderer.renderer.rules.link_open ??
  ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
renderer.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  if (token && /^https?:\/\//i.test(String(token.attrGet('href') ?? '')))
    token.attrSet('rel', 'noopener noreferrer');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

/** Sees every link as written, so a refused one can be named when the page is saved. */
const checker = new MarkdownIt({ html: false, linkify: true });
checker.validateLink = () => true;

/** The page's HTML: escaped text, no raw HTML, only allowed links. */
export function renderMarkdown(body: string): string {
  return renderer.render(body);
}

function linkProblems(body: string): FieldProblem[] {
  const refused = new Set<string>();
  const walk = (tokens: ReturnType<typeof checker.parse>) => {
    for (const t of tokens) {
      for (const name of ['href', 'src']) {
        const v = t.attrGet(name);
        if (v !== null && !isAllowedLink(String(v))) refused.add(String(v));
      }
      if (t.children) walk(t.children);
    }
  };
  walk(checker.parse(body, {}));
  return [...refused].slice(0, 10).map((url) => ({
    field: 'body',
    message: `the link "${url.slice(0, 80)}" is not allowed: use http(s)://, mailto: or a path on this site`,
  }));
}

function toPage(row: ContentPageRow): ContentPage {
  return {
    id: row.id,
    slug: row.slug,
    title: row.title,
    body: row.body,
    visibility: row.visibility as ContentPage['visibility'],
    planIds: JSON.parse(row.plan_ids) as string[],
    inNavigation: row.in_navigation === 1,
    position: row.position,
    url: row.slug === frontPageSlug ? '/' : `/pages/${row.slug}`,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

async function checkPage(db: Executor, page: Omit<ContentPage, 'id' | 'url' | 'createdAt' | 'updatedAt'>) {
  const problems = linkProblems(page.body);
  if (page.visibility === 'plans' && page.planIds.length === 0) {
    problems.push({
      field: 'planIds',
      message: 'name at least one plan when the page is for accounts on plans',
    });
  }
  for (const planId of page.planIds) {
    const exists = await getPlan(db, planId).then(
      () => true,
      () => false,
    );
    if (!exists) problems.push({ field: 'planIds', message: `there is no plan ${planId.slice(0, 64)}` });
  }
  if (problems.length > 0) throw invalid(problems);
}

function slugTaken(slug: string): TrellisError {
  return new TrellisError('conflict', `A page with the address ${slug} exists.`);
}

export async function listContentPages(db: Executor): Promise<ContentPage[]> {
  return (await listPageRows(db)).map(toPage);
}

export async function getContentPage(db: Executor, id: string): Promise<ContentPage> {
  const row = id.length <= 64 ? await findPageRow(db, id) : undefined;
  if (!row) throw notFound('content page', id);
  return toPage(row);
}

export async function createContentPage(
  deps: ChangeDeps,
  actor: Actor,
  input: ContentPageCreate,
): Promise<ContentPage> {
  const draft = {
    slug: input.slug,
    title: input.title,
    body: input.body,
    visibility: input.visibility ?? 'everyone',
    planIds: input.visibility === 'plans' ? [...new Set(input.planIds ?? [])] : [],
    inNavigation: input.inNavigation ?? input.slug !== frontPageSlug,
    position: input.position ?? 100,
  };
  await checkPage(deps.db, draft);
  try {
    return await runChange(deps, actor, async (tx, record) => {
      if (await findPageRowBySlug(tx, draft.slug)) throw slugTaken(draft.slug);
      const now = isoNow(deps.clock);
      const id = newId('contentPage', deps.clock.now());
      await insertPageRow(tx, {
        id,
        slug: draft.slug,
        title: draft.title,
        body: draft.body,
        visibility: draft.visibility,
        plan_ids: JSON.stringify(draft.planIds),
        in_navigation: draft.inNavigation ? 1 : 0,
        position: draft.position,
        created_at: now,
        updated_at: now,
      });
      const page = toPage((await findPageRow(tx, id))!);
      await record({
        type: 'content_page.created',
        entityType: 'content_page',
        entityId: id,
        payload: { page },
      });
      return page;
    });
  } catch (err) {
    // two saves of the same address at once: the second is the visitor's conflict
    if (isUniqueViolation(err)) throw slugTaken(draft.slug);
    throw err;
  }
}

export async function updateContentPage(
  deps: ChangeDeps,
  actor: Actor,
  id: string,
  input: ContentPageUpdate,
): Promise<ContentPage> {
  const before = await getContentPage(deps.db, id);
  const visibility = input.visibility ?? before.visibility;
  const next = {
    slug: input.slug ?? before.slug,
    title: input.title ?? before.title,
    body: input.body ?? before.body,
    visibility,
    planIds: visibility === 'plans' ? [...new Set(input.planIds ?? before.planIds)] : [],
    inNavigation: input.inNavigation ?? before.inNavigation,
    position: input.position ?? before.position,
  };
  await checkPage(deps.db, next);
  try {
    return await runChange(deps, actor, async (tx, record) => {
      const other = await findPageRowBySlug(tx, next.slug);
      if (other && other.id !== id) throw slugTaken(next.slug);
      await updatePageRow(tx, id, {
        slug: next.slug,
        title: next.title,
        body: next.body,
        visibility: next.visibility,
        plan_ids: JSON.stringify(next.planIds),
        in_navigation: next.inNavigation ? 1 : 0,
        position: next.position,
        updated_at: isoNow(deps.clock),
      });
      const page = toPage((await findPageRow(tx, id))!);
      await record({
        type: 'content_page.updated',
        entityType: 'content_page',
        entityId: id,
        payload: { page },
      });
      return page;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw slugTaken(next.slug);
    throw err;
  }
}

export async function deleteContentPage(deps: ChangeDeps, actor: Actor, id: string): Promise<void> {
  await runChange(deps, actor, async (tx, record) => {
    const gone = () => notFound('content page', id);
    const row = id.length <= 64 ? await findPageRow(tx, id) : undefined;
    if (!row) throw gone();
    if (!(await deletePageRow(tx, id))) throw gone();
    await record({
      type: 'content_page.deleted',
      entityType: 'content_page',
      entityId: id,
      payload: { page: toPage(row) },
    });
  });
}

/** Who asks for a page: nobody, or a signed-in developer of an account. */
export type PageReader = { accountId: string } | undefined;

/** The plans the reader's account has a live application on (asked once per request when a page needs it). */
async function livePlansOf(db: Executor, reader: PageReader): Promise<Set<string>> {
  if (!reader) return new Set();
  const apps = await listApplications(db, { accountId: reader.accountId }, { limit: 200 });
  return new Set(apps.data.filter((a) => a.state === 'live').map((a) => a.planId));
}

function mayRead(page: ContentPage, reader: PageReader, plans: Set<string>): boolean {
  if (page.visibility === 'everyone') return true;
  if (!reader) return false;
  if (page.visibility === 'developers') return true;
  return page.planIds.some((p) => plans.has(p));
}

/**
 * The page at `slug` if the reader may see it; otherwise `undefined` — the portal answers 404 either way.
 */
export async function readablePage(
  db: Executor,
  slug: string,
  reader: PageReader,
): Promise<ContentPage | undefined> {
  if (slug.length > 100) return undefined;
  const row = await findPageRowBySlug(db, slug);
  if (!row) return undefined;
  const page = toPage(row);
  if (page.visibility === 'plans')
    return mayRead(page, reader, await livePlansOf(db, reader)) ? page : undefined;
  return mayRead(page, reader, new Set()) ? page : undefined;
}

/** The pages of the navigation the reader may see, in order (the front page is the portal's home link). */
export async function navigationPages(
  db: Executor,
  reader: PageReader,
): Promise<{ title: string; url: string }[]> {
  const pages = (await listPageRows(db))
    .map(toPage)
    .filter((p) => p.inNavigation && p.slug !== frontPageSlug);
  if (pages.length === 0) return [];
  const plans = pages.some((p) => p.visibility === 'plans')
    ? await livePlansOf(db, reader)
    : new Set<string>();
  return pages.filter((p) => mayRead(p, reader, plans)).map((p) => ({ title: p.title, url: p.url }));
}
