/**
 * The provider's brand in the console (issue 13), under Portal: the e-mail templates (edit, preview with sample
 * data, reset to the default), content pages in Markdown, and the partner showcase. Each form does what a
 * management API operation does (the parity test maps them).
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { listApplications } from '../access/index.js';
import { listPlans, listServices } from '../catalog/index.js';
import { type FieldProblem, TrellisError } from '../kernel/index.js';
import {
  type MailPreview,
  getMailTemplate,
  listMailTemplates,
  mailTemplateDefinitions,
  previewMailTemplate,
  resetMailTemplate,
  saveMailTemplate,
} from '../mail/index.js';
import {
  ContentPageCreate,
  Redirect,
  deleteFavicon,
  maxFaviconBytes,
  setFavicon,
  ShowcaseWrite,
  checked,
  createContentPage,
  deleteContentPage,
  deleteShowcaseEntry,
  formOf,
  getContentPage,
  listContentPages,
  listShowcase,
  problemsOf,
  renderMarkdown,
  setFlash,
  takeFlash,
  updateContentPage,
  writeShowcaseEntry,
} from '../portal/index.js';
import { type ConsoleFace, adminActor } from './console-face.js';

/** Where these pages are: routes are registered in the console's `/admin` scope. */
const route = '/portal-settings';
const base = `/admin${route}`;

function problemsOrConflict(err: unknown, field: string): FieldProblem[] | undefined {
  if (err instanceof TrellisError && err.code === 'conflict') return [{ field, message: err.message }];
  return problemsOf(err);
}

