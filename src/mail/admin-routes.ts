/** Management API of the e-mail templates (issue 13): list, read, write (checked), preview, reset to default. */
import { Type as T } from '@sinclair/typebox';
import {
  type ControlApp,
  type ControlDeps,
  ListOf,
  actorOf,
  changeDeps,
  errorResponses,
} from '../control/index.js';
import {
  getMailTemplate,
  listMailTemplates,
  previewMailTemplate,
  resetMailTemplate,
  saveMailTemplate,
} from './mail-templates.js';
import {
  MailPreview,
  MailTemplate,
  MailTemplateKey,
  MailTemplatePreviewInput,
  MailTemplateWrite,
} from './schemas.js';

const tags = ['Mail templates'];
const Params = T.Object({ key: MailTemplateKey });

export function mailAdminRoutes(app: ControlApp, deps: ControlDeps): void {
  const db = deps.store.db;
  const cd = changeDeps(deps);

  app.get('/mail-templates', {
    schema: {
      tags,
      summary: 'List the e-mail templates: every mail Trellis sends, with its variables',
      response: { 200: ListOf(MailTemplate), ...errorResponses },
    },
    handler: async () => ({ data: await listMailTemplates(db) }),
  });

  app.get('/mail-templates/:key', {
    schema: {
      tags,
      summary: 'Get an e-mail template (the provider’s version, or the default)',
      params: Params,
      response: { 200: MailTemplate, ...errorResponses },
    },
    handler: (req) => getMailTemplate(db, req.params.key),
  });

  app.put('/mail-templates/:key', {
    schema: {
      tags,
      summary:
        'Write an e-mail template: `{{name}}` names a variable of the template; an unknown variable or an unclosed `{{` is refused (400) naming it',
      params: Params,
      body: MailTemplateWrite,
      response: { 200: MailTemplate, ...errorResponses },
    },
    handler: (req) => saveMailTemplate(cd, actorOf(req), req.params.key, req.body),
  });

  app.delete('/mail-templates/:key', {
    schema: {
      tags,
      summary: 'Reset an e-mail template to the default Trellis ships',
      params: Params,
      response: { 200: MailTemplate, ...errorResponses },
    },
    handler: (req) => resetMailTemplate(cd, actorOf(req), req.params.key),
  });

  app.post('/mail-templates/:key/preview', {
    schema: {
      tags,
      summary:
        'The mail a template makes with sample values: the saved template, or the subject and body given (not saved)',
      params: Params,
      body: MailTemplatePreviewInput,
      response: { 200: MailPreview, ...errorResponses },
    },
    handler: (req) => previewMailTemplate(db, req.params.key, req.body),
  });
}
