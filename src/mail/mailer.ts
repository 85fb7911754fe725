/**
 * Mail: every message is first written to the outbox, so none is lost and the console can show it. With an SMTP
 * URL configured it is then sent (after the request that caused it has been answered); without one it stays
 * `kept` in the outbox, which is how a newcomer running `trellis start` still gets a password reset link.
 */
import nodemailer from 'nodemailer';
import { type Clock, isoNow, newId } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import { type OutboxMail, findMail, insertMail, listMailRows, markMail } from './mail.store.js';
import { composeMail } from './mail-templates.js';
import type { MailTemplateKey } from './schemas.js';

export interface MailMessage {
  to: string;
  subject: string;
  /** Plain text: links in it are the only thing a recipient needs. */
  text: string;
  /** The sender, when not the mailer's default (the portal settings' sender address). */
  from?: string;
}

/** The narrow seam between the outbox and the wire; tests pass their own. */
export interface MailTransport {
  send(message: MailMessage & { from: string }): Promise<void>;
}

export interface MailerOptions {
  db: Executor;
  clock: Clock;
  /** `smtp://user:pass@host:587` (or `smtps://`); empty keeps mails in the outbox. */
  smtpUrl: string;
  /** The sender address (when the portal settings name none). */
  from: string;
  /** The portal's address, the `{{portalUrl}}` of the mails `sendTemplate` writes (default: empty). */
  portalUrl?: string;
  /** Overrides the SMTP transport (tests). */
  transport?: MailTransport;
}

export interface Mailer {
  /** Writes the mail to the outbox and, when a transport exists, sends it in the background. */
  send(message: MailMessage): Promise<OutboxMail>;
  /**
   * Writes one template's mail (the provider's text, or the default; the portal's name, sender and contact from
   * the portal settings) and sends it like `send`.
   */
  sendTemplate(key: MailTemplateKey, to: string, values: Record<string, string>): Promise<OutboxMail>;
  /** Resolves when every send started so far has finished (tests, shutdown). */
  settled(): Promise<void>;
}

/** An SMTP transport over nodemailer. */
export function smtpTransport(smtpUrl: string): MailTransport {
  const transporter = nodemailer.createTransport(smtpUrl);
  return {
    async send(message) {
      await transporter.sendMail({
        from: message.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
      });
    },
  };
}

/**
 * @example const mailer = createMailer({ db, clock, smtpUrl: config.smtpUrl, from: 'portal@example.com' })
 *          await mailer.send({ to, subject: 'Reset your password', text })
 */
export function createMailer(options: MailerOptions): Mailer {
  const transport = options.transport ?? (options.smtpUrl ? smtpTransport(options.smtpUrl) : undefined);
  const pending = new Set<Promise<void>>();

  async function deliver(mail: OutboxMail, from: string): Promise<void> {
    if (!transport) return;
    try {
      await transport.send({ to: mail.to, subject: mail.subject, text: mail.text, from });
      await markMail(options.db, mail.id, {
        state: 'sent',
        attempts: mail.attempts + 1,
        last_error: null,
        sent_at: isoNow(options.clock),
      });
    } catch (err) {
      // The message (not the stack) is kept so the console can say why a mail did not leave.
      await markMail(options.db, mail.id, {
        state: 'failed',
        attempts: mail.attempts + 1,
        last_error: String((err as Error).message ?? err).slice(0, 1000),
        sent_at: null,
      }).catch(() => {});
    }
  }

  const mailer: Mailer = {
    async send(message) {
      const id = newId('mail', options.clock.now());
      await insertMail(options.db, {
        id,
        to_address: message.to.toLowerCase(),
        subject: message.subject.slice(0, 500),
        text_body: message.text,
        state: transport ? 'queued' : 'kept',
        attempts: 0,
        last_error: null,
        created_at: isoNow(options.clock),
        sent_at: null,
      });
      const mail = (await findMail(options.db, id))!;
      if (transport) {
        const p = deliver(mail, message.from ?? options.from).finally(() => pending.delete(p));
        pending.add(p);
      }
      return mail;
    },
    async sendTemplate(key, to, values) {
      return mailer.send(await composeMail(options.db, key, to, values, options.portalUrl ?? ''));
    },
    async settled() {
      await Promise.all([...pending]);
    },
  };
  return mailer;
}

/** The outbox, newest first (the console's mail page; tests read reset links from it). */
export function listMail(db: Executor, filter: { to?: string; limit?: number } = {}): Promise<OutboxMail[]> {
  return listMailRows(db, { ...(filter.to && { to: filter.to }), limit: filter.limit ?? 100 });
}
