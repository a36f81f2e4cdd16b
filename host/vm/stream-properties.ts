/**
 * The attributes every HTTP stream derives from its own traffic (request.*
 * from the request headers, response.* from the response headers, the body
 * sizes and the response code details), as Envoy computes them. One
 * implementation for both stream owners: the gateway's data plane
 * (host/proxy/properties.ts adds the connection and route attributes) and the
 * emulator (host/testing), so a plugin reads the same values in its unit
 * test as in the gateway. Values are typed (host/vm/properties.ts encodes
 * them); header-derived strings are raw bytes (latin1), unchanged.
 */
import type { HeaderMap } from '../abi/header-map.js';
import { ByteString, type PropertyValue } from './properties.js';

/** What a stream exposes to the traffic-derived attributes. */
export interface StreamFacts {
  /** The request headers as the filters see them (null before the request phase). */
  readonly requestHeaders: HeaderMap | null;
  /** The response headers (upstream's or a local reply's), null before the response exists. */
  readonly responseHeaders: HeaderMap | null;
  /** Body bytes that entered the request direction. */
  readonly requestBodyBytes: number;
  /** Body bytes of the response that left the filter chain. */
  readonly responseBodyBytes: number;
  /** Envoy's response code details ("via_upstream", a local reply's details...), "" before any. */
  readonly codeDetails: string;
}

export type StreamResolver = (s: StreamFacts) => PropertyValue | undefined;

const bytes = (s: string | undefined): ByteString | undefined => (s === undefined ? undefined : new ByteString(s));

/** Header bytes as on the wire: name + ": " + value + CRLF per header. */
export function headerBytes(map: HeaderMap | null): number {
  if (map === null) return 0;
  return map.byteSize + map.count * 4;
}

function joined(map: HeaderMap | null, name: string): ByteString | undefined {
  if (map === null) return undefined;
  const all = map.getAll(name);
  return all.length === 0 ? undefined : bytes(all.join(','));
}

/** The traffic-derived attributes by canonical key. */
export const STREAM_RESOLVERS: ReadonlyArray<readonly [string, StreamResolver]> = [
  ['request.path', (s) => bytes(s.requestHeaders?.get(':path'))],
  ['request.url_path', (s) => {
    const p = s.requestHeaders?.get(':path');
    if (p === undefined) return undefined;
    const q = p.indexOf('?');
    return bytes(q < 0 ? p : p.slice(0, q));
  }],
  ['request.host', (s) => bytes(s.requestHeaders?.get(':authority'))],
  ['request.scheme', (s) => bytes(s.requestHeaders?.get(':scheme'))],
  ['request.method', (s) => bytes(s.requestHeaders?.get(':method'))],
  ['request.headers', (s) => s.requestHeaders ?? undefined],
  ['request.referer', (s) => bytes(s.requestHeaders?.get('referer'))],
  ['request.useragent', (s) => bytes(s.requestHeaders?.get('user-agent'))],
  ['request.query', (s) => {
    const p = s.requestHeaders?.get(':path') ?? '';
    const q = p.indexOf('?');
    return bytes(q < 0 ? '' : p.slice(q + 1));
  }],
  ['request.size', (s) => s.requestBodyBytes],
  ['request.total_size', (s) => s.requestBodyBytes + headerBytes(s.requestHeaders)],
  ['response.code', (s) => {
    const code = s.responseHeaders?.get(':status');
    // Only a well-formed code is an integer (edits are validated, but a read must never fail on one).
    return code === undefined || !/^[0-9]{3}$/.test(code) ? undefined : Number(code);
  }],
  ['response.code_details', (s) => (s.codeDetails === '' ? undefined : s.codeDetails)],
  ['response.headers', (s) => s.responseHeaders ?? undefined],
  ['response.size', (s) => (s.responseHeaders === null ? undefined : s.responseBodyBytes)],
  ['response.total_size', (s) => (s.responseHeaders === null ? undefined : s.responseBodyBytes + headerBytes(s.responseHeaders))],
];

const BY_KEY = new Map<string, StreamResolver>(STREAM_RESOLVERS);

/** request.headers.<name> and response.headers.<name>: every value of the header, comma-joined. */
export function headerProperty(s: StreamFacts, key: string): PropertyValue | undefined {
  if (key.startsWith('request.headers.')) return joined(s.requestHeaders, key.slice(16).toLowerCase());
  if (key.startsWith('response.headers.')) return joined(s.responseHeaders, key.slice(17).toLowerCase());
  return undefined;
}

/** A traffic-derived attribute of `s`, or undefined (NOT_FOUND). */
export function streamProperty(s: StreamFacts, key: string): PropertyValue | undefined {
  const resolve = BY_KEY.get(key);
  return resolve !== undefined ? resolve(s) : headerProperty(s, key);
}
