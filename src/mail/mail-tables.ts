/** Table types of the mail outbox (migration 0003_portal), joined to the store's `Database` with `withTables`. */

export interface MailOutboxTable {
  id: string;
  to_address: string;
  subject: string;
  text_body: string;
  /** kept (no SMTP: shown in the console) | queued | sent | failed */
  state: string;
  attempts: number;
  last_error: string | null;
  created_at: string;
  sent_at: string | null;
}

export type MailTables = { mail_outbox: MailOutboxTable };

/** A template the provider changed from its default (migration 0019_portal_brand); no row: the default. */
export interface MailTemplateTable {
  key: string;
  subject: string;
  body: string;
  updated_at: string;
}

export type MailTemplateTables = { mail_templates: MailTemplateTable };
