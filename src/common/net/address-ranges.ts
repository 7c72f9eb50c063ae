import { isIP } from 'node:net';

/**
 * Classes of addresses that are not "somebody's public server". `link_local`, `metadata`, `unspecified`,
 * `multicast` and `reserved` are never reachable through a tenant's URL; `loopback` and `private` only inside an
 * operator's ALLOWED_PRIVATE_NETWORKS.
 */
export type AddressClass = 'loopback' | 'private' | 'link_local' | 'metadata' | 'unspecified' | 'multicast' | 'reserved';

export const ALLOWABLE_CLASSES: ReadonlySet<AddressClass> = new Set(['loopback', 'private']);

/** An address as bytes (4 or 16) and a prefix length: the one shape ranges and the operator's CIDRs share. */
export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
  text: string;
}

// First match wins, so the narrow metadata entries come before the ranges that hold them.
const V4: [AddressClass, string][] = [
  ['metadata', '169.254.169.254/32'], // AWS, GCP, Azure, OpenStack, Oracle
  ['metadata', '100.100.100.200/32'], // Alibaba Cloud
  ['unspecified', '0.0.0.0/8'],
  ['private', '10.0.0.0/8'],
  ['private', '100.64.0.0/10'], // carrier-grade NAT, routed inside providers' networks
  ['loopback', '127.0.0.0/8'],
  ['link_local', '169.254.0.0/16'],
  ['private', '172.16.0.0/12'],
  ['private', '192.0.0.0/24'], // IETF protocol assignments (DS-Lite, NAT64 discovery)
  ['reserved', '192.0.2.0/24'], // documentation
  ['reserved', '192.88.99.0/24'], // 6to4 relay anycast
  ['private', '192.168.0.0/16'],
  ['private', '198.18.0.0/15'], // benchmarking, used for internal networks in practice
  ['reserved', '198.51.100.0/24'], // documentation
  ['reserved', '203.0.113.0/24'], // documentation
  ['multicast', '224.0.0.0/4'],
  ['reserved', '240.0.0.0/4'], // and 255.255.255.255
];
const V6: [AddressClass, string][] = [
  ['metadata', 'fd00:ec2::254/128'], // AWS IMDS over IPv6
  ['unspecified', '::/128'],
  ['loopback', '::1/128'],
  ['reserved', '100::/64'], // discard-only
  ['reserved', '2001:db8::/32'], // documentation
  ['reserved', '3fff::/20'], // documentation
  ['reserved', '2001:10::/28'], // ORCHID
  ['private', '64:ff9b:1::/48'], // local-use NAT64: translates into the operator's own networks
  ['private', 'fc00::/7'],
  ['link_local', 'fe80::/10'],
  ['private', 'fec0::/10'], // deprecated site-local, still routed on old networks
  ['multicast', 'ff00::/8'],
];

/** `a.b.c.d`, an IPv6 address (a trailing dotted quad and a `%zone` accepted), as bytes; null if neither. */
export function addressBytes(address: string): Uint8Array | null {
  const plain = address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  const family = isIP(plain);
  if (family === 4) return Uint8Array.from(plain.split('.').map(Number));
  if (family !== 6) return null;
  let text = plain;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const b = quad[1].split('.').map(Number);
    text = `${text.slice(0, -quad[1].length)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = tail === null ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (one host). Throws a readable Error for anything else. */
export function parseCidr(text: string): Cidr {
  const [addr, len, extra] = text.trim().split('/');
  const bytes = addressBytes(addr);
  if (!bytes || extra !== undefined) throw new Error(`'${text}' is not an address or a CIDR (e.g. 10.0.0.0/8, fd00::/8)`);
  const max = bytes.length * 8;
  const prefix = len === undefined ? max : Number(len);
  if (!/^\d+$/.test(len ?? String(max)) || prefix > max) throw new Error(`'${text}': the prefix length must be 0..${max}`);
  return { bytes, prefix, text: text.trim() };
}

export function inCidr(bytes: Uint8Array, cidr: Cidr): boolean {
  if (bytes.length !== cidr.bytes.length) return false;
  for (let bit = 0; bit < cidr.prefix; bit += 8) {
    const mask = cidr.prefix - bit >= 8 ? 0xff : (0xff << (8 - (cidr.prefix - bit))) & 0xff;
    if ((bytes[bit / 8] & mask) !== (cidr.bytes[bit / 8] & mask)) return false;
  }
  return true;
}

const V4_RANGES = V4.map(([cls, c]) => [cls, parseCidr(c)] as const);
const V6_RANGES = V6.map(([cls, c]) => [cls, parseCidr(c)] as const);
const NAT64 = parseCidr('64:ff9b::/96');
const SIX_TO_FOUR = parseCidr('2002::/16');
const TEREDO = parseCidr('2001::/32');

/**
 * The IPv4 address an IPv6 address carries to the network it ends up on: IPv4-mapped (`::ffff:a.b.c.d`),
 * IPv4-compatible (`::a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`)
 * and Teredo's client (`2001::/32`, inverted). A tenant could otherwise write 127.0.0.1 or 169.254.169.254 in any of
 * these shapes.
 */
export function embeddedIpv4(bytes: Uint8Array): Uint8Array | null {
  if (bytes.length !== 16) return null;
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  const last4 = bytes.slice(12, 16);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return last4;
  if (zeros(0, 8) && bytes[8] === 0xff && bytes[9] === 0xff && zeros(10, 12)) return last4;
  if (zeros(0, 12)) return last4; // :: and ::1 matched their own ranges before this is asked
  if (inCidr(bytes, NAT64)) return last4;
  if (inCidr(bytes, SIX_TO_FOUR)) return bytes.slice(2, 6);
  if (inCidr(bytes, TEREDO)) return last4.map((b) => b ^ 0xff);
  return null;
}

/** The class of a non-public address; null for a public one or for something that is not an IP address. */
export function classifyAddress(address: string): AddressClass | null {
  const bytes = addressBytes(address);
  return bytes ? classifyBytes(bytes) : null;
}

export function classifyBytes(bytes: Uint8Array): AddressClass | null {
  const ranges = bytes.length === 4 ? V4_RANGES : V6_RANGES;
  for (const [cls, cidr] of ranges) if (inCidr(bytes, cidr)) return cls;
  const v4 = embeddedIpv4(bytes);
  return v4 ? classifyBytes(v4) : null;
}
