/**
 * Properties (Envoy "attributes") of a live request, as filters read them
 * with proxy_get_property. Computed on demand: a request whose filters read
 * no property pays nothing. Values are typed (host/vm/properties.ts encodes
 * them the Envoy way: strings raw, ints/durations/timestamps 8-byte LE).
 * Header-derived strings are returned as their raw bytes (latin1) so that
 * non-ASCII header bytes reach the guest unchanged.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { HeaderMap } from '../abi/header-map.js';
import { serializePairs } from '../abi/memory.js';
import { ByteString, type PropertyValue } from '../vm/properties.js';
import type { RouteEntry } from './generation.js';
import type { UpstreamTarget } from './upstream.js';

/** What a stream exposes to the property lookup. */
export interface LiveRequest {
  readonly req: IncomingMessage;
  readonly entry: RouteEntry;
  readonly requestId: string;
  readonly requestHeaders: HeaderMap;
  readonly responseHeaders: HeaderMap | null;
  /** Wall clock at the start, ns since the epoch. */
  readonly startWallNs: bigint;
  /** Monotonic clock at the start and (once done) at the end, ns. */
  readonly startMono: bigint;
  readonly endMono: bigint;
  readonly requestBodyBytes: number;
  readonly responseBodyBytes: number;
  readonly codeDetails: string;
  readonly target: UpstreamTarget | null;
  /** The request sent upstream (path after strip_path), once built. */
  readonly upstreamRequest: { readonly path: string } | null;
  /** The status the upstream answered, or 0. */
  readonly upstreamStatus: number;
  /** ns from the upstream request start to its last byte (or until now), or -1n when none. */
  backendLatency(): bigint;
}

const connectionIds = new WeakMap<Socket, number>();
let nextConnectionId = 1;

/** A stable id per downstream connection, assigned when first asked for. */
export function connectionId(socket: Socket): number {
  let id = connectionIds.get(socket);
  if (id === undefined) {
    id = nextConnectionId++;
    connectionIds.set(socket, id);
  }
  return id;
}

const bytes = (s: string | undefined): ByteString | undefined => (s === undefined ? undefined : new ByteString(s));

function joined(map: HeaderMap | null, name: string): ByteString | undefined {
  if (map === null) return undefined;
  const all = map.getAll(name);
  return all.length === 0 ? undefined : bytes(all.join(','));
}

function headerBytes(map: HeaderMap | null): number {
  if (map === null) return 0;
  // name + ": " + value + CRLF per header
  return map.byteSize + map.count * 4;
}

/**
 * hookwire.entities: the route's, service's and workspace's ids and names in
 * one map (keys as the single properties: route_id, route_name, ...), so a
 * logging filter gets them with one host call instead of six. The same for
 * every request of a route entry, so it is serialized once per entry.
 */
const entitiesByEntry = new WeakMap<RouteEntry, Uint8Array>();

function entities(entry: RouteEntry): Uint8Array {
  let map = entitiesByEntry.get(entry);
  if (map === undefined) {
    const { route, service, workspace } = entry.resolved;
    const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1'); // pairs carry bytes
    map = serializePairs([
      'route_id', utf8(route.id), 'route_name', utf8(route.name),
      'service_id', utf8(service.id), 'service_name', utf8(service.name),
      'workspace_id', utf8(workspace.id), 'workspace_name', utf8(workspace.name),
    ]);
    entitiesByEntry.set(entry, map);
  }
  return map;
}

