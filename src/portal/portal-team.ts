/** The team of an account: members and invitations. Everyone sees the team; only admins change it. */
import type { FastifyInstance } from 'fastify';
import {
  createInvitation,
  deleteInvitation,
  deleteUser,
  getUser,
  listInvitations,
  listUsers,
  updateUser,
} from '../access/index.js';
import { TrellisError, invalid, notFound } from '../kernel/index.js';
import { composeMail } from '../mail/index.js';
import { type Developer, type PortalFace, developerActor, requireAccountAdmin } from './portal-face.js';
import { setFlash, takeFlash } from './flash.js';
import { Redirect, formOf, problemsOf } from './web-pages.js';

export function teamRoutes(scope: FastifyInstance, face: PortalFace): void {
  const { db, cd } = face;

  async function teamView(
    me: Developer,
    extra: { problems?: { field: string; message: string }[]; notice?: string },
  ) {
    const [members, invitations] = await Promise.all([
      listUsers(db, me.account.id),
      listInvitations(db, me.account.id),
    ]);
    return {
      title: 'Team',
      members,
      invitations: invitations.filter((i) => i.acceptedAt === null),
      problems: extra.problems ?? [],
      notice: extra.notice ?? '',
    };
  }

  /** A member of the developer's own account; anyone else is "not found". */
  async function ownMember(me: Developer, id: string) {
    const user = await getUser(db, id).catch(() => undefined);
    if (!user || user.accountId !== me.account.id) throw notFound('member', id);
    return user;
  }

  const flashDeps = { db: face.db, clock: face.cd.clock, publicUrl: face.deps.config.publicUrl };

  scope.get('/team', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const flash = await takeFlash(flashDeps, req, reply, '/team', me.session.tokenHash);
    return face.page(
      req,
      reply,
      'team',
      await teamView(me, { ...(flash.notice && { notice: flash.notice }) }),
    );
  });

  scope.post('/team/invitations', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    requireAccountAdmin(me);
    const form = formOf(req);
    const email = form.text('email', 320);
    const role = form.text('role', 10) === 'admin' ? 'admin' : 'member';
    try {
      if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
        throw invalid([{ field: 'email', message: 'an e-mail address is required' }]);
      }
      const invitation = await createInvitation(cd, developerActor(me), me.account.id, { email, role });
      await face.mailer.send(
        await composeMail(
          face.db,
          'invitation',
          invitation.email,
          {
            inviterName: me.user.name,
            accountName: me.account.name,
            email: invitation.email,
            role,
            acceptUrl: `${face.deps.config.publicUrl}/invitations/${invitation.token}`,
          },
          face.deps.config.publicUrl,
        ),
      );
      // POST → redirect → GET: a reload never sends a second invitation (issue 13)
      await setFlash(flashDeps, req, reply, '/team', me.session.tokenHash, {
        notice: `Invitation sent to ${invitation.email}.`,
      });
      throw new Redirect('/team');
    } catch (err) {
      const conflict = err instanceof TrellisError && err.code === 'conflict';
      const problems = problemsOf(err) ?? (conflict ? [{ field: 'email', message: err.message }] : undefined);
      if (!problems) throw err;
      return face.page(req, reply, 'team', await teamView(me, { problems }), 400);
    }
  });

  scope.post('/team/invitations/:id/delete', async (req) => {
    const me = await face.requireDeveloper(req);
    requireAccountAdmin(me);
    // deleteInvitation checks the invitation belongs to this account.
    await deleteInvitation(cd, developerActor(me), me.account.id, (req.params as { id: string }).id);
    throw new Redirect('/team');
  });

  scope.post('/team/members/:id/role', async (req) => {
    const me = await face.requireDeveloper(req);
    requireAccountAdmin(me);
    const user = await ownMember(me, (req.params as { id: string }).id);
    const role = formOf(req).text('role', 10) === 'admin' ? 'admin' : 'member';
    await updateUser(cd, developerActor(me), user.id, { role });
    throw new Redirect('/team');
  });

  scope.post('/team/members/:id/delete', async (req) => {
    const me = await face.requireDeveloper(req);
    requireAccountAdmin(me);
    const user = await ownMember(me, (req.params as { id: string }).id);
    await deleteUser(cd, developerActor(me), user.id);
    await face.sessions.endAllOf(user.id);
    throw new Redirect(user.id === me.user.id ? '/' : '/team');
  });
}
