/** Mail: an outbox every message goes through, and an SMTP transport when one is configured. */
export {
  createMailer,
  listMail,
  type Mailer,
  type MailerOptions,
  type MailMessage,
  type MailTransport,
  smtpTransport,
} from './mailer.js';
export type { OutboxMail } from './mail.store.js';
export {
  composeMail,
  getMailTemplate,
  listMailTemplates,
  mailTemplateDefinitions,
  previewMailTemplate,
  resetMailTemplate,
  saveMailTemplate,
} from './mail-templates.js';
export * from './schemas.js';
export { mailAdminRoutes } from './admin-routes.js';
export { createMailNotifier, type MailNotifier, type MailNotifierDeps } from './mail-notifications.js';
