/**
 * Who is calling: the one rule for the client address, used by the gateway (allowlists, usage), the portal and the
 * console (login throttling). The socket's peer is the client unless it is a trusted proxy
 * (`TRELLIS_TRUSTED_PROXIES`); then `X-Forwarded-For` is read from the right, trusted proxies skipped, and the
 * first address not trusted is the client — the usual algorithm (Express's `trust proxy` with a list, nginx's
 * `real_ip_recursive`). Entries left of it were written by whoever the client is and decide nothing.
 */
import { isIP } from 'node:net';
import { compileIpRanges, normalizeAddress } from './ip-ranges.js';

/** The proxies whose `X-Forwarded-For` is believed. */
export interface TrustedProxies {
  trusts(address: string): boolean;
}

/**
 * Compiles the trusted proxies' CIDRs (validated by the config); `null` when there are none, so callers pay
 * nothing for the feature they do not use.
 * @example compileTrustedProxies(['10.0.0.0/8'])?.trusts('10.1.2.3') // true
 */
export function compileTrustedProxies(cidrs: readonly string[]): TrustedProxies | null {
  if (cidrs.length === 0) return null;
  const ranges = compileIpRanges(cidrs);
  return { trusts: (address) => ranges.contains(address) };
}

/**
 * One `X-Forwarded-For` entry as an address: `1.2.3.4`, `2001:db8::1`, or with a port as some proxies write them
 * (`1.2.3.4:443`, `[2001:db8::1]:443`); `null` for anything else (`unknown`, obfuscated RFC 7239 names, garbage).
 */
function forwardedEntry(raw: string): string | null {
  let text = raw.trim();
  if (text.length > 64) return null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return null;
    const after = text.slice(close + 1);
    if (after !== '' && !/^:\d{1,5}$/.test(after)) return null;
    text = text.slice(1, close);
  } else if (text.indexOf(':') !== -1 && text.indexOf(':') === text.lastIndexOf(':')) {
    // exactly one colon: IPv4 with a port
    const [host = '', port = ''] = text.split(':');
    if (!/^\d{1,5}$/.test(port)) return null;
    text = host;
  }
  const address = normalizeAddress(text.toLowerCase());
  return isIP(address) !== 0 && !address.includes('%') ? address : null;
}

/**
 * The client address of a request. `peer` is the socket's remote address, `forwardedFor` the `X-Forwarded-For`
 * header(s). A malformed entry stops the walk: the last good address (a trusted proxy) is the answer. Never throws.
 * @example clientAddress('10.0.0.1', '203.0.113.7, 10.0.0.2', compileTrustedProxies(['10.0.0.0/8'])) // '203.0.113.7'
 */
export function clientAddress(
  peer: string | undefined,
  forwardedFor: string | readonly string[] | undefined,
  trusted: TrustedProxies | null,
): string {
  const socket = normalizeAddress(peer ?? '');
  if (trusted === null || forwardedFor === undefined || !trusted.trusts(socket)) return socket;
  const header = typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(',');
  let current = socket;
  let end = header.length;
  for (;;) {
    const start = end === 0 ? -1 : header.lastIndexOf(',', end - 1);
    const address = forwardedEntry(header.slice(start + 1, end));
    if (address === null) return current;
    current = address;
    if (!trusted.trusts(address)) return address;
    if (start === -1) return current;
    end = start;
  }
}
