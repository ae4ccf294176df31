import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { ErrorCode, InputError } from './errors/index.js';

/** Schemes a video URL may have. */
export const VIDEO_URL_SCHEMES = ['http:', 'https:', 'rtsp:', 'udp:'] as const;

/** Control characters (C0, DEL, C1) and every kind of whitespace: never part of a URL streamseg accepts. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f-\u00a0\u1680\u180e\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]/u;

/** A host name as DNS spells it (letters, digits, hyphens, dots), optionally with a leading dot (a suffix). */
const HOST_NAME = /^\.?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * Parses a video URL exactly as given: no trimming, no control characters or whitespace anywhere,
 * an http, https, rtsp or udp scheme and a host. The string returned is the one that was checked
 * (the caller hands this, and nothing else, to ffmpeg).
 */
export function parseVideoUrl(raw: string, what = 'url'): URL {
  const bad = CONTROL_OR_SPACE.exec(raw);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).padStart(4, '0');
    throw new InputError(
      ErrorCode.INPUT_URL_INVALID,
      `${what}: holds a control character or whitespace (U+${code.toUpperCase()} at position ${bad.index}); send the URL without spaces, tabs or line breaks (percent-encode them)`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError(ErrorCode.INPUT_URL_INVALID, `${what}: not a URL; send an http, https, rtsp or udp URL (uploads go in the multipart "file" field)`);
  }
  if (!(VIDEO_URL_SCHEMES as readonly string[]).includes(url.protocol)) {
    throw new InputError(ErrorCode.INPUT_URL_SCHEME, `${what}: ${url.protocol} URLs are not accepted; send an http, https, rtsp or udp URL`);
  }
  if (!url.hostname) throw new InputError(ErrorCode.INPUT_URL_INVALID, `${what}: has no host; send a URL such as rtsp://camera.example/stream`);
  return url;
}

/** One STREAMSEG_URL_ALLOW entry: a CIDR range (a bare address is a /32 or /128), a host name, or `.suffix` for every name under it. */
export type AllowEntry =
  { kind: 'cidr'; range: [ipaddr.IPv4 | ipaddr.IPv6, number]; text: string } | { kind: 'host'; name: string; suffix: boolean; text: string };

/** Parses one allow-list entry; undefined when it is neither a CIDR, an address nor a host name. */
export function parseAllowEntry(text: string): AllowEntry | undefined {
  const entry = text.trim();
  if (!entry) return undefined;
  try {
    if (entry.includes('/')) return { kind: 'cidr', range: ipaddr.parseCIDR(entry), text: entry };
    if (ipaddr.isValid(entry)) {
      const address = ipaddr.parse(entry);
      return { kind: 'cidr', range: [address, address.kind() === 'ipv4' ? 32 : 128], text: entry };
    }
  } catch {
    return undefined;
  }
  if (/^[0-9.]+$/.test(entry) || !HOST_NAME.test(entry)) return undefined;
  const suffix = entry.startsWith('.');
  return { kind: 'host', name: entry.toLowerCase().replace(/\.$/, ''), suffix, text: entry };
}

/** Resolves a host name to every address it has (the system resolver, as ffmpeg uses it). */
export type HostResolver = (host: string) => Promise<string[]>;

const systemResolver: HostResolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Where URLs submitted through the API may lead. The host is resolved and every address it
 * resolves to must be public unicast: loopback, link-local (cloud metadata), private, carrier-grade
 * NAT, unique-local, multicast, broadcast, unspecified and reserved ranges are refused, unless an
 * entry of STREAMSEG_URL_ALLOW (CIDRs, addresses, host names, `.suffix`) lets them through.
 */
export class UrlDestinationPolicy {
  private readonly entries: AllowEntry[];

  constructor(
    allow: readonly string[] = [],
    private readonly resolve: HostResolver = systemResolver,
  ) {
    this.entries = allow.map((text) => {
      const entry = parseAllowEntry(text);
      if (!entry) throw new RangeError(`STREAMSEG_URL_ALLOW entry "${text}" is neither a CIDR, an IP address nor a host name`);
      return entry;
    });
  }

  /**
   * Checks a URL's destination; resolves with the addresses it may connect to (empty when the host
   * name itself is allowed). Throws E_INPUT_URL_DESTINATION naming the host and the kind of range.
   */
  async check(url: URL, what = 'url'): Promise<string[]> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    return this.checkHost(host, what);
  }

  /** Same as check, for a bare host (a proxy's CONNECT target). */
  async checkHost(host: string, what = 'url'): Promise<string[]> {
    const name = host.toLowerCase().replace(/\.$/, '');
    if (this.entries.some((e) => e.kind === 'host' && (e.suffix ? name.endsWith(e.name) : name === e.name))) return [];
    let addresses: string[];
    if (ipaddr.isValid(name) && !/^[0-9]+$/.test(name)) addresses = [name];
    else {
      try {
        addresses = await this.resolve(name);
      } catch {
        throw new InputError(ErrorCode.INPUT_URL_DESTINATION, `${what}: the host "${host}" does not resolve; check the name`);
      }
    }
    if (addresses.length === 0) throw new InputError(ErrorCode.INPUT_URL_DESTINATION, `${what}: the host "${host}" does not resolve; check the name`);
    for (const text of addresses) {
      const address = ipaddr.process(text);
      if (this.entries.some((e) => e.kind === 'cidr' && e.range[0].kind() === address.kind() && address.match(e.range))) continue;
      const range = address.range();
      if (range !== 'unicast') {
        const named = text === host ? host : `${host} (${text})`;
        throw new InputError(
          ErrorCode.INPUT_URL_DESTINATION,
          `${what}: ${named} is in the ${range} range, which submitted URLs may not reach; an operator can open it with STREAMSEG_URL_ALLOW (CIDRs or host names)`,
        );
      }
    }
    return addresses;
  }
}
