import { isIP } from 'node:net';

/**
 * Allowed client addresses of an application: single IPs and CIDR ranges, IPv4 and IPv6. IPv4-mapped IPv6
 * addresses (`::ffff:10.0.0.1`, how a dual-stack socket reports IPv4 clients) are compared as IPv4.
 */
export interface IpAllowlist {
  allows(address: string): boolean;
}

interface Range {
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

function parseEntry(entry: string): Range | null {
  const [ip = '', bitsText] = entry.trim().split('/');
  const addr = normalizeAddress(ip);
  const family = isIP(addr);
  if (family === 0) return null;
  const version = family === 4 ? 4 : 6;
  const width = version === 4 ? 32 : 128;
  const bits = bitsText === undefined ? width : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > width) return null;
  const all = (1n << BigInt(width)) - 1n;
  const mask = bits === 0 ? 0n : (all << BigInt(width - bits)) & all;
  const value = version === 4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr);
  return { version, network: value & mask, mask };
}

/**
 * Compiles an application's `allowed_ips`; `null` when the list is empty (any address is allowed).
 * Entries that do not parse are ignored rather than opening the application: they can never match.
 * @example compileAllowlist(['10.0.0.0/8', '2001:db8::/32'])?.allows('10.1.2.3') // true
 */
export function compileAllowlist(entries: readonly string[]): IpAllowlist | null {
  if (entries.length === 0) return null;
  const ranges = entries.map(parseEntry).filter((r): r is Range => r !== null);
  return {
    allows(address: string): boolean {
      const addr = normalizeAddress(address);
      const version = isIP(addr);
      if (version === 0) return false;
      const value = version === 4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr);
      for (const r of ranges) {
        if (r.version === version && (value & r.mask) === r.network) return true;
      }
      return false;
    },
  };
}
