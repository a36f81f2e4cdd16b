/**
 * The SSRF guard. Before every attempt the host is resolved once (all
 * addresses), and the delivery is refused if ANY address is not public:
 * private, loopback, link-local, cloud metadata, CGNAT, unspecified,
 * multicast, reserved, documentation, ULA, or an IPv4-mapped / NAT64 / 6to4
 * address carrying such an IPv4. The connection then goes to a vetted address
 * (see transport.ts), so a second DNS answer cannot swap it (rebinding).
 *
 * An allowlist opens chosen host names (any address they resolve to) and
 * CIDR ranges (addresses inside them).
 *
 * Literal forms are normalized by the WHATWG URL parser before they get here
 * (`http://2130706433/`, `http://0x7f.1/` → 127.0.0.1; `[::ffff:127.0.0.1]` →
 * `[::ffff:7f00:1]`); both IPv6 spellings are also handled here.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { WebhookRequestError } from '../errors.js';

type Ip = { v: 4; n: number } | { v: 6; w: number[] };

/** Parses an IPv4 or IPv6 literal (brackets and zone ids allowed); null when not an address. */
export function parseIp(text: string): Ip | null {
  let s = text;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (isIPv4(s)) {
    const p = s.split('.').map(Number);
    return { v: 4, n: ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]! };
  }
  if (!isIPv6(s)) return null;
  const words: number[] = [];
  const parseSide = (side: string): number[] => {
    if (side === '') return [];
    const out: number[] = [];
    for (const part of side.split(':')) {
      if (part.includes('.')) {
        const p = part.split('.').map(Number);
        out.push((p[0]! << 8) | p[1]!, (p[2]! << 8) | p[3]!);
      } else out.push(parseInt(part, 16));
    }
    return out;
  };
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    const head = parseSide(s.slice(0, dbl));
    const tail = parseSide(s.slice(dbl + 2));
    words.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  } else words.push(...parseSide(s));
  return words.length === 8 ? { v: 6, w: words } : null;
}

function formatV4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

interface Cidr {
  text: string;
  ip: Ip;
  prefix: number;
}

/** Parses `a.b.c.d/n` or `x::/n` (a bare address is /32 or /128). */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return null;
  const max = ip.v === 4 ? 32 : 128;
  const prefix = slash < 0 ? max : Number(text.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { text, ip, prefix };
}

function inCidr(ip: Ip, c: Cidr): boolean {
  if (ip.v !== c.ip.v) return false;
  if (ip.v === 4) {
    if (c.prefix === 0) return true;
    const mask = (0xffffffff << (32 - c.prefix)) >>> 0;
    return ((ip.n & mask) >>> 0) === (((c.ip as { n: number }).n & mask) >>> 0);
  }
  const cw = (c.ip as { w: number[] }).w;
  let bits = c.prefix;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const take = Math.min(16, bits);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if ((ip.w[i]! & mask) !== (cw[i]! & mask)) return false;
  }
  return true;
}

function rules(list: [string, string][]): [Cidr, string][] {
  return list.map(([c, cat]) => [parseCidr(c)!, cat]);
}

