import { isIP } from 'node:net';

/**
 * IP addresses and CIDR ranges, IPv4 and IPv6: the one parser behind applications' allowlists and the trusted
 * proxies. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, how a dual-stack socket reports IPv4 clients) are
 * compared as IPv4.
 */
export interface IpRanges {
  /** Whether the address (any textual form Node reports) lies in one of the ranges. */
  contains(address: string): boolean;
}

/** One parsed range: the address family, the network bits and the mask. */
export interface IpRange {
  version: 4 | 6;
  network: bigint;
  mask: bigint;
}

function ipv4ToBigInt(ip: string): bigint {
  let n = 0n;
  for (const part of ip.split('.')) n = (n << 8n) | BigInt(Number(part));
  return n;
}

function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  // a trailing dotted quad (::ffff:1.2.3.4) is two groups
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = ipv4ToBigInt(tail);
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headGroups.length - restGroups.length;
  const groups =
    rest === undefined ? headGroups : [...headGroups, ...Array(missing).fill('0'), ...restGroups];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(Number.parseInt(g, 16));
  return n;
}

/** `::ffff:a.b.c.d` → `a.b.c.d`; other addresses unchanged. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * Parses `10.0.0.0/8`, `192.168.1.7`, `2001:db8::/32` or `::1`; `null` for anything else (a prefix length must be
 * 0–32 or 0–128 in decimal digits).
 * @example parseIpRange('10.0.0.0/8') // { version: 4, network: 167772160n, mask: 4278190080n }
 */
export function parseIpRange(entry: string): IpRange | null {
  const [ip = '', bitsText, extra] = entry.trim().toLowerCase().split('/');
  if (extra !== undefined) return null;
  const addr = normalizeAddress(ip);
  const family = isIP(addr);
  if (family === 0 || addr.includes('%')) return null;
  const version = family === 4 ? 4 : 6;
  const width = version === 4 ? 32 : 128;
  if (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText)) return null;
  const bits = bitsText === undefined ? width : Number(bitsText);
  if (bits > width) return null;
  const all = (1n << BigInt(width)) - 1n;
  const mask = bits === 0 ? 0n : (all << BigInt(width - bits)) & all;
  const value = version === 4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr);
  return { version, network: value & mask, mask };
}

/** An IPv4 address as an unsigned 32-bit number (the address is known to be valid IPv4). */
function ipv4ToNumber(ip: string): number {
  let n = 0;
  let part = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + part;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  return n * 256 + part;
}

/**
 * Compiles ranges; entries that do not parse are left out (they can never match). IPv4 is compared as numbers
 * (no BigInt on the hot path), IPv6 as 128-bit BigInts.
 * @example compileIpRanges(['10.0.0.0/8', '2001:db8::/32']).contains('10.1.2.3') // true
 */
export function compileIpRanges(entries: readonly string[]): IpRanges {
  const ranges = entries.map(parseIpRange).filter((r): r is IpRange => r !== null);
  const v4 = ranges
    .filter((r) => r.version === 4)
    .map((r) => ({ network: Number(r.network), mask: Number(r.mask) }));
  const v6 = ranges.filter((r) => r.version === 6);
  return {
    contains(address: string): boolean {
      const addr = normalizeAddress(address);
      const version = isIP(addr);
      if (version === 4) {
        const value = ipv4ToNumber(addr);
        for (const r of v4) {
          // >>> 0 keeps the bitwise AND unsigned
          if ((value & r.mask) >>> 0 === r.network) return true;
        }
        return false;
      }
      if (version === 0 || addr.includes('%') || v6.length === 0) return false;
      const value = ipv6ToBigInt(addr);
      for (const r of v6) {
        if ((value & r.mask) === r.network) return true;
      }
      return false;
    },
  };
}
