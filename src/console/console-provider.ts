/**
 * The provider's own settings: custom fields, the portal (branding, signup mode, the SSO secret), admin users,
 * admin API tokens, and the mail outbox.
 */
import type { FastifyInstance } from 'fastify';
import {
  AdminTokenCreate,
  AdminUserCreate,
  CustomFieldCreate,
  CustomFieldUpdate,
  PortalSettingsUpdate,
  createAdminToken,
  createAdminUser,
  createCustomField,
  deleteAdminUser,
  deleteCustomField,
  getPortalSettings,
  listAdminTokens,
  listAdminUsers,
  listCustomFields,
  revokeAdminToken,
  updateCustomField,
  updatePortalSettings,
} from '../access/index.js';
import { type FieldProblem, TrellisError } from '../kernel/index.js';
import { listMail } from '../mail/index.js';
import {
  Redirect,
  checked,
  formOf,
  problemsOf,
  rotateWebKey,
  setFlash,
  takeFlash,
  webKey,
} from '../portal/index.js';
import { type ConsoleFace, adminActor } from './console-face.js';

function problemsOrConflict(err: unknown, field: string): FieldProblem[] | undefined {
  if (err instanceof TrellisError && err.code === 'conflict') return [{ field, message: err.message }];
  return problemsOf(err);
}

