import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { Config } from '../../config/config';
import { DomainError } from '../domain-error';
import { addressBytes, ALLOWABLE_CLASSES, AddressClass, Cidr, classifyBytes, embeddedIpv4, inCidr } from './address-ranges';

/**
 * A tenant's URL refused before a byte was sent. The message names the class of address, never the address or
 * what answered there: a tenant must not learn the inside of the network by trying URLs.
 */
export class RefusedTarget extends Error {
  readonly code = 'ERR_REFUSED_TARGET';
  constructor(message: string) {
    super(message);
    this.name = 'RefusedTarget';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

const ARTICLE: Record<AddressClass, string> = {
  loopback: 'a loopback', private: 'a private', link_local: 'a link-local', metadata: 'a cloud metadata',
  unspecified: 'an unspecified', multicast: 'a multicast', reserved: 'a reserved',
};

/**
 * The one gate for every URL a tenant supplies (eval and judge targets, replicas' vllm_url/agent_url, webhooks).
 * Link-local, metadata and other special addresses are always refused; loopback and private ones unless inside the
 * operator's ALLOWED_PRIVATE_NETWORKS. Checked twice: at create (`assertAllowed`, a 400 naming the field) and on
 * the address each connection actually goes to (`lookup` for node:http, `dispatcher` for fetch), so a DNS answer
 * that changes after the create (rebinding) cannot slip through.
 */
@Injectable()
export class TargetGuard implements OnModuleDestroy {
  private readonly allowed: Cidr[];
  /** For fetch(): `fetch(url, { dispatcher: guard.dispatcher })`. */
  readonly dispatcher: Agent;

  constructor(config: Config) {
    this.allowed = config.allowedPrivateNetworks;
    const connect = buildConnector({ lookup: this.lookup } as buildConnector.BuildOptions);
    this.dispatcher = new Agent({
      connect: (options, callback) => {
        // net.connect does not call `lookup` for an IP literal, so a literal is judged here.
        const refusal = isIP(options.hostname.replace(/^\[(.*)\]$/, '$1')) ? this.refusal(options.hostname) : null;
        if (refusal) callback(refusal, null);
        else connect(options, callback);
      },
    });
  }

  async onModuleDestroy(): Promise<void> {
    await this.dispatcher.close();
  }

  /** Why this address may not be connected to, or null when it may. */
  refusal(address: string): RefusedTarget | null {
    const bytes = addressBytes(address);
    if (!bytes) return new RefusedTarget('not an IP address');
    const cls = classifyBytes(bytes);
    if (cls === null) return null;
    const effective = embeddedIpv4(bytes) ?? bytes;
    if (ALLOWABLE_CLASSES.has(cls) && this.allowed.some((c) => inCidr(effective, c))) return null;
    const hint = ALLOWABLE_CLASSES.has(cls) ? ' outside ALLOWED_PRIVATE_NETWORKS' : '';
    return new RefusedTarget(`the URL leads to ${ARTICLE[cls]} address${hint}, which loraplane does not call`);
  }

  /**
   * Create-time check: http(s), and every address the host resolves to now is allowed. A name that does not resolve
   * is accepted: it cannot be judged yet, and every connection is judged again anyway.
   */
  async assertAllowed(url: string, field: string): Promise<void> {
    try {
      const host = parseTarget(url).host;
      const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolveAll(host);
      for (const a of addresses) {
        const refused = this.refusal(a.address);
        if (refused) throw refused;
      }
    } catch (err) {
      if (err instanceof RefusedTarget) throw new DomainError('invalid_request', `'${field}' is refused: ${err.message}`, field, { cause: err });
      throw err;
    }
  }

  /** For node:http's `lookup` option; also what the fetch dispatcher resolves names with. */
  readonly lookup = (hostname: string, options: { all?: boolean; family?: number | 'IPv4' | 'IPv6' }, callback: LookupCallback): void => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    dnsLookup(hostname, { family, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      for (const a of addresses) {
        const refused = this.refusal(a.address);
        if (refused) return callback(refused, []);
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

/** http(s) only; the brackets of an IPv6 literal removed. */
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

/**
 * The RefusedTarget somewhere in an error's cause chain. fetch wraps it as `TypeError: fetch failed`, and an error
 * that crosses into another realm (Node's bundled undici vs. a VM context) may come back re-wrapped as a plain
 * Error whose message starts with its name, so that shape counts too.
 */
export function refusedCause(err: unknown): RefusedTarget | null {
  const prefix = 'RefusedTarget: ';
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof RefusedTarget) return e;
    const { name, message } = e as { name?: unknown; message?: unknown };
    if (typeof message !== 'string') continue;
    if (name === 'RefusedTarget') return new RefusedTarget(message);
    if (message.startsWith(prefix)) return new RefusedTarget(message.slice(prefix.length));
  }
  return null;
}

function resolveAll(host: string): Promise<{ address: string; family: number }[]> {
  return new Promise((resolve) => dnsLookup(host, { all: true }, (err, addresses) => resolve(err ? [] : addresses)));
}
