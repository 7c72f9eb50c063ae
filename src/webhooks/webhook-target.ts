import { Injectable } from '@nestjs/common';
import { lookup } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Config } from '../config/config';

export type AddressClass = 'loopback' | 'private' | 'link_local' | 'unspecified' | 'multicast' | 'reserved';

/**
 * Address ranges a webhook must not reach unless WEBHOOKS_ALLOW_PRIVATE_TARGETS is set: the machine itself, the
 * networks around it (a URL is chosen by a tenant, and the worker sits next to Postgres, Redis, agents and cloud
 * metadata services), and addresses that are not one host. Node's BlockList also matches IPv4-mapped IPv6
 * (`::ffff:127.0.0.1`, `::ffff:7f00:1`) against the IPv4 ranges.
 */
const RANGES: [AddressClass, string, number, 'ipv4' | 'ipv6'][] = [
  ['unspecified', '0.0.0.0', 8, 'ipv4'],
  ['private', '10.0.0.0', 8, 'ipv4'],
  ['private', '100.64.0.0', 10, 'ipv4'], // carrier-grade NAT, routed inside providers' networks
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['link_local', '169.254.0.0', 16, 'ipv4'], // includes 169.254.169.254, the cloud metadata service
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  ['multicast', '224.0.0.0', 4, 'ipv4'],
  ['reserved', '240.0.0.0', 4, 'ipv4'], // and 255.255.255.255
  ['unspecified', '::', 128, 'ipv6'],
  ['loopback', '::1', 128, 'ipv6'],
  ['private', 'fc00::', 7, 'ipv6'],
  ['link_local', 'fe80::', 10, 'ipv6'],
  ['multicast', 'ff00::', 8, 'ipv6'],
];
const LISTS = new Map<AddressClass, BlockList>();
for (const [cls, net, prefix, family] of RANGES) {
  if (!LISTS.has(cls)) LISTS.set(cls, new BlockList());
  LISTS.get(cls)!.addSubnet(net, prefix, family);
}

/** The class of a non-public address, or null for a public one (or for something that is not an IP address). */
export function classifyAddress(address: string): AddressClass | null {
  const family = isIP(address);
  if (family === 0) return null;
  for (const [cls, list] of LISTS) if (list.check(address, family === 4 ? 'ipv4' : 'ipv6')) return cls;
  return null;
}

/** A target refused before any byte was sent to it. The message names the address and why, never the URL. */
export class RefusedTarget extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedTarget';
  }
}

type LookupAddress = { address: string; family: number };
type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * Decides whether a webhook URL may be called. At create it resolves the host and checks every address; at each
 * delivery `lookup` is handed to the HTTP client, so the address checked is the one connected to (a DNS answer
 * that changes between the check and the connection cannot slip through).
 */
@Injectable()
export class WebhookTargetGuard {
  constructor(private readonly config: Config) {}

  get allowsPrivate(): boolean {
    return this.config.env.WEBHOOKS_ALLOW_PRIVATE_TARGETS;
  }

  /** Throws RefusedTarget for a URL that is not http(s), or whose host resolves to a refused address. */
  async check(url: string): Promise<void> {
    const host = parseTarget(url).host;
    if (this.allowsPrivate) return;
    const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolveAll(host);
    refuseAny(addresses);
  }

  /** The host of an IP-literal URL is not looked up by Node, so the sender checks it here before connecting. */
  checkLiteral(host: string): void {
    if (!this.allowsPrivate && isIP(host)) refuseAny([{ address: host, family: isIP(host) }]);
  }

  /** A `lookup` for http.request that refuses private addresses (unless allowed). */
  readonly lookup = (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    lookup(hostname, { family: options.family ?? 0, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      try {
        if (!this.allowsPrivate) refuseAny(addresses);
      } catch (refused) {
        return callback(refused as NodeJS.ErrnoException, []);
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

/** http(s) only; brackets of an IPv6 literal removed. */
export function parseTarget(url: string): { url: URL; host: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RefusedTarget('not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new RefusedTarget(`only http and https URLs are allowed, not ${parsed.protocol}`);
  return { url: parsed, host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') };
}

function resolveAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) =>
    lookup(host, { all: true }, (err, addresses) =>
      err ? reject(new RefusedTarget(`the host '${host}' does not resolve (${err.code ?? err.message})`)) : resolve(addresses),
    ),
  );
}

function refuseAny(addresses: LookupAddress[]): void {
  for (const a of addresses) {
    const cls = classifyAddress(a.address);
    if (cls) throw new RefusedTarget(`the target resolves to ${a.address}, ${cls === 'unspecified' ? 'an' : 'a'} ${cls.replace('_', '-')} address (set WEBHOOKS_ALLOW_PRIVATE_TARGETS=true to allow)`);
  }
}