export function brandRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  const { db, cd } = face;
  const flashDeps = { db, clock: cd.clock, publicUrl: face.deps.config.publicUrl };
  const param = (req: { params: unknown }, name: string) =>
    (req.params as Record<string, string>)[name] ?? '';
  const templateKey = (req: { params: unknown }) => {
    const key = param(req, 'key');
    if (!mailTemplateDefinitions.some((d) => d.key === key))
      throw new TrellisError('not_found', `No mail template ${key.slice(0, 40)}.`);
    return key;
  };

  // e-mail templates

  scope.get(`${route}/mail-templates`, async (req, reply) => {
    await face.requireAdmin(req);
    return face.page(req, reply, 'mail-templates', {
      title: 'Mail templates',
      templates: await listMailTemplates(db),
    });
  });

  async function templateView(
    key: string,
    extra: {
      subject?: string;
      body?: string;
      preview?: MailPreview;
      problems?: FieldProblem[];
      notice?: string;
    } = {},
  ) {
    const template = await getMailTemplate(db, key);
    return {
      title: `Mail template: ${template.name}`,
      template,
      subject: extra.subject ?? template.subject,
      body: extra.body ?? template.body,
      preview: extra.preview,
      problems: extra.problems ?? [],
      notice: extra.notice ?? '',
    };
  }

  scope.get(`${route}/mail-templates/:key`, async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const key = templateKey(req);
    const flash = await takeFlash(
      flashDeps,
      req,
      reply,
      `${base}/mail-templates/${key}`,
      admin.session.tokenHash,
    );
    return face.page(
      req,
      reply,
      'mail-template',
      await templateView(key, { ...(flash.notice && { notice: flash.notice }) }),
    );
  });

  scope.post(`${route}/mail-templates/:key`, async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const key = templateKey(req);
    const form = formOf(req);
    const input = {
      subject: form.text('subject', 300),
      body: form.raw('body', 20_000).replace(/\r\n/g, '\n'),
    };
    try {
      await saveMailTemplate(cd, adminActor(admin), key, input);
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      return face.page(req, reply, 'mail-template', await templateView(key, { ...input, problems }), 400);
    }
    await setFlash(flashDeps, req, reply, `${base}/mail-templates/${key}`, admin.session.tokenHash, {
      notice: 'Template saved: the next mails use it.',
    });
    throw new Redirect(`${base}/mail-templates/${key}`);
  });

  scope.post(`${route}/mail-templates/:key/preview`, async (req, reply) => {
    await face.requireAdmin(req);
    const key = templateKey(req);
    const form = formOf(req);
    const input = {
      subject: form.text('subject', 300),
      body: form.raw('body', 20_000).replace(/\r\n/g, '\n'),
    };
    try {
      const preview = await previewMailTemplate(db, key, input);
      return face.page(req, reply, 'mail-template', await templateView(key, { ...input, preview }));
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      return face.page(req, reply, 'mail-template', await templateView(key, { ...input, problems }), 400);
    }
  });

  scope.post(`${route}/mail-templates/:key/reset`, async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const key = templateKey(req);
    await resetMailTemplate(cd, adminActor(admin), key);
    await setFlash(flashDeps, req, reply, `${base}/mail-templates/${key}`, admin.session.tokenHash, {
      notice: 'Back to the default template.',
    });
    throw new Redirect(`${base}/mail-templates/${key}`);
  });

  // content pages

  async function plansToChoose() {
    const services = (await listServices(db, { limit: 200 })).data;
    const plans = await Promise.all(services.map((s) => listPlans(db, { serviceId: s.id })));
    return services.flatMap((s, i) =>
      (plans[i] ?? []).map((p) => ({ id: p.id, label: `${s.name} — ${p.name}` })),
    );
  }

  function pageInput(form: ReturnType<typeof formOf>) {
    const position = form.text('position', 10);
    return {
      slug: form.text('slug', 100),
      title: form.text('title', 200),
      body: form.raw('body', 100_000).replace(/\r\n/g, '\n'),
      visibility: form.text('visibility', 20),
      planIds: form.list('planIds').slice(0, 100),
      inNavigation: form.text('inNavigation', 5) === 'yes',
      ...(position !== '' && { position: Number(position) }),
    };
  }

  async function pagesView(extra: { problems?: FieldProblem[]; values?: Record<string, unknown> } = {}) {
    return {
      title: 'Content pages',
      pages: await listContentPages(db),
      plans: await plansToChoose(),
      problems: extra.problems ?? [],
      values: extra.values ?? {
        visibility: 'everyone',
        inNavigation: true,
        planIds: [],
        body: '',
        position: '',
      },
    };
  }

  scope.get(`${route}/pages`, async (req, reply) => {
    await face.requireAdmin(req);
    return face.page(req, reply, 'content-pages', await pagesView());
  });

  scope.post(`${route}/pages`, async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const values = pageInput(formOf(req));
    let id: string;
    try {
      id = (await createContentPage(cd, adminActor(admin), checked(ContentPageCreate, values))).id;
    } catch (err) {
      const problems = problemsOrConflict(err, 'slug');
      if (!problems) throw err;
      return face.page(req, reply, 'content-pages', await pagesView({ problems, values }), 400);
    }
    // POST → redirect → GET: a reload never makes a second page
    await setFlash(flashDeps, req, reply, `${base}/pages/${id}`, admin.session.tokenHash, {
      notice: 'Page created.',
    });
    throw new Redirect(`${base}/pages/${id}`);
  });

  async function pageView(
    id: string,
    extra: { problems?: FieldProblem[]; values?: Record<string, unknown>; notice?: string } = {},
  ) {
    const page = await getContentPage(db, id);
    return {
      title: `Page: ${page.title}`,
      page,
      html: renderMarkdown(page.body),
      plans: await plansToChoose(),
      problems: extra.problems ?? [],
      values: extra.values ?? page,
      notice: extra.notice ?? '',
      publicUrl: face.deps.config.publicUrl,
    };
  }

  scope.get(`${route}/pages/:id`, async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const id = param(req, 'id');
    const flash = await takeFlash(flashDeps, req, reply, `${base}/pages/${id}`, admin.session.tokenHash);
    return face.page(
      req,
      reply,
      'content-page',
      await pageView(id, { ...(flash.notice && { notice: flash.notice }) }),
    );
  });

  scope.post(`${route}/pages/:id`, async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const id = param(req, 'id');
    const values = pageInput(formOf(req));
    try {
      await updateContentPage(cd, adminActor(admin), id, checked(ContentPageCreate, values));
    } catch (err) {
      const problems = problemsOrConflict(err, 'slug');
      if (!problems) throw err;
      return face.page(req, reply, 'content-page', await pageView(id, { problems, values }), 400);
    }
    await setFlash(flashDeps, req, reply, `${base}/pages/${id}`, admin.session.tokenHash, {
      notice: 'Page saved.',
    });
    throw new Redirect(`${base}/pages/${id}`);
  });

  scope.post(`${route}/pages/:id/delete`, async (req) => {
    const admin = await face.requireAdmin(req);
    await deleteContentPage(cd, adminActor(admin), param(req, 'id'));
    throw new Redirect(`${base}/pages`);
  });

  // the partner showcase

  async function showcaseView(
    extra: { problems?: FieldProblem[]; values?: Record<string, unknown>; notice?: string } = {},
  ) {
    const live = (await listApplications(db, { state: 'live' }, { limit: 200 })).data;
    return {
      title: 'Showcase',
      entries: await listShowcase(db),
      applications: live.map((a) => ({ id: a.id, name: a.name })),
      problems: extra.problems ?? [],
      values: extra.values ?? { featured: true },
      notice: extra.notice ?? '',
    };
  }

  scope.get(`${route}/showcase`, async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const flash = await takeFlash(flashDeps, req, reply, `${base}/showcase`, admin.session.tokenHash);
    return face.page(
      req,
      reply,
      'showcase',
      await showcaseView({ ...(flash.notice && { notice: flash.notice }) }),
    );
  });

  scope.post(`${route}/showcase`, async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    const applicationId = form.text('applicationId', 64);
    const position = form.text('position', 10);
    const values = {
      featured: form.text('featured', 5) === 'yes',
      name: form.text('name', 200),
      logoUrl: form.text('logoUrl', 2000),
      description: form.text('description', 2000),
      linkUrl: form.text('linkUrl', 2000),
      ...(position !== '' && { position: Number(position) }),
    };
    try {
      await writeShowcaseEntry(cd, adminActor(admin), applicationId, checked(ShowcaseWrite, values));
    } catch (err) {
      const notFound = err instanceof TrellisError && err.code === 'not_found';
      const problems = notFound
        ? [{ field: 'applicationId', message: 'choose an application' }]
        : problemsOf(err);
      if (!problems) throw err;
      return face.page(
        req,
        reply,
        'showcase',
        await showcaseView({ problems, values: { ...values, applicationId } }),
        400,
      );
    }
    await setFlash(flashDeps, req, reply, `${base}/showcase`, admin.session.tokenHash, {
      notice: 'Showcase entry saved.',
    });
    throw new Redirect(`${base}/showcase`);
  });

  scope.post(`${route}/showcase/:id/delete`, async (req) => {
    const admin = await face.requireAdmin(req);
    await deleteShowcaseEntry(cd, adminActor(admin), param(req, 'id'));
    throw new Redirect(`${base}/showcase`);
  });

  // the favicon: an image upload (multipart, parsed only on its own route), or back to the URL / Trellis's own

  scope.register(async (uploads: FastifyInstance) => {
    await uploads.register(multipart, {
      throwFileSizeLimit: true,
      limits: { fileSize: maxFaviconBytes, files: 1, fields: 2, fieldSize: 1024, parts: 3, headerPairs: 50 },
    });
    uploads.post(
      `${route}/favicon`,
      // the CSRF field is inside the multipart body: checked below, once the form is read
      { config: { csrf: 'header' } },
      async (req, reply) => {
        const admin = await face.requireAdmin(req);
        if (!req.isMultipart()) {
          throw new TrellisError(
            'unsupported_media_type',
            'Upload the image with the form (multipart/form-data).',
          );
        }
        const fields: Record<string, string> = {};
        let bytes: Buffer = Buffer.alloc(0);
        let tooLarge = false;
        try {
          for await (const part of req.parts()) {
            if (part.type === 'file') {
              const content = await part.toBuffer();
              if (part.fieldname === 'favicon') bytes = content;
            } else if (typeof part.value === 'string') fields[part.fieldname] = part.value;
          }
        } catch (err) {
          if ((err as { code?: string }).code !== 'FST_REQ_FILE_TOO_LARGE') throw err;
          tooLarge = true;
        }
        if (!face.csrf.verify(req, fields._csrf, admin.session.tokenHash))
          throw new TrellisError('csrf_invalid');
        let notice: string;
        try {
          if (tooLarge)
            throw new TrellisError(
              'body_too_large',
              `The favicon is larger than ${maxFaviconBytes / 1024} KiB.`,
            );
          const saved = await setFavicon(cd, adminActor(admin), bytes);
          notice = `Favicon uploaded (${saved.contentType}, ${saved.size} bytes).`;
        } catch (err) {
          if (
            !(err instanceof TrellisError) ||
            !['body_too_large', 'unsupported_media_type'].includes(err.code)
          )
            throw err;
          notice = `Not uploaded: ${err.message}`;
          await setFlash(flashDeps, req, reply, base, admin.session.tokenHash, { notice, place: 'favicon' });
          return reply.status(303).header('Location', `${base}#favicon`).send();
        }
        await setFlash(flashDeps, req, reply, base, admin.session.tokenHash, { notice, place: 'favicon' });
        throw new Redirect(`${base}#favicon`);
      },
    );
  });

  scope.post(`${route}/favicon/delete`, async (req) => {
    const admin = await face.requireAdmin(req);
    await deleteFavicon(cd, adminActor(admin));
    throw new Redirect(`${base}#favicon`);
  });
}
