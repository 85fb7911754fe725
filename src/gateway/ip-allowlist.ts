import { compileIpRanges, normalizeAddress } from '../kernel/ip-ranges.js';

export { normalizeAddress };

/**
 * Allowed client addresses of an application: single IPs and CIDR ranges, IPv4 and IPv6, parsed by the kernel's
 * one parser (`kernel/ip-ranges.ts`, which the trusted proxies use too).
 */
export interface IpAllowlist {
  allows(address: string): boolean;
}

/**
 * Compiles an application's `allowed_ips`; `null` when the list is empty (any address is allowed).
 * Entries that do not parse are ignored rather than opening the application: they can never match.
 * @example compileAllowlist(['10.0.0.0/8', '2001:db8::/32'])?.allows('10.1.2.3') // true
 */
export function compileAllowlist(entries: readonly string[]): IpAllowlist | null {
  if (entries.length === 0) return null;
  const ranges = compileIpRanges(entries);
  return { allows: (address) => ranges.contains(address) };
}