export function providerRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  const { db, cd } = face;
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;

  // custom fields

  /** `mobile, web, desktop` (commas or lines) → the choices of a select; empty: free text. */
  const choicesOf = (text: string) =>
    text
      .split(/[,\n]/)
      .map((c) => c.trim())
      .filter((c) => c.length > 0);
  /** A position typed in the form; empty: the default. */
  const positionOf = (text: string) => (text === '' ? undefined : Number(text));

  async function fieldsView(problems: FieldProblem[] = [], notice = '') {
    return { title: 'Custom fields', fields: await listCustomFields(db), problems, notice };
  }

  scope.get('/custom-fields', async (req, reply) => {
    await face.requireAdmin(req);
    return face.page(req, reply, 'custom-fields', await fieldsView());
  });

  scope.post('/custom-fields', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    try {
      const input = checked(CustomFieldCreate, {
        target: form.text('target', 20),
        name: form.text('name', 100),
        label: form.text('label', 200),
        required: form.has('required'),
        choices: choicesOf(form.text('choices', 10_000)),
        ...(positionOf(form.text('position', 10)) !== undefined && {
          position: positionOf(form.text('position', 10)),
        }),
      });
      await createCustomField(cd, adminActor(admin), input);
      throw new Redirect('/admin/custom-fields');
    } catch (err) {
      const problems = problemsOrConflict(err, 'name');
      if (!problems) throw err;
      return face.page(req, reply, 'custom-fields', await fieldsView(problems), 400);
    }
  });

  /** Changes a field's label and whether it is required (its name and target stay: values are stored by name). */
  scope.post('/custom-fields/:id', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    try {
      const input = checked(CustomFieldUpdate, {
        label: form.text('label', 200),
        required: form.has('required'),
        choices: choicesOf(form.text('choices', 10_000)),
        ...(positionOf(form.text('position', 10)) !== undefined && {
          position: positionOf(form.text('position', 10)),
        }),
      });
      const field = await updateCustomField(cd, adminActor(admin), id(req), input);
      return face.page(req, reply, 'custom-fields', await fieldsView([], `Field ${field.name} saved.`));
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      return face.page(req, reply, 'custom-fields', await fieldsView(problems), 400);
    }
  });

  scope.post('/custom-fields/:id/delete', async (req) => {
    const admin = await face.requireAdmin(req);
    await deleteCustomField(cd, adminActor(admin), id(req));
    throw new Redirect('/admin/custom-fields');
  });

  // portal settings and SSO

  async function settingsView(
    extra: { problems?: FieldProblem[]; notice?: string; ssoSecret?: string } = {},
  ) {
    const settings = await getPortalSettings(db);
    const secret = await webKey(db, cd.clock, 'sso');
    return {
      title: 'Portal settings',
      settings,
      ssoPrefix: `${secret.slice(0, 10)}…`,
      ssoSecret: extra.ssoSecret ?? '',
      publicUrl: face.deps.config.publicUrl,
      problems: extra.problems ?? [],
      notice: extra.notice ?? '',
    };
  }

  scope.get('/portal-settings', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    // the favicon upload (console-brand.ts) says how it went here
    const flash = await takeFlash(
      { db, clock: cd.clock, publicUrl: face.deps.config.publicUrl },
      req,
      reply,
      '/admin/portal-settings',
      admin.session.tokenHash,
    );
    return face.page(req, reply, 'portal-settings', {
      ...(await settingsView()),
      faviconNotice: flash.notice ?? '',
    });
  });

  scope.post('/portal-settings', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    try {
      // Footer links: one per line, "label | URL".
      const footerLinks = form
        .text('footerLinks', 10_000)
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean)
        .map((line) => {
          const [label = '', url = ''] = line.split('|').map((x) => x.trim());
          return { label, url };
        });
      const input = checked(PortalSettingsUpdate, {
        name: form.text('name', 200),
        logoUrl: form.text('logoUrl', 2000),
        faviconUrl: form.text('faviconUrl', 2000),
        primaryColor: form.text('primaryColor', 7),
        accentColor: form.text('accentColor', 7),
        customCss: form.raw('customCss', 50_000),
        footerLinks,
        signupMode: form.text('signupMode', 10),
        senderAddress: form.text('senderAddress', 320),
        contactEmail: form.text('contactEmail', 320),
      });
      await updatePortalSettings(cd, adminActor(admin), input);
      return face.page(req, reply, 'portal-settings', await settingsView({ notice: 'Settings saved.' }));
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      return face.page(req, reply, 'portal-settings', await settingsView({ problems }), 400);
    }
  });

  scope.post('/portal-settings/sso-secret', async (req, reply) => {
    await face.requireAdmin(req);
    const secret = await rotateWebKey(db, cd.clock, 'sso');
    return face.page(
      req,
      reply,
      'portal-settings',
      await settingsView({
        ssoSecret: secret,
        notice: 'A new SSO secret is in force; the old one no longer works.',
      }),
    );
  });

  // admin users

  async function adminsView(problems: FieldProblem[] = []) {
    return { title: 'Admin users', admins: await listAdminUsers(db), problems };
  }

  scope.get('/admin-users', async (req, reply) => {
    await face.requireAdmin(req);
    return face.page(req, reply, 'admin-users', await adminsView());
  });

  scope.post('/admin-users', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    try {
      const input = checked(AdminUserCreate, {
        email: form.text('email', 320),
        name: form.text('name', 200),
        password: form.raw('password', 200),
      });
      await createAdminUser(cd, adminActor(admin), input);
      throw new Redirect('/admin/admin-users');
    } catch (err) {
      const problems = problemsOrConflict(err, 'email');
      if (!problems) throw err;
      return face.page(req, reply, 'admin-users', await adminsView(problems), 400);
    }
  });

  scope.post('/admin-users/:id/delete', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    await deleteAdminUser(cd, adminActor(admin), id(req));
    await face.sessions.endAllOf(id(req));
    if (id(req) === admin.user.id) await face.sessions.end(req, reply);
    throw new Redirect('/admin/admin-users');
  });

  // admin API tokens

  async function tokensView(extra: { problems?: FieldProblem[]; created?: string } = {}) {
    return {
      title: 'Admin API tokens',
      tokens: await listAdminTokens(db),
      problems: extra.problems ?? [],
      created: extra.created ?? '',
    };
  }

  const flashDeps = { db, clock: cd.clock, publicUrl: face.deps.config.publicUrl };

  scope.get('/tokens', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const flash = await takeFlash(flashDeps, req, reply, '/admin/tokens', admin.session.tokenHash);
    return face.page(
      req,
      reply,
      'tokens',
      await tokensView({ ...(flash.secret && { created: flash.secret }) }),
    );
  });

  scope.post('/tokens', async (req, reply) => {
    const admin = await face.requireAdmin(req);
    const form = formOf(req);
    try {
      const input = checked(AdminTokenCreate, {
        name: form.text('name', 200),
        scope: form.text('scope', 20),
      });
      const token = await createAdminToken(cd, adminActor(admin), input);
      // POST → redirect → GET: a reload shows the list, it never makes a second token (issue 13)
      await setFlash(flashDeps, req, reply, '/admin/tokens', admin.session.tokenHash, {
        secret: token.token,
      });
      throw new Redirect('/admin/tokens');
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      return face.page(req, reply, 'tokens', await tokensView({ problems }), 400);
    }
  });

  scope.post('/tokens/:id/revoke', async (req) => {
    const admin = await face.requireAdmin(req);
    await revokeAdminToken(cd, adminActor(admin), id(req));
    throw new Redirect('/admin/tokens');
  });

  // mail outbox

  scope.get('/mail', async (req, reply) => {
    await face.requireAdmin(req);
    const mails = await listMail(db, { limit: 200 });
    return face.page(req, reply, 'mail', {
      title: 'Mail outbox',
      mails,
      smtp: face.deps.config.smtpUrl !== '',
    });
  });
}
