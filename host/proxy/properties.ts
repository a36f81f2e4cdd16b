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

/** Every property the data plane answers (besides plugin_name, plugin_root_id, plugin_vm_id from the VM layer). */
export const REQUEST_PROPERTIES = [
  'request.path',
  'request.url_path',
  'request.host',
  'request.scheme',
  'request.method',
  'request.headers',
  'request.headers.<name>',
  'request.referer',
  'request.useragent',
  'request.time',
  'request.id',
  'request.protocol',
  'request.query',
  'request.duration',
  'request.size',
  'request.total_size',
  'response.code',
  'response.code_details',
  'response.headers',
  'response.headers.<name>',
  'response.size',
  'response.total_size',
  'response.backend_latency',
  'source.address',
  'source.port',
  'destination.address',
  'destination.port',
  'connection.id',
  'upstream.address',
  'xds.route_name',
  'xds.cluster_name',
  'hookwire.route_id',
  'hookwire.route_name',
  'hookwire.service_id',
  'hookwire.service_name',
  'hookwire.workspace_id',
  'hookwire.workspace_name',
  'hookwire.consumer_id',
  'hookwire.consumer_username',
  'hookwire.entities',
  'hookwire.upstream_uri',
  'hookwire.upstream_status',
] as const;

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

/** The value of `key` (canonical dotted form) for a live request, or undefined (NOT_FOUND). */
export function requestProperty(s: LiveRequest, key: string): PropertyValue | undefined {
  const h = s.requestHeaders;
  switch (key) {
    case 'request.path':
      return bytes(h.get(':path'));
    case 'request.url_path': {
      const p = h.get(':path');
      if (p === undefined) return undefined;
      const q = p.indexOf('?');
      return bytes(q < 0 ? p : p.slice(0, q));
    }
    case 'request.host':
      return bytes(h.get(':authority'));
    case 'request.scheme':
      return bytes(h.get(':scheme'));
    case 'request.method':
      return bytes(h.get(':method'));
    case 'request.headers':
      return h;
    case 'request.referer':
      return bytes(h.get('referer'));
    case 'request.useragent':
      return bytes(h.get('user-agent'));
    case 'request.time':
      return s.startWallNs;
    case 'request.id':
      return s.requestId;
    case 'request.protocol':
      return `HTTP/${s.req.httpVersion}`;
    case 'request.query': {
      const p = h.get(':path') ?? '';
      const q = p.indexOf('?');
      return bytes(q < 0 ? '' : p.slice(q + 1));
    }
    case 'request.duration':
      return (s.endMono > 0n ? s.endMono : process.hrtime.bigint()) - s.startMono;
    case 'request.size':
      return s.requestBodyBytes;
    case 'request.total_size':
      return s.requestBodyBytes + headerBytes(h);
    case 'response.code': {
      const code = s.responseHeaders?.get(':status');
      return code === undefined ? undefined : Number(code);
    }
    case 'response.code_details':
      return s.codeDetails === '' ? undefined : s.codeDetails;
    case 'response.headers':
      return s.responseHeaders ?? undefined;
    case 'response.size':
      return s.responseHeaders === null ? undefined : s.responseBodyBytes;
    case 'response.total_size':
      return s.responseHeaders === null ? undefined : s.responseBodyBytes + headerBytes(s.responseHeaders);
    case 'response.backend_latency': {
      const ns = s.backendLatency();
      return ns < 0n ? undefined : ns;
    }
    case 'source.address':
      return sourceAddress(s.req.socket);
    case 'source.port':
      return s.req.socket.remotePort;
    case 'destination.address':
      return destinationAddress(s.req.socket);
    case 'destination.port':
      return s.req.socket.localPort;
    case 'connection.id':
      return connectionId(s.req.socket);
    case 'upstream.address':
      return s.target?.address;
    case 'xds.route_name':
    case 'hookwire.route_name':
      return s.entry.resolved.route.name;
    case 'xds.cluster_name':
    case 'hookwire.service_name':
      return s.entry.resolved.service.name;
    case 'hookwire.route_id':
      return s.entry.resolved.route.id;
    case 'hookwire.service_id':
      return s.entry.resolved.service.id;
    case 'hookwire.workspace_id':
      return s.entry.resolved.workspace.id;
    case 'hookwire.workspace_name':
      return s.entry.resolved.workspace.name;
    case 'hookwire.entities':
      return entities(s.entry);
    case 'hookwire.upstream_uri':
      return s.upstreamRequest === null ? undefined : bytes(s.upstreamRequest.path);
    case 'hookwire.upstream_status':
      // Kong's upstream_status is a string; "" when no upstream answered.
      return s.upstreamStatus === 0 ? '' : String(s.upstreamStatus);
    case 'hookwire.consumer_id':
    case 'hookwire.consumer_username':
      return undefined; // no authenticated consumer yet (auth plugins come later)
  }
  if (key.startsWith('request.headers.')) return joined(h, key.slice(16).toLowerCase());
  if (key.startsWith('response.headers.')) return joined(s.responseHeaders, key.slice(17).toLowerCase());
  return undefined;
}
