/**
 * The client address on the control server (portal, console, OAuth, management API): `request.clientIp`, by the
 * one rule of `kernel/client-address.ts` — the socket's peer, or behind a trusted proxy (`TRELLIS_TRUSTED_PROXIES`)
 * the first untrusted hop of `X-Forwarded-For`. Fastify is given the same trust (its `trustProxy`), so
 * `request.ip`, `request.protocol` and `request.host` believe the same proxies; `request.clientIp` is the one to
 * use, because it also stops at a malformed `X-Forwarded-For` entry where fastify would take the entry itself.
 */
import type { FastifyInstance } from 'fastify';
import { type TrustedProxies, clientAddress } from '../kernel/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling (see `src/control/client-ip.ts`). */
    readonly clientIp: string;
  }
}

/** Fastify's `trustProxy` for the trusted proxies: nothing when there are none. */
export function trustProxyOption(trusted: TrustedProxies | null): false | ((address: string) => boolean) {
  return trusted === null ? false : (address) => trusted.trusts(address);
}

/** Adds `request.clientIp` (computed when read). */
export function installClientIp(app: FastifyInstance, trusted: TrustedProxies | null): void {
  app.decorateRequest('clientIp', {
    getter() {
      return clientAddress(this.raw.socket?.remoteAddress, this.headers['x-forwarded-for'], trusted);
    },
  });
}
