/**
 * What a POST hands to the page it redirects to (POST → redirect → GET, issue 13): a reload of that page never
 * repeats the POST. A secret shown once (a new key) travels in a short-lived cookie sealed with AES-256-GCM
 * under a key derived from the face's `csrf` web key, bound to the session (additional data), scoped to the one
 * page's path, and cleared the first time that page reads it — so the key is shown once, as before.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import { webKey } from './web-keys.js';
import { isSecure } from './web-sessions.js';

export const flashCookie = 'trellis_flash';
/** Long enough for the redirect, short enough that a forgotten cookie is soon useless. */
const flashLifetimeSeconds = 60;

export interface Flash {
  notice?: string;
  secret?: string;
  /** the section of the page the notice belongs to (the console's service page) */
  place?: string;
}

export interface FlashDeps {
  db: Executor;
  clock: Clock;
  publicUrl: string;
}

async function flashKey(deps: FlashDeps): Promise<Buffer> {
  return createHmac('sha256', await webKey(deps.db, deps.clock, 'csrf'))
    .update('trellis flash v1')
    .digest();
}

/** Sets the flash for `path` (the page the POST redirects to), bound to the session `sessionHash`. */
export async function setFlash(
  deps: FlashDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  path: string,
  sessionHash: string,
  flash: Flash,
): Promise<void> {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', await flashKey(deps), iv);
  cipher.setAAD(Buffer.from(`${sessionHash}|${path}`));
  const body = Buffer.concat([cipher.update(JSON.stringify(flash), 'utf8'), cipher.final()]);
  const value = Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  reply.setCookie(flashCookie, value, {
    path,
    httpOnly: true,
    sameSite: 'lax',
    secure: isSecure(req, deps.publicUrl),
    maxAge: flashLifetimeSeconds,
  });
}

/** Reads and clears the flash of this page; empty when there is none or it does not open. */
export async function takeFlash(
  deps: FlashDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  path: string,
  sessionHash: string,
): Promise<Flash> {
  const raw = req.cookies[flashCookie];
  if (!raw) return {};
  reply.clearCookie(flashCookie, { path });
  try {
    const bytes = Buffer.from(raw, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', await flashKey(deps), bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(12, 28));
    decipher.setAAD(Buffer.from(`${sessionHash}|${path}`));
    const text = Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
    const parsed = JSON.parse(text) as Flash;
    return {
      ...(typeof parsed.notice === 'string' && { notice: parsed.notice }),
      ...(typeof parsed.secret === 'string' && { secret: parsed.secret }),
      ...(typeof parsed.place === 'string' && { place: parsed.place }),
    };
  } catch {
    // a cookie that does not open (another session's, tampered, an old key) shows nothing
    return {};
  }
}
