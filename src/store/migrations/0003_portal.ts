import type { Kysely } from 'kysely';

/**
 * The tables of the HTTP faces for people (developer portal, admin console) and of mail: browser sessions,
 * password resets, login attempts (for throttling), used single sign-on tokens (so each works once), the keys
 * the faces sign with, and the mail outbox. Table types: src/portal/portal-tables.ts and src/mail/mail-tables.ts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const ts = 'varchar(32)';
  const hash = 'varchar(64)';

  // A session is found by the SHA-256 of its cookie value: a copy of the table gives no usable cookie.
  await db.schema
    .createTable('web_sessions')
    .addColumn('token_hash', hash, (c) => c.primaryKey())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('subject_id', 'varchar(40)', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('last_seen_at', ts, (c) => c.notNull())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('web_sessions_subject').on('web_sessions').columns(['subject_id']).execute();

  await db.schema
    .createTable('password_resets')
    .addColumn('token_hash', hash, (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(40)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .addColumn('used_at', ts)
    .execute();

  await db.schema
    .createTable('login_attempts')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('key', 'varchar(400)', (c) => c.notNull())
    .addColumn('at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('login_attempts_key_at').on('login_attempts').columns(['key', 'at']).execute();

  await db.schema
    .createTable('sso_tokens_used')
    .addColumn('token_hash', hash, (c) => c.primaryKey())
    .addColumn('expires_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('web_keys')
    .addColumn('name', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('value', 'varchar(200)', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('mail_outbox')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('to_address', 'varchar(320)', (c) => c.notNull())
    .addColumn('subject', 'varchar(500)', (c) => c.notNull())
    .addColumn('text_body', 'text', (c) => c.notNull())
    // kept: no SMTP configured, shown in the console; queued → sent | failed when SMTP is configured
    .addColumn('state', 'varchar(10)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('last_error', 'varchar(1000)')
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('sent_at', ts)
    .execute();
  await db.schema.createIndex('mail_outbox_created').on('mail_outbox').columns(['created_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'mail_outbox',
    'web_keys',
    'sso_tokens_used',
    'login_attempts',
    'password_resets',
    'web_sessions',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
