/** Management API of the provider's content pages and partner showcase (issue 13). */
import { Type as T } from '@sinclair/typebox';
import {
  type ControlApp,
  type ControlDeps,
  Id,
  ListOf,
  actorOf,
  changeDeps,
  errorResponses,
} from '../control/index.js';
import {
  ContentPage,
  ContentPageCreate,
  ContentPageUpdate,
  ShowcaseEntry,
  ShowcaseWrite,
} from './brand-schemas.js';
import {
  createContentPage,
  deleteContentPage,
  getContentPage,
  listContentPages,
  updateContentPage,
} from './content-pages.js';
import { deleteFavicon, maxFaviconBytes, setFavicon } from './favicon.js';
import { deleteShowcaseEntry, getShowcaseEntry, listShowcase, writeShowcaseEntry } from './showcase.js';

const pageTags = ['Content pages'];
const showcaseTags = ['Showcase'];

export function brandAdminRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.get('/content-pages', {
    schema: {
      tags: pageTags,
      summary: 'List the portal’s content pages, in navigation order',
      response: { 200: ListOf(ContentPage), ...errorResponses },
    },
    handler: async () => ({ data: await listContentPages(db) }),
  });
  app.post('/content-pages', {
    schema: {
      tags: pageTags,
      summary:
        'Write a content page in Markdown (slug `index`: the front page); links must be http(s), mailto or a path',
      body: ContentPageCreate,
      response: { 201: ContentPage, ...errorResponses },
    },
    handler: async (req, reply) =>
      reply.status(201).send(await createContentPage(cd, actorOf(req), req.body)),
  });
  app.get('/content-pages/:id', {
    schema: {
      tags: pageTags,
      summary: 'Get a content page',
      params: Id('content page id'),
      response: { 200: ContentPage, ...errorResponses },
    },
    handler: (req) => getContentPage(db, req.params.id),
  });
  app.patch('/content-pages/:id', {
    schema: {
      tags: pageTags,
      summary: 'Update a content page',
      params: Id('content page id'),
      body: ContentPageUpdate,
      response: { 200: ContentPage, ...errorResponses },
    },
    handler: (req) => updateContentPage(cd, actorOf(req), req.params.id, req.body),
  });
  app.delete('/content-pages/:id', {
    schema: {
      tags: pageTags,
      summary: 'Delete a content page',
      params: Id('content page id'),
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await deleteContentPage(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  app.get('/showcase', {
    schema: {
      tags: showcaseTags,
      summary: 'List the showcase entries (shown: featured by the provider and consented to by the partner)',
      response: { 200: ListOf(ShowcaseEntry), ...errorResponses },
    },
    handler: async () => ({ data: await listShowcase(db) }),
  });
  app.get('/applications/:id/showcase', {
    schema: {
      tags: showcaseTags,
      summary: 'Get the showcase entry of an application',
      params: Id('application id'),
      response: { 200: ShowcaseEntry, ...errorResponses },
    },
    handler: (req) => getShowcaseEntry(db, req.params.id),
  });
  app.put('/applications/:id/showcase', {
    schema: {
      tags: showcaseTags,
      summary:
        'Feature an application on the "Success stories" page (shown once the partner consents in the portal)',
      params: Id('application id'),
      body: ShowcaseWrite,
      response: { 200: ShowcaseEntry, ...errorResponses },
    },
    handler: (req) => writeShowcaseEntry(cd, actorOf(req), req.params.id, req.body),
  });
  app.delete('/applications/:id/showcase', {
    schema: {
      tags: showcaseTags,
      summary: 'Remove an application’s showcase entry',
      params: Id('application id'),
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await deleteShowcaseEntry(cd, actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });

  const faviconTags = ['Portal settings'];
  app.put('/portal-settings/favicon', {
    schema: {
      tags: faviconTags,
      summary:
        'Upload the portal’s favicon, served at /favicon.ico: a PNG, ICO, GIF, JPEG or WebP image of at most 64 KiB, base64-encoded (415 for another type, 413 when larger)',
      body: T.Object(
        {
          image: T.String({
            minLength: 1,
            maxLength: Math.ceil(maxFaviconBytes / 3) * 4 + 8,
            description: 'base64',
          }),
        },
        { additionalProperties: false },
      ),
      response: {
        200: T.Object({ contentType: T.String(), size: T.Integer(), updatedAt: T.String() }),
        ...errorResponses,
      },
    },
    handler: (req) => setFavicon(cd, actorOf(req), Buffer.from(req.body.image, 'base64')),
  });
  app.delete('/portal-settings/favicon', {
    schema: {
      tags: faviconTags,
      summary: 'Remove the uploaded favicon (the settings’ favicon URL, or Trellis’s own, is served again)',
      response: { 204: T.Null(), ...errorResponses },
    },
    handler: async (req, reply) => {
      await deleteFavicon(cd, actorOf(req));
      return reply.status(204).send(null);
    },
  });
}
