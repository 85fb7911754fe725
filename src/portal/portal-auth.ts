/** Signing up, in and out; password resets by e-mail; single sign-on; accepting an invitation. */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import {
  acceptInvitation,
  findOpenInvitation,
  findUserByEmailAddress,
  getAccount,
  getPortalSettings,
  getUser,
  insertAccount,
  insertUser,
  listCustomFields,
  updateUser,
  verifyUserLogin,
} from '../access/index.js';
import { runChange, systemActor } from '../events/index.js';
import { composeMail } from '../mail/index.js';
import { TrellisError, hashSecret, invalid, isoNow } from '../kernel/index.js';
import {
  deleteExpiredSsoTokens,
  findPasswordReset,
  insertPasswordReset,
  usePasswordReset,
  useSsoToken,
} from './portal.store.js';
import type { PortalFace } from './portal-face.js';
import { passwordLoginRoutes } from './password-login.js';
import { verifySsoToken } from './sso.js';
import { Redirect, formOf, problemsOf, safeNext } from './web-pages.js';
import { webKey } from './web-keys.js';

/** Reset links work for an hour. */
const resetLifetimeMs = 3600_000;
const minPassword = 10;

export function authRoutes(scope: FastifyInstance, face: PortalFace): void {
  const { db, cd } = face;

  async function signupFields() {
    const [accountFields, userFields] = await Promise.all([
      listCustomFields(db, 'account'),
      listCustomFields(db, 'user'),
    ]);
    return { accountFields, userFields };
  }

  scope.get('/signup', async (req, reply) => {
    const settings = await getPortalSettings(db);
    if (settings.signupMode === 'closed') return face.page(req, reply, 'signup-closed', { title: 'Sign up' });
    const q = req.query as Record<string, string | undefined>;
    return face.page(req, reply, 'signup', {
      title: 'Sign up',
      ...(await signupFields()),
      // a visitor's "Get a key" for one API brings them back to it (issue 13)
      values: { next: safeNext(q.next, '') },
      problems: [],
    });
  });

  scope.post('/signup', async (req, reply) => {
    const settings = await getPortalSettings(db);
    if (settings.signupMode === 'closed') {
      return face.page(req, reply, 'signup-closed', { title: 'Sign up' }, 403);
    }
    const form = formOf(req);
    const email = form.text('email', 320).toLowerCase();
    const password = form.raw('password', 200);
    const problems = [];
    if (!/^[^\s@]+@[^\s@]+$/.test(email))
      problems.push({ field: 'email', message: 'an e-mail address is required' });
    if (password.length < minPassword) {
      problems.push({ field: 'password', message: `at least ${minPassword} characters` });
    }
    if (!form.text('organization', 200)) problems.push({ field: 'organization', message: 'is required' });
    if (!form.text('name', 200)) problems.push({ field: 'name', message: 'is required' });
    try {
      if (problems.length > 0) throw invalid(problems);
      const state = settings.signupMode === 'approval' ? 'pending' : 'approved';
      const user = await runChange(cd, { type: 'developer', id: null }, async (tx, record) => {
        const account = await insertAccount(
          tx,
          cd.clock,
          record,
          { name: form.text('organization', 200), state, customFields: form.prefixed('acf_') },
          'acf',
        );
        return insertUser(
          tx,
          cd.clock,
          record,
          account.id,
          {
            email,
            name: form.text('name', 200),
            role: 'admin',
            password,
            customFields: form.prefixed('ucf_'),
          },
          'ucf',
        );
      });
      await face.mailer.send(
        await composeMail(
          db,
          'signup',
          user.email,
          {
            name: user.name,
            email: user.email,
            organization: form.text('organization', 200),
            accountState: state,
            nextStep:
              state === 'pending'
                ? 'The provider reviews new accounts; you will be able to create applications once yours is approved.'
                : 'Create an application to get your first key.',
            loginUrl: `${face.deps.config.publicUrl}/login`,
          },
          face.deps.config.publicUrl,
        ),
      );
      await face.sessions.start(req, reply, user.id);
      // back to what the visitor chose, else the first-run page that ends in a key (issue 13)
      throw new Redirect(safeNext(form.text('next', 500), '/apps/new?welcome=1'));
    } catch (err) {
      const shown = problemsOf(err);
      const conflict = err instanceof TrellisError && err.code === 'conflict';
      if (!shown && !conflict) throw err;
      return face.page(
        req,
        reply,
        'signup',
        {
          title: 'Sign up',
          ...(await signupFields()),
          values: form.values(),
          problems: shown ?? [
            { field: 'email', message: 'an account with this e-mail exists; sign in instead' },
          ],
        },
        400,
      );
    }
  });

  passwordLoginRoutes(scope, face, {
    signedIn: async (req) => (await face.developer(req)) !== undefined,
    verify: async (email, password) => {
      const user = await verifyUserLogin(db, email, password);
      const account = user ? await getAccount(db, user.accountId) : undefined;
      if (user && account && account.state !== 'suspended') return { userId: user.id };
      return {
        error: account?.state === 'suspended' ? 'This account is suspended.' : 'Wrong e-mail or password.',
      };
    },
    home: '/apps',
    afterLogout: '/',
    tooManyAttempts: 'Too many attempts. Wait a moment, or reset your password.',
  });

  // password reset

  scope.get('/password-reset', async (req, reply) =>
    face.page(req, reply, 'reset-request', { title: 'Reset your password', sent: false }),
  );

  scope.post('/password-reset', async (req, reply) => {
    const email = formOf(req).text('email', 320);
    // every request counts as a failure of (reset:e-mail, address): past a few, delays, and nothing is said
    const attempt = await face.throttle.claim(`reset:${email}`, req.clientIp);
    let user: Awaited<ReturnType<typeof findUserByEmailAddress>>;
    if (attempt.allowed) {
      try {
        user = await findUserByEmailAddress(db, email);
      } finally {
        await attempt.failed();
      }
    }
    if (user) {
      const token = randomBytes(32).toString('base64url');
      await insertPasswordReset(db, {
        token_hash: hashSecret(token),
        user_id: user.id,
        created_at: isoNow(cd.clock),
        expires_at: new Date(cd.clock.now() + resetLifetimeMs).toISOString(),
        used_at: null,
      });
      const link = `${face.deps.config.publicUrl}/password-reset/${token}`;
      await face.mailer.send(
        await composeMail(
          db,
          'password_reset',
          user.email,
          { email: user.email, resetUrl: link },
          face.deps.config.publicUrl,
        ),
      );
    }
    // The same answer whether or not the address has an account: the page tells nobody who is a customer.
    return face.page(req, reply, 'reset-request', { title: 'Reset your password', sent: true });
  });

  async function openReset(token: string) {
    if (token.length > 100) return undefined;
    const row = await findPasswordReset(db, hashSecret(token));
    if (!row || row.used_at !== null || Date.parse(row.expires_at) <= cd.clock.now()) return undefined;
    return row;
  }

  scope.get('/password-reset/:token', async (req, reply) => {
    const { token } = req.params as { token: string };
    const row = await openReset(token);
    return face.page(req, reply, 'reset-confirm', {
      title: 'Choose a new password',
      valid: !!row,
      token,
      error: '',
    });
  });

  scope.post('/password-reset/:token', async (req, reply) => {
    const { token } = req.params as { token: string };
    const row = await openReset(token);
    if (!row)
      return face.page(
        req,
        reply,
        'reset-confirm',
        { title: 'Choose a new password', valid: false, token, error: '' },
        400,
      );
    const password = formOf(req).raw('password', 200);
    if (password.length < minPassword) {
      return face.page(
        req,
        reply,
        'reset-confirm',
        {
          title: 'Choose a new password',
          valid: true,
          token,
          error: `The password needs at least ${minPassword} characters.`,
        },
        400,
      );
    }
    if (!(await usePasswordReset(db, row.token_hash, isoNow(cd.clock)))) {
      return face.page(
        req,
        reply,
        'reset-confirm',
        { title: 'Choose a new password', valid: false, token, error: '' },
        400,
      );
    }
    const user = await getUser(db, row.user_id);
    await updateUser(cd, { type: 'developer', id: user.id }, user.id, { password });
    // Whoever knew the old password is signed out everywhere.
    await face.sessions.endAllOf(user.id);
    await face.sessions.start(req, reply, user.id);
    throw new Redirect('/apps');
  });

  // single sign-on (customer mode)

  scope.get('/sso', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const secret = await webKey(db, cd.clock, 'sso');
    const verdict = verifySsoToken(secret, q.token ?? '', cd.clock.now());
    const refuse = () => {
      throw new TrellisError(
        'forbidden',
        'This sign-in link is not valid or has expired; start again from where you came from.',
      );
    };
    if (!verdict.ok) return refuse();
    await deleteExpiredSsoTokens(db, isoNow(cd.clock));
    const fresh = await useSsoToken(
      db,
      hashSecret(q.token ?? ''),
      new Date(verdict.exp * 1000).toISOString(),
    );
    if (!fresh) return refuse();
    const user = await findUserByEmailAddress(db, verdict.email);
    if (!user) return refuse();
    const account = await getAccount(db, user.accountId);
    if (account.state === 'suspended') return refuse();
    await face.sessions.start(req, reply, user.id);
    throw new Redirect(safeNext(q.return_to, '/apps'));
  });

  // invitations

  scope.get('/invitations/:token', async (req, reply) => {
    const { token } = req.params as { token: string };
    const invitation = token.length <= 100 ? await findOpenInvitation(db, cd.clock, token) : undefined;
    const userFields = await listCustomFields(db, 'user');
    return face.page(req, reply, 'invitation', {
      title: 'Join your team',
      invitation,
      token,
      userFields,
      values: {},
      problems: [],
    });
  });

  scope.post('/invitations/:token', async (req, reply) => {
    const { token } = req.params as { token: string };
    const form = formOf(req);
    const invitation = token.length <= 100 ? await findOpenInvitation(db, cd.clock, token) : undefined;
    const userFields = await listCustomFields(db, 'user');
    const password = form.raw('password', 200);
    const name = form.text('name', 200);
    const customFields = form.prefixed('ucf_');
    const values = {
      name,
      ...Object.fromEntries(Object.entries(customFields).map(([k, v]) => [`ucf_${k}`, v])),
    };
    const again = (problems: { field: string; message: string }[]) =>
      face.page(
        req,
        reply,
        'invitation',
        { title: 'Join your team', invitation, token, userFields, values, problems },
        400,
      );
    const problems = [];
    if (!name) problems.push({ field: 'name', message: 'is required' });
    if (password.length < minPassword)
      problems.push({ field: 'password', message: `at least ${minPassword} characters` });
    if (!invitation || problems.length > 0) return again(problems);
    try {
      const user = await acceptInvitation(cd, systemActor, token, { name, password, customFields });
      await face.sessions.start(req, reply, user.id);
    } catch (err) {
      const shown = problemsOf(err);
      if (!shown) throw err;
      return again(shown);
    }
    throw new Redirect('/apps');
  });
}