function hostPort(address: string | undefined, port: number | undefined): string | undefined {
  if (address === undefined) return undefined;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

// A connection's addresses do not change: formatted once per socket (logging
// filters read source.address on every request of a keep-alive connection).
const kSourceAddress = Symbol('hookwire.sourceAddress');
const kDestinationAddress = Symbol('hookwire.destinationAddress');
type AddressedSocket = Socket & { [kSourceAddress]?: string; [kDestinationAddress]?: string };

function sourceAddress(socket: AddressedSocket): string | undefined {
  return (socket[kSourceAddress] ??= hostPort(socket.remoteAddress, socket.remotePort));
}

function destinationAddress(socket: AddressedSocket): string | undefined {
  return (socket[kDestinationAddress] ??= hostPort(socket.localAddress, socket.localPort));
}

type Resolver = (s: LiveRequest) => PropertyValue | undefined;

/**
 * Each attribute's resolver, by canonical key. A table rather than a switch:
 * one hash lookup, where a switch compares the key with every case before it
 * (and filters read a dozen attributes per request).
 */
const RESOLVERS = new Map<string, Resolver>([
  ['request.path', (s) => bytes(s.requestHeaders.get(':path'))],
  ['request.url_path', (s) => {
    const p = s.requestHeaders.get(':path');
    if (p === undefined) return undefined;
    const q = p.indexOf('?');
    return bytes(q < 0 ? p : p.slice(0, q));
  }],
  ['request.host', (s) => bytes(s.requestHeaders.get(':authority'))],
  ['request.scheme', (s) => bytes(s.requestHeaders.get(':scheme'))],
  ['request.method', (s) => bytes(s.requestHeaders.get(':method'))],
  ['request.headers', (s) => s.requestHeaders],
  ['request.referer', (s) => bytes(s.requestHeaders.get('referer'))],
  ['request.useragent', (s) => bytes(s.requestHeaders.get('user-agent'))],
  ['request.time', (s) => s.startWallNs],
  ['request.id', (s) => s.requestId],
  ['request.protocol', (s) => `HTTP/${s.req.httpVersion}`],
  ['request.query', (s) => {
    const p = s.requestHeaders.get(':path') ?? '';
    const q = p.indexOf('?');
    return bytes(q < 0 ? '' : p.slice(q + 1));
  }],
  ['request.duration', (s) => (s.endMono > 0n ? s.endMono : process.hrtime.bigint()) - s.startMono],
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
  ['response.backend_latency', (s) => {
    const ns = s.backendLatency();
    return ns < 0n ? undefined : ns;
  }],
  ['source.address', (s) => sourceAddress(s.req.socket)],
  ['source.port', (s) => s.req.socket.remotePort],
  ['destination.address', (s) => destinationAddress(s.req.socket)],
  ['destination.port', (s) => s.req.socket.localPort],
  ['connection.id', (s) => connectionId(s.req.socket)],
  ['upstream.address', (s) => s.target?.address],
  ['xds.route_name', (s) => s.entry.resolved.route.name],
  ['hookwire.route_name', (s) => s.entry.resolved.route.name],
  ['xds.cluster_name', (s) => s.entry.resolved.service.name],
  ['hookwire.service_name', (s) => s.entry.resolved.service.name],
  ['hookwire.route_id', (s) => s.entry.resolved.route.id],
  ['hookwire.service_id', (s) => s.entry.resolved.service.id],
  ['hookwire.workspace_id', (s) => s.entry.resolved.workspace.id],
  ['hookwire.workspace_name', (s) => s.entry.resolved.workspace.name],
  ['hookwire.entities', (s) => entities(s.entry)],
  ['hookwire.upstream_uri', (s) => (s.upstreamRequest === null ? undefined : bytes(s.upstreamRequest.path))],
  // Kong's upstream_status is a string; "" when no upstream answered.
  ['hookwire.upstream_status', (s) => (s.upstreamStatus === 0 ? '' : String(s.upstreamStatus))],
  // No authenticated consumer yet (auth plugins come later).
  ['hookwire.consumer_id', () => undefined],
  ['hookwire.consumer_username', () => undefined],
]);

/** Every property the data plane answers (besides plugin_name, plugin_root_id, plugin_vm_id from the VM layer). */
export const REQUEST_PROPERTIES: readonly string[] = [...RESOLVERS.keys(), 'request.headers.<name>', 'response.headers.<name>'];

/** The value of `key` (canonical dotted form) for a live request, or undefined (NOT_FOUND). */
export function requestProperty(s: LiveRequest, key: string): PropertyValue | undefined {
  const resolve = RESOLVERS.get(key);
  if (resolve !== undefined) return resolve(s);
  if (key.startsWith('request.headers.')) return joined(s.requestHeaders, key.slice(16).toLowerCase());
  if (key.startsWith('response.headers.')) return joined(s.responseHeaders, key.slice(17).toLowerCase());
  return undefined;
}
