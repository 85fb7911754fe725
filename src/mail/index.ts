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