// First match wins: the specific (metadata) before the general.
const V4_RULES = rules([
  ['169.254.169.254/32', 'cloud metadata'],
  ['169.254.170.2/32', 'cloud metadata'],
  ['100.100.100.200/32', 'cloud metadata'],
  ['168.63.129.16/32', 'cloud metadata'],
  ['0.0.0.0/32', 'unspecified'],
  ['0.0.0.0/8', 'this network'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'CGNAT shared'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignment'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved (6to4 relay)'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved (class E)'],
]);

const V6_RULES = rules([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fd00:ec2::254/128', 'cloud metadata'],
  ['64:ff9b:1::/48', 'NAT64 local-use'],
  ['100::/64', 'discard-only'],
  ['2001:db8::/32', 'documentation'],
  ['2001::/23', 'IETF protocol assignment (incl. Teredo)'],
  ['3fff::/20', 'documentation'],
  ['fc00::/7', 'unique local (ULA)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
]);

const MAPPED = parseCidr('::ffff:0:0/96')!;
const NAT64 = parseCidr('64:ff9b::/96')!;
const SIX_TO_FOUR = parseCidr('2002::/16')!;
const GLOBAL_UNICAST = parseCidr('2000::/3')!;

export interface AddressVerdict {
  /** The address as given. */
  address: string;
  public: boolean;
  /** e.g. "private", "loopback", "cloud metadata", "public". */
  category: string;
  /** The matching range, e.g. "10.0.0.0/8". */
  range: string | null;
  /** For IPv6 forms that carry an IPv4 (mapped, NAT64, 6to4): that IPv4. */
  embedded: string | null;
  /** Which form carried it: "IPv4-mapped", "NAT64", "6to4". */
  via: string | null;
}

/** The IPv4 an IPv6 address carries (mapped, NAT64, 6to4), with the form's name. */
function embeddedV4(ip: Ip & { v: 6 }): { n: number; via: string } | null {
  const w = ip.w;
  if (inCidr(ip, MAPPED)) return { n: ((w[6]! << 16) >>> 0) + w[7]!, via: 'IPv4-mapped' };
  if (inCidr(ip, NAT64)) return { n: ((w[6]! << 16) >>> 0) + w[7]!, via: 'NAT64' };
  if (inCidr(ip, SIX_TO_FOUR)) return { n: ((w[1]! << 16) >>> 0) + w[2]!, via: '6to4' };
  return null;
}

/** Classifies one address (no DNS, no connection). Anything not an address is refused. */
export function classifyAddress(address: string): AddressVerdict {
  const ip = parseIp(address);
  const verdict = (pub: boolean, category: string, range: string | null, embedded: string | null = null, via: string | null = null): AddressVerdict => ({
    address,
    public: pub,
    category,
    range,
    embedded,
    via,
  });
  if (!ip) return verdict(false, 'not an IP address', null);
  if (ip.v === 4) {
    for (const [c, cat] of V4_RULES) if (inCidr(ip, c)) return verdict(false, cat, c.text);
    return verdict(true, 'public', null);
  }
  const inner = embeddedV4(ip);
  if (inner) {
    const v4 = formatV4(inner.n);
    const iv = classifyAddress(v4);
    return verdict(iv.public, iv.public ? `public (${inner.via})` : `${iv.category} (${inner.via})`, iv.range, v4, inner.via);
  }
  for (const [c, cat] of V6_RULES) if (inCidr(ip, c)) return verdict(false, cat, c.text);
  if (!inCidr(ip, GLOBAL_UNICAST)) return verdict(false, 'reserved (outside 2000::/3)', null);
  return verdict(true, 'public', null);
}

export interface SsrfPolicyOptions {
  /** Host names (exact, case-insensitive; `*.example.com` for subdomains) whose addresses are never refused. */
  allowHosts?: readonly string[];
  /** CIDR ranges (or single addresses) that are allowed, e.g. `127.0.0.1/32`, `10.20.0.0/16`, `fd12::/16`. */
  allowCidrs?: readonly string[];
}

export class SsrfPolicy {
  private readonly hosts: Set<string>;
  private readonly suffixes: string[];
  private readonly cidrs: Cidr[];

  constructor(options: SsrfPolicyOptions = {}) {
    this.hosts = new Set();
    this.suffixes = [];
    for (const h of options.allowHosts ?? []) {
      if (typeof h !== 'string' || h.length === 0) throw new TypeError('ssrf.allowHosts must be a list of host names');
      const lower = h.toLowerCase();
      if (lower.startsWith('*.')) this.suffixes.push(lower.slice(1));
      else this.hosts.add(lower);
    }
    this.cidrs = (options.allowCidrs ?? []).map((c) => {
      const parsed = typeof c === 'string' ? parseCidr(c) : null;
      if (!parsed) throw new TypeError(`event_hooks.allow_cidrs: ${JSON.stringify(c)} is not a CIDR range`);
      return parsed;
    });
  }

  hostAllowed(hostname: string): boolean {
    const h = hostname.toLowerCase();
    return this.hosts.has(h) || this.suffixes.some((s) => h.endsWith(s));
  }

  /** The verdict for one address, allowlist applied (an IPv4-mapped address is matched as its IPv4). */
  check(address: string): AddressVerdict {
    const v = classifyAddress(address);
    if (v.public) return v;
    // The kernel connects an IPv4-mapped address over IPv4: match the IPv4 it carries.
    const ip = parseIp(v.via === 'IPv4-mapped' && v.embedded ? v.embedded : address);
    if (ip && this.cidrs.some((c) => inCidr(ip, c))) return { ...v, public: true, category: `allowlisted ${v.category}` };
    return v;
  }

  /** Throws WebhookRequestError("refused") if any address is forbidden (unless the host is allowlisted). */
  vet(hostname: string, addresses: readonly string[]): void {
    if (this.hostAllowed(hostname)) return;
    for (const a of addresses) {
      const v = this.check(a);
      if (v.public) continue;
      const what = `${v.category}${v.range ? ` ${v.range}` : ''}`;
      const literal = parseIp(hostname) !== null;
      throw new WebhookRequestError(
        'refused',
        literal
          ? `refused by the SSRF guard: ${a} is ${what} (allow it with event_hooks.allow_cidrs)`
          : `refused by the SSRF guard: ${hostname} resolves to ${a}, ${what} (allow it with event_hooks.allow_hosts or event_hooks.allow_cidrs)`,
      );
    }
  }
}

export type LookupFn = (hostname: string) => Promise<string[]>;

export const systemLookup: LookupFn = async (hostname) => {
  const found = await dnsLookup(hostname, { all: true, verbatim: true });
  return found.map((a) => a.address);
};

/**
 * Resolves `hostname` once (an IP literal resolves to itself) and vets every
 * address. Returns the addresses, in resolver order, all allowed.
 */
export async function resolveAndVet(
  hostname: string,
  policy: SsrfPolicy,
  lookup: LookupFn,
  timeoutMs: number,
): Promise<string[]> {
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  let addresses: string[];
  if (parseIp(bare)) addresses = [bare];
  else {
    let timer: NodeJS.Timeout | undefined;
    try {
      addresses = await Promise.race([
        lookup(bare),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`DNS lookup timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new WebhookRequestError('dns', `cannot resolve ${bare}: ${code ?? (err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    if (addresses.length === 0) throw new WebhookRequestError('dns', `cannot resolve ${bare}: no address`);
  }
  policy.vet(bare, addresses);
  return addresses;
}
