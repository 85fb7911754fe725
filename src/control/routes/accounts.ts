/** Management API: developer accounts, their users and invitations, and signup express. */
import { Type as T } from '@sinclair/typebox';
import * as access from '../../access/index.js';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  ListOf,
  PageOf,
  Pagination,
  actorOf,
  changeDeps,
  errorResponses,
} from '../context.js';

const tags = ['Accounts and users'];
const AccountParams = Id('account id');
const ChildParams = T.Object({ id: T.String({ maxLength: 64 }), childId: T.String({ maxLength: 64 }) });

export function accountRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.post('/signup', {
    schema: {
      tags: ['Signup express'],
      summary: 'Create an account, its first user and an application in one call',
      description:
        "How a provider gives every customer API access from its own sign-up code. The application's secret is in the response, once.",
      body: access.SignupExpress,
      response: { 201: access.SignupExpressResult, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await access.signupExpress(cd, actorOf(req), req.body)),
  });

  app.get('/accounts', {
    schema: {
      tags,
      summary: 'List accounts',
      querystring: T.Composite([
        Pagination,
        T.Object({
          state: T.Optional(access.AccountState),
          q: T.Optional(T.String({ maxLength: 200, description: 'name contains' })),
        }),
      ]),
      response: { 200: PageOf(access.Account), ...errorResponses },
    },
    handler: (req) => {
      const { limit, cursor, state, q } = req.query;
      return access.listAccounts(db, { ...(state && { state }), ...(q && { q }) }, { limit, cursor });
    },
  });

  app.post('/accounts', {
    schema: {
      tags,
      summary: 'Create an account',
      body: access.AccountCreate,
      response: { 201: access.Account, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await access.createAccount(cd, actorOf(req), req.body)),
  });

  app.get('/accounts/:id', {
    schema: {
      tags,
      summary: 'Get an account',
      params: AccountParams,
      response: { 200: access.Account, ...errorResponses },
    },
    handler: (req) => access.getAccount(db, req.params.id),
  });

  app.patch('/accounts/:id', {
    schema: {
      tags,
      summary: 'Update an account',
      params: AccountParams,
      body: access.AccountUpdate,
      response: { 200: access.Account, ...errorResponses },
    },
    handler: (req) => access.updateAccount(cd, actorOf(req), req.params.id, req.body),
  });

  app.delete('/accounts/:id', {
    schema: {
      tags,
      summary: 'Delete an account with its users and applications',
      params: AccountParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await access.deleteAccount(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  for (const action of ['approve', 'suspend', 'resume'] as const) {
    app.post(`/accounts/:id/${action}`, {
      schema: {
        tags,
        summary: `${action[0]!.toUpperCase()}${action.slice(1)} an account`,
        params: AccountParams,
        response: { 200: access.Account, ...errorResponses },
      },
      handler: (req) => access.transitionAccount(cd, actorOf(req), req.params.id, action),
    });
  }

  app.get('/accounts/:id/users', {
    schema: {
      tags,
      summary: 'List the users of an account',
      params: AccountParams,
      response: { 200: ListOf(access.User), ...errorResponses },
    },
    handler: async (req) => ({ data: await access.listUsers(db, req.params.id) }),
  });

  app.post('/accounts/:id/users', {
    schema: {
      tags,
      summary: 'Create a user in an account',
      params: AccountParams,
      body: access.UserCreate,
      response: { 201: access.User, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await access.createUser(cd, actorOf(req), req.params.id, req.body)),
  });

  app.get('/users/:id', {
    schema: {
      tags,
      summary: 'Get a user',
      params: Id('user id'),
      response: { 200: access.User, ...errorResponses },
    },
    handler: (req) => access.getUser(db, req.params.id),
  });

  app.patch('/users/:id', {
    schema: {
      tags,
      summary: 'Update a user',
      params: Id('user id'),
      body: access.UserUpdate,
      response: { 200: access.User, ...errorResponses },
    },
    handler: (req) => access.updateUser(cd, actorOf(req), req.params.id, req.body),
  });

  app.delete('/users/:id', {
    schema: {
      tags,
      summary: 'Delete a user (an account keeps at least one admin)',
      params: Id('user id'),
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await access.deleteUser(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  app.get('/accounts/:id/invitations', {
    schema: {
      tags,
      summary: 'List invitations of an account',
      params: AccountParams,
      response: { 200: ListOf(access.Invitation), ...errorResponses },
    },
    handler: async (req) => ({ data: await access.listInvitations(db, req.params.id) }),
  });

  app.post('/accounts/:id/invitations', {
    schema: {
      tags,
      summary: 'Invite someone to an account (the token is returned once)',
      params: AccountParams,
      body: access.InvitationCreate,
      response: { 201: access.CreatedInvitation, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await access.createInvitation(cd, actorOf(req), req.params.id, req.body)),
  });

  app.post('/invitations/accept', {
    schema: {
      tags,
      summary: 'Accept an invitation for the invitee: creates the user, with the user custom fields',
      description:
        "For providers whose own product collects the invitee's details (required user custom fields included).",
      body: access.InvitationAccept,
      response: { 201: access.User, ...errorResponses },
    },
    handler: async (req, reply) => {
      const { token, name, password, customFields } = req.body;
      const user = await access.acceptInvitation(cd, actorOf(req), token, {
        name,
        password,
        ...(customFields && { customFields }),
      });
      return reply.status(201).send(user);
    },
  });

  app.delete('/accounts/:id/invitations/:childId', {
    schema: {
      tags,
      summary: 'Withdraw an invitation',
      params: ChildParams,
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await access.deleteInvitation(cd, actorOf(req), req.params.id, req.params.childId);
      return reply.status(204).send(null);
    },
  });
}
