/**
 * The provider's own pages in the portal (issue 13): content pages at /pages/<slug>, the public "Success stories"
 * page, the partner's consent to be featured there (on a page of each application), and /favicon.ico.
 */
import type { FastifyInstance } from 'fastify';
import { getPortalSettings } from '../access/index.js';
import { notFound } from '../kernel/index.js';
import { readablePage, renderMarkdown } from './content-pages.js';
import { defaultFavicon, getUploadedFavicon } from './favicon.js';
import { setFlash, takeFlash } from './flash.js';
import { developerActor, ownApplication, requireAccountAdmin } from './portal-face.js';
import type { PortalFace } from './portal-face.js';
import { findShowcaseEntry, listShowcase, setShowcaseConsent } from './showcase.js';
import { Redirect, formOf } from './web-pages.js';

export function contentRoutes(scope: FastifyInstance, face: PortalFace): void {
  const flashDeps = { db: face.db, clock: face.cd.clock, publicUrl: face.deps.config.publicUrl };

  scope.get('/favicon.ico', async (_req, reply) => {
    const uploaded = await getUploadedFavicon(face.db);
    const settings = uploaded ? undefined : await getPortalSettings(face.db);
    // the settings' URL (an https address or a path here; checked when saved), unless it names this very route
    if (settings?.faviconUrl && settings.faviconUrl !== '/favicon.ico') {
      return reply.redirect(settings.faviconUrl, 302);
    }
    const icon = uploaded ?? defaultFavicon;
    return (
      reply
        .type(icon.contentType)
        .header('X-Content-Type-Options', 'nosniff')
        // an image, never a document: nothing in it may run or load, even if opened directly
        .header('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox")
        .header('Cache-Control', 'no-cache')
        .send(icon.bytes)
    );
  });

  scope.get('/pages/:slug', async (req, reply) => {
    const { slug } = req.params as { slug: string };
    const me = await face.developer(req);
    // not for this visitor, or not there: the same 404, so nobody learns which pages exist
    const page = await readablePage(face.db, slug, me && { accountId: me.account.id });
    if (!page || slug === 'index') throw notFound('page', slug.slice(0, 100));
    return face.page(req, reply, 'content-page', {
      title: page.title,
      page,
      html: renderMarkdown(page.body),
    });
  });

  scope.get('/success-stories', async (req, reply) => {
    const stories = await listShowcase(face.db, { shownOnly: true });
    return face.page(req, reply, 'success-stories', { title: 'Success stories', stories });
  });

  scope.get('/apps/:id/showcase', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const path = `/apps/${app.id}/showcase`;
    const flash = await takeFlash(flashDeps, req, reply, path, me.session.tokenHash);
    return face.page(req, reply, 'showcase-consent', {
      title: `${app.name}: success stories`,
      app,
      entry: await findShowcaseEntry(face.db, app.id),
      mayChange: me.user.role === 'admin',
      notice: flash.notice ?? '',
    });
  });

  scope.post('/apps/:id/showcase', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    requireAccountAdmin(me);
    const consent = formOf(req).text('consent', 10) === 'yes';
    await setShowcaseConsent(face.cd, developerActor(me), app.id, consent);
    const path = `/apps/${app.id}/showcase`;
    await setFlash(flashDeps, req, reply, path, me.session.tokenHash, {
      notice: consent
        ? 'Thank you: the provider may now feature this integration in its success stories.'
        : 'Consent withdrawn: this integration is not shown in the success stories.',
    });
    throw new Redirect(path);
  });
}
