/**
 * Which network addresses Trellis refuses to fetch from on someone's behalf: anything that is not the public
 * internet (loopback, private, link-local, carrier-grade NAT, multicast, reserved, cloud metadata), in IPv4,
 * IPv6, and IPv4 embedded in IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`).
 * See RFC 6890 (special-purpose address registries) and the OWASP SSRF prevention cheat sheet.
 */
import { BlockList, isIP } from 'node:net';

interface Range {
  readonly network: string;
  readonly prefix: number;
  readonly label: string;
}

const ipv4Ranges: readonly Range[] = [
  { network: '0.0.0.0', prefix: 8, label: 'this network (0.0.0.0/8)' },
  { network: '10.0.0.0', prefix: 8, label: 'private (10.0.0.0/8)' },
  { network: '100.64.0.0', prefix: 10, label: 'carrier-grade NAT (100.64.0.0/10)' },
  { network: '127.0.0.0', prefix: 8, label: 'loopback (127.0.0.0/8)' },
  { network: '169.254.169.254', prefix: 32, label: 'cloud metadata (169.254.169.254)' },
  { network: '169.254.0.0', prefix: 16, label: 'link-local (169.254.0.0/16)' },
  { network: '172.16.0.0', prefix: 12, label: 'private (172.16.0.0/12)' },
  { network: '192.0.0.0', prefix: 24, label: 'IETF protocol assignments (192.0.0.0/24)' },
  { network: '192.168.0.0', prefix: 16, label: 'private (192.168.0.0/16)' },
  { network: '198.18.0.0', prefix: 15, label: 'benchmarking (198.18.0.0/15)' },
  { network: '224.0.0.0', prefix: 4, label: 'multicast (224.0.0.0/4)' },
  { network: '240.0.0.0', prefix: 4, label: 'reserved or broadcast (240.0.0.0/4)' },
];

const ipv6Ranges: readonly Range[] = [
  { network: '::', prefix: 128, label: 'unspecified (::)' },
  { network: '::1', prefix: 128, label: 'loopback (::1)' },
  { network: 'fd00:ec2::254', prefix: 128, label: 'cloud metadata (fd00:ec2::254)' },
  { network: 'fc00::', prefix: 7, label: 'unique local (fc00::/7)' },
  { network: 'fe80::', prefix: 10, label: 'link-local (fe80::/10)' },
  { network: 'ff00::', prefix: 8, label: 'multicast (ff00::/8)' },
];

/** One BlockList per range, so a refusal can say which range it was (BlockList alone says only yes or no). */
const compiled = [
  ...ipv4Ranges.map((r) => ({ ...r, family: 'ipv4' as const })),
  ...ipv6Ranges.map((r) => ({ ...r, family: 'ipv6' as const })),
].map((r) => {
  const list = new BlockList();
  list.addSubnet(r.network, r.prefix, r.family);
  return { ...r, list };
});

/** The 16 bytes of an IPv6 address (accepts embedded dotted IPv4 in the last 32 bits). */
function ipv6Bytes(address: string): number[] | null {
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (dotted) {
    tail = dotted[1]!.split('.').map(Number);
    text = `${text.slice(0, dotted.index)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const words = (part: string) => (part === '' ? [] : part.split(':').map((w) => Number.parseInt(w, 16)));
  const head = words(halves[0]!);
  const rest = halves.length === 2 ? words(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const all = [...head, ...Array<number>(Math.max(fill, 0)).fill(0), ...rest];
  if (all.length !== 8 || all.some((w) => Number.isNaN(w))) return null;
  const bytes = all.flatMap((w) => [w >> 8, w & 0xff]);
  if (dotted) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** The IPv4 address carried inside an IPv4-mapped (::ffff:0:0/96) or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedIpv4(address: string): string | null {
  const b = ipv6Bytes(address);
  if (!b) return null;
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const mapped = zeros(0, 10) && b[10] === 0xff && b[11] === 0xff;
  const nat64 = b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12);
  return mapped || nat64 ? b.slice(12).join('.') : null;
}

/**
 * The refused range an IP address is in, or null when it is a public address. Not an IP address: refused.
 * @example refusedRangeOf('169.254.169.254') // 'cloud metadata (169.254.169.254)'
 */
export function refusedRangeOf(address: string): string | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(bare);
  if (family === 0) return 'not an IP address';
  if (family === 6) {
    const v4 = embeddedIpv4(bare);
    if (v4 !== null) {
      const inner = refusedRangeOf(v4);
      return inner === null ? null : `${inner} inside IPv6`;
    }
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  return compiled.find((r) => r.family === type && r.list.check(bare, type))?.label ?? null;
}

/** Whether a URL host (as `URL.hostname` gives it, IPv6 in brackets) is an IP literal. */
export function isIpLiteral(hostname: string): boolean {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(bare) !== 0;
}
