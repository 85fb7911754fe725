/**
 * The mail outbox: without SMTP mails are kept for the console; with SMTP they are sent (here to a minimal SMTP
 * server on the loopback address) and marked sent, or marked failed with the reason.
 */
import { type Server, type Socket, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/kernel/index.js';
import { createMailer, listMail } from '../../src/mail/index.js';
import { type TestStore, freshStore } from '../support/stores.js';

/** Just enough SMTP (RFC 5321) to accept one message per connection; no TLS, no AUTH. */
function startSmtp(received: string[]): Promise<Server> {
  const server = createServer((socket: Socket) => {
    let buffer = '';
    let inData = false;
    let message = '';
    socket.write('220 test ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let i = buffer.indexOf('\r\n');
      while (i >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            received.push(message);
            socket.write('250 queued\r\n');
          } else message += `${line}\n`;
        } else if (/^(EHLO|HELO)/i.test(line)) socket.write('250 test\r\n');
        else if (/^DATA/i.test(line)) {
          inData = true;
          message = '';
          socket.write('354 go on\r\n');
        } else if (/^QUIT/i.test(line)) socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
        i = buffer.indexOf('\r\n');
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('mail outbox', () => {
  let store: TestStore;
  const clock = new ManualClock();
  beforeAll(async () => {
    store = await freshStore('sqlite');
  });
  afterAll(() => store.cleanup());

  it('keeps mails in the outbox when no SMTP server is configured', async () => {
    const mailer = createMailer({ db: store.db, clock, smtpUrl: '', from: 'portal@localhost' });
    const mail = await mailer.send({ to: 'Kept@Example.test', subject: 'Hello', text: 'Body' });
    expect(mail.state).toBe('kept');
    expect((await listMail(store.db, { to: 'kept@example.test' }))[0]).toMatchObject({
      subject: 'Hello',
      text: 'Body',
    });
  });

  it('sends by SMTP and marks the mail sent', async () => {
    const received: string[] = [];
    const smtp = await startSmtp(received);
    const port = (smtp.address() as AddressInfo).port;
    const mailer = createMailer({
      db: store.db,
      clock,
      smtpUrl: `smtp://127.0.0.1:${port}/?ignoreTLS=true`,
      from: 'portal@provider.test',
    });
    const queued = await mailer.send({
      to: 'sent@example.test',
      subject: 'Reset',
      text: 'Your link: https://x/1',
    });
    expect(queued.state).toBe('queued');
    await mailer.settled();
    smtp.close();
    expect(received).toHaveLength(1);
    expect(received[0]).toContain('Subject: Reset');
    expect(received[0]).toContain('Your link: https://x/1');
    expect((await listMail(store.db, { to: 'sent@example.test' }))[0]).toMatchObject({
      state: 'sent',
      attempts: 1,
    });
  });

  it('marks a mail failed with the reason when the transport refuses it', async () => {
    const mailer = createMailer({
      db: store.db,
      clock,
      smtpUrl: '',
      from: 'portal@provider.test',
      transport: {
        send: async () => {
          throw new Error('550 mailbox unavailable');
        },
      },
    });
    await mailer.send({ to: 'failed@example.test', subject: 'S', text: 'T' });
    await mailer.settled();
    expect((await listMail(store.db, { to: 'failed@example.test' }))[0]).toMatchObject({
      state: 'failed',
      lastError: '550 mailbox unavailable',
    });
  });
});
