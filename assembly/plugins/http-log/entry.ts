// The log entry: Kong's kong.log.serialize() (http subsystem), built from
// proxy-wasm properties and header maps in on_log and written straight into
// JSON bytes (no intermediate tree). Key order is fixed:
//   request {id, uri, url, querystring, method, headers, size}, upstream_uri,
//   upstream_status, response {status, headers, size}, latencies {kong, proxy,
//   request, receive}, tries, client_ip, started_at, source, route, service,
//   consumer, workspace, workspace_name, then custom fields that add keys.
//
// Host calls are most of a filter's cost, so the entry takes what it can from
// the two header maps it reads anyway (:path, :method, :authority, :scheme,
// x-request-id, :status, as Envoy's request.path/method/host/scheme/id and
// response.code are those headers), the route, service and workspace from
// hookwire.entities (one map), and reads everything into scratch memory
// (event-hooks/scratch.ts): values are views, nothing is copied or collected.
// Properties use NUL-separated paths (names.ts) and Envoy's encodings; any of
// them may be missing, and each has a fallback (the single properties Envoy offers).
import { JsonWriter } from "../../event-hooks/json";
import { readHeaderMap, readProperty, resetScratch, Slice, sliceInt } from "../../event-hooks/scratch";
import { CustomNode, finish, nextEntry, objectKey, scalarKey, scalarKeyBytes, sub } from "./custom";
import { unescapeQuery } from "./url";
import {
  AUTHORITY_KEY, AUTHORIZATION, CONSUMER_ID_KEY, CONSUMER_USERNAME_KEY, HOST_KEY, HTTPS, K_BALANCER_LATENCY,
  K_CIPHER, K_CLIENT_IP, K_CLIENT_VERIFY, K_CONSUMER, K_HEADERS, K_ID, K_IP, K_KONG, K_LATENCIES, K_METHOD,
  K_NAME, K_PORT, K_PROXY, K_QUERYSTRING, K_RECEIVE, K_REQUEST, K_RESPONSE, K_ROUTE, K_SERVICE, K_SIZE,
  K_SOURCE, K_STARTED_AT, K_STATUS, K_TLS, K_TRIES, K_UPSTREAM_STATUS, K_UPSTREAM_URI, K_URI, K_URL,
  K_USERNAME, K_VERSION, K_WORKSPACE, K_WORKSPACE_NAME, METHOD_KEY, PATH_KEY, PROXY_AUTHORIZATION,
  P_CONSUMER_ID, P_CONSUMER_USERNAME, P_DEST_PORT, P_ENTITIES, P_REQ_HEADERS, P_REQ_HOST, P_REQ_ID,
  P_REQ_METHOD, P_REQ_PATH, P_REQ_QUERY, P_REQ_SCHEME, P_REQ_TIME, P_REQ_TOTAL_SIZE, P_REQ_URL_PATH,
  P_RESP_BACKEND_LATENCY, P_RESP_CODE, P_RESP_HEADERS, P_RESP_TOTAL_SIZE, P_ROUTE_ID, P_ROUTE_NAME,
  P_SERVICE_ID, P_SERVICE_NAME, P_SOURCE_ADDRESS, P_TLS_CIPHER, P_TLS_CLIENT_VERIFY, P_TLS_VERSION,
  P_UPSTREAM_ADDRESS, P_UPSTREAM_STATUS, P_UPSTREAM_URI, P_WORKSPACE_ID, P_WORKSPACE_NAME, P_XDS_CLUSTER_NAME,
  P_XDS_ROUTE_NAME, REQUEST_ID_KEY, ROUTE_ID_KEY, ROUTE_NAME_KEY, SCHEME_KEY, SERVICE_ID_KEY,
  SERVICE_NAME_KEY, STATUS_KEY, WORKSPACE_ID_KEY, WORKSPACE_NAME_KEY, key, NAMES, PATHS,
} from "./names";

/** Most query arguments decoded, as ngx.req.get_uri_args' default. */
const MAX_QUERY_ARGS = 100;

/**
 * Who the request was for, kept from the last entry for the event hooks data (views valid until the next entry).
 * Unmanaged, as its Slices: the one instance lives as long as the module.
 */
@unmanaged
export class Identity {
  clientIp: Slice = new Slice();
  routeId: Slice = new Slice();
  routeName: Slice = new Slice();
  serviceId: Slice = new Slice();
  serviceName: Slice = new Slice();
  consumerId: Slice = new Slice();
  consumerUsername: Slice = new Slice();
  workspaceId: Slice = new Slice();
  workspaceName: Slice = new Slice();
}

export const identity = new Identity();

// Scratch space reused by every entry.
const scratch = new JsonWriter(256);
/** The uri when it has to be put together from request.url_path and request.query. */
const uriBuf = new JsonWriter(256);
let decoded = new ArrayBuffer(256);

/**
 * The pairs of a map or query: (name ptr, name len, value
 * ptr, value len) records in one reused block, plus a byte per pair for the
 * grouping of repeated names. A value length of -1 is a query flag (true).
 */
class Pairs {
  private recs: ArrayBuffer = new ArrayBuffer(64 << 4);
  private marks: ArrayBuffer = new ArrayBuffer(64);
  count: i32 = 0;

  reset(): void {
    this.count = 0;
  }

  push(kp: usize, kl: i32, vp: usize, vl: i32): void {
    if (((this.count + 1) << 4) > this.recs.byteLength) this.grow();
    this.set(this.count++, kp, kl, vp, vl);
  }

  private grow(): void {
    const recs = new ArrayBuffer(this.recs.byteLength << 1);
    memory.copy(changetype<usize>(recs), changetype<usize>(this.recs), <usize>this.count << 4);
    this.recs = recs;
    this.marks = new ArrayBuffer(this.marks.byteLength << 1);
  }

  set(i: i32, kp: usize, kl: i32, vp: usize, vl: i32): void {
    const r = changetype<usize>(this.recs) + (<usize>i << 4);
    store<u32>(r, <u32>kp);
    store<i32>(r, kl, 4);
    store<u32>(r, <u32>vp, 8);
    store<i32>(r, vl, 12);
  }

  @inline kp(i: i32): usize { return <usize>load<u32>(changetype<usize>(this.recs) + (<usize>i << 4)); }
  @inline kl(i: i32): i32 { return load<i32>(changetype<usize>(this.recs) + (<usize>i << 4), 4); }
  @inline vp(i: i32): usize { return <usize>load<u32>(changetype<usize>(this.recs) + (<usize>i << 4), 8); }
  @inline vl(i: i32): i32 { return load<i32>(changetype<usize>(this.recs) + (<usize>i << 4), 12); }

  clearMarks(): void {
    memory.fill(changetype<usize>(this.marks), 0, <usize>this.count);
  }

  @inline marked(i: i32): bool { return load<u8>(changetype<usize>(this.marks) + <usize>i) != 0; }
  @inline mark(i: i32): void { store<u8>(changetype<usize>(this.marks) + <usize>i, 1); }
}

/** The two header maps (parsed once each), and scratch pairs for the entities map and the query. */
const requestPairs = new Pairs();
const responsePairs = new Pairs();
const pairs = new Pairs();

// The values of one entry (views into scratch memory).
const requestMap = new Slice();
const responseMap = new Slice();
const reqId = new Slice();
const uri = new Slice();
const query = new Slice();
const method = new Slice();
const scheme = new Slice();
const rawHost = new Slice();
const statusCode = new Slice();
const source = new Slice();
const upstream = new Slice();
const upstreamUri = new Slice();
const tlsVersion = new Slice();
const tlsCipher = new Slice();
const tlsClientVerify = new Slice();
const upstreamStatus = new Slice();
const hostName = new Slice();
const tmp = new Slice();

/** Whether the n bytes at p are NAMES entry `name`. */
function bytesEqual(p: usize, n: i32, name: i32): bool {
  return NAMES.equals(name, p, n);
}

/** Read a property (PATHS entry `path`) into scratch memory (readProperty). */
function readPath(path: i32): bool {
  return readProperty(PATHS.ptr(path), PATHS.len(path));
}

function indexOfByte(p: usize, n: i32, c: u8, from: i32 = 0): i32 {
  for (let i = from; i < n; i++) if (load<u8>(p + i) == c) return i;
  return -1;
}

/** "ip:port" / "[v6]:port" / "v6" → `out` = the address without port or brackets. */
function addressHost(a: Slice, out: Slice): void {
  if (!a.ok) {
    out.clear();
    return;
  }
  const p = a.ptr;
  const n = a.len;
  if (n > 0 && load<u8>(p) == 0x5b) {
    const close = indexOfByte(p, n, 0x5d);
    if (close > 0) out.set(p + 1, close - 1);
    else out.setFrom(a);
    return;
  }
  const colon = indexOfByte(p, n, 0x3a);
  if (colon >= 0 && indexOfByte(p, n, 0x3a, colon + 1) < 0) out.set(p, colon);
  else out.setFrom(a);
}

/** The port of "ip:port" / "[v6]:port", or -1. */
function addressPort(a: Slice): i64 {
  if (!a.ok) return -1;
  const n = a.len;
  const p = a.ptr;
  let colon = -1;
  if (n > 0 && load<u8>(p) == 0x5b) {
    const close = indexOfByte(p, n, 0x5d);
    if (close > 0 && close + 1 < n && load<u8>(p + close + 1) == 0x3a) colon = close + 1;
  } else {
    colon = indexOfByte(p, n, 0x3a);
    if (colon >= 0 && indexOfByte(p, n, 0x3a, colon + 1) >= 0) colon = -1;
  }
  if (colon < 0 || colon + 1 >= n) return -1;
  let port: i64 = 0;
  for (let i = colon + 1; i < n; i++) {
    const c = load<u8>(p + i);
    if (c < 0x30 || c > 0x39 || port > 65535) return -1;
    port = port * 10 + <i64>(c - 0x30);
  }
  return port;
}

/** request.host (Envoy's :authority) → `out` = the host, and its port (or -1) returned. */
function splitHost(h: Slice, out: Slice): i64 {
  const port = addressPort(h);
  if (port < 0) {
    out.setFrom(h);
    return port;
  }
  const p = h.ptr;
  if (h.len > 0 && load<u8>(p) == 0x5b) out.set(p, indexOfByte(p, h.len, 0x5d) + 1);
  else out.set(p, indexOfByte(p, h.len, 0x3a));
  return port;
}

/** A string, or null when the host has no such property (Envoy has no cipher or client_verify attribute). */
function strOrNull(w: JsonWriter, v: Slice): void {
  if (!v.ok) w.nul();
  else w.strBytes(v.ptr, v.len);
}

function strOr(w: JsonWriter, v: Slice): void {
  if (!v.ok) w.str("");
  else w.strBytes(v.ptr, v.len);
}

/** Read into `s` a property, when `s` is not set yet; returns s.ok. */
function fill(s: Slice, path: i32): bool {
  if (s.ok) return true;
  return s.fromRead(readPath(path));
}

/** Parse a proxy-wasm pairs map (ptr, size) into `list`; false if malformed. */
function readPairs(list: Pairs, p: usize, size: i32): bool {
  list.reset();
  if (size < 4) return size <= 1; // empty map: 0 bytes or a single 0
  const count = <i32>load<u32>(p);
  if (count < 0 || 4 + <i64>count * 8 > <i64>size) return false;
  let data = p + 4 + <usize>count * 8;
  const end = p + <usize>size;
  for (let i = 0; i < count; i++) {
    const kl = <i32>load<u32>(p + 4 + <usize>i * 8);
    const vl = <i32>load<u32>(p + 8 + <usize>i * 8);
    if (kl < 0 || vl < 0 || data + <usize>kl + <usize>vl + 2 > end) return false;
    list.push(data, kl, data + <usize>kl + 1, vl);
    data += <usize>kl + <usize>vl + 2;
  }
  return true;
}

function parseMap(m: Slice, list: Pairs): bool {
  if (m.ok && readPairs(list, m.ptr, m.len)) return true;
  list.reset();
  return false;
}

/** After parseMap: `out` = the first value of `key`, when `out` is not set yet. */
function take(list: Pairs, name: i32, out: Slice): void {
  if (out.ok) return;
  for (let i = 0; i < list.count; i++) {
    if (bytesEqual(list.kp(i), list.kl(i), name)) {
      out.set(list.vp(i), list.vl(i));
      return;
    }
  }
}

/**
 * Write `pairs` as a JSON object: repeated names become arrays (as Kong's
 * get_headers/get_query return them), flags are true.
 */
function writeGrouped(w: JsonWriter, list: Pairs, node: CustomNode | null, redact: bool): void {
  const n = list.count;
  list.clearMarks();
  w.beginObject();
  for (let i = 0; i < n; i++) {
    if (list.marked(i)) continue;
    const kp = list.kp(i);
    const kl = list.kl(i);
    let count = 1;
    for (let j = i + 1; j < n; j++) {
      if (!list.marked(j) && list.kl(j) == kl && memory.compare(list.kp(j), kp, kl) == 0) {
        list.mark(j);
        count++;
      }
    }
    if (!scalarKeyBytes(w, node, kp, kl)) continue;
    if (redact && (bytesEqual(kp, kl, AUTHORIZATION) || bytesEqual(kp, kl, PROXY_AUTHORIZATION))) {
      w.str("REDACTED");
      continue;
    }
    if (count == 1) {
      if (list.vl(i) < 0) w.bool(true);
      else w.strBytes(list.vp(i), list.vl(i));
      continue;
    }
    w.beginArray();
    for (let j = i; j < n; j++) {
      if (j != i && !(list.kl(j) == kl && memory.compare(list.kp(j), kp, kl) == 0)) continue;
      if (list.vl(j) < 0) w.bool(true);
      else w.strBytes(list.vp(j), list.vl(j));
    }
    w.endArray();
  }
  finish(w, node);
}

/** request.headers / response.headers: lower-case names, pseudo-headers left out (request :authority becomes host). */
function writeHeaders(w: JsonWriter, list: Pairs, node: CustomNode | null, request: bool): void {
  let hasHost = false;
  for (let i = 0; i < list.count; i++) if (bytesEqual(list.kp(i), list.kl(i), HOST_KEY)) hasHost = true;
  // Drop pseudo-headers, in place.
  let o = 0;
  for (let i = 0; i < list.count; i++) {
    let kp = list.kp(i);
    let kl = list.kl(i);
    if (kl > 0 && load<u8>(kp) == 0x3a) {
      if (!(request && !hasHost && bytesEqual(kp, kl, AUTHORITY_KEY))) continue;
      kp = NAMES.ptr(HOST_KEY);
      kl = NAMES.len(HOST_KEY);
      hasHost = true;
    }
    list.set(o++, kp, kl, list.vp(i), list.vl(i));
  }
  list.count = o;
  writeGrouped(w, list, node, request);
}

/** request.querystring from the raw query ("a=1&b&a=2"): decoded, flags true, repeats as arrays. */
function writeQuery(w: JsonWriter, q: Slice, node: CustomNode | null): void {
  const list = pairs;
  list.reset();
  if (q.ok && q.len > 0) {
    const n = q.len;
    if (decoded.byteLength < n) decoded = new ArrayBuffer(n);
    const src = q.ptr;
    const dst = changetype<usize>(decoded);
    let out = 0;
    let start = 0;
    while (start <= n && list.count < MAX_QUERY_ARGS) {
      let end = start;
      while (end < n && load<u8>(src + end) != 0x26) end++;
      if (end > start) {
        let eq = start;
        while (eq < end && load<u8>(src + eq) != 0x3d) eq++;
        const klen = unescapeQuery(src + start, eq - start, dst + out);
        if (klen > 0) {
          const kp = dst + out;
          out += klen;
          if (eq < end) {
            const vl = unescapeQuery(src + eq + 1, end - eq - 1, dst + out);
            list.push(kp, klen, dst + out, vl);
            out += vl;
          } else {
            list.push(kp, klen, 0, -1);
          }
        }
      }
      start = end + 1;
    }
  }
  writeGrouped(w, list, node, false);
}

/** A header map from its property (request.headers / response.headers), else from the stream's map. */
function readMap(out: Slice, path: i32, mapType: i32): void {
  if (!out.fromRead(readPath(path))) out.fromRead(readHeaderMap(mapType));
}

/** hookwire.entities (one map) into the identity, else each single property, then Envoy's xds.* names. */
function readIdentity(ident: Identity): void {
  ident.routeId.clear();
  ident.routeName.clear();
  ident.serviceId.clear();
  ident.serviceName.clear();
  ident.workspaceId.clear();
  ident.workspaceName.clear();
  ident.consumerId.clear();
  ident.consumerUsername.clear();
  if (tmp.fromRead(readPath(P_ENTITIES)) && parseMap(tmp, pairs)) {
    const list = pairs;
    for (let i = 0; i < list.count; i++) {
      const kp = list.kp(i);
      const kl = list.kl(i);
      let into: Slice | null = null;
      if (bytesEqual(kp, kl, ROUTE_ID_KEY)) into = ident.routeId;
      else if (bytesEqual(kp, kl, ROUTE_NAME_KEY)) into = ident.routeName;
      else if (bytesEqual(kp, kl, SERVICE_ID_KEY)) into = ident.serviceId;
      else if (bytesEqual(kp, kl, SERVICE_NAME_KEY)) into = ident.serviceName;
      else if (bytesEqual(kp, kl, WORKSPACE_ID_KEY)) into = ident.workspaceId;
      else if (bytesEqual(kp, kl, WORKSPACE_NAME_KEY)) into = ident.workspaceName;
      else if (bytesEqual(kp, kl, CONSUMER_ID_KEY)) into = ident.consumerId;
      else if (bytesEqual(kp, kl, CONSUMER_USERNAME_KEY)) into = ident.consumerUsername;
      if (into !== null && !into.ok) into.set(list.vp(i), list.vl(i));
    }
    return;
  }
  fill(ident.routeId, P_ROUTE_ID);
  if (!fill(ident.routeName, P_ROUTE_NAME)) fill(ident.routeName, P_XDS_ROUTE_NAME);
  fill(ident.serviceId, P_SERVICE_ID);
  if (!fill(ident.serviceName, P_SERVICE_NAME)) fill(ident.serviceName, P_XDS_CLUSTER_NAME);
  fill(ident.consumerId, P_CONSUMER_ID);
  fill(ident.consumerUsername, P_CONSUMER_USERNAME);
  fill(ident.workspaceId, P_WORKSPACE_ID);
  fill(ident.workspaceName, P_WORKSPACE_NAME);
}

function writeNamed(w: JsonWriter, node: CustomNode | null, k: i32, id: Slice, nameKey: i32, name: Slice): void {
  if (!objectKey(w, node, k)) return;
  const s = sub;
  w.beginObject();
  if (id.ok && scalarKey(w, s, K_ID)) w.strBytes(id.ptr, id.len);
  if (name.ok && scalarKey(w, s, nameKey)) w.strBytes(name.ptr, name.len);
  finish(w, s);
}

/**
 * Write one log entry into `w` (reset by the caller). `nowMs` (the host's
 * clock, read once per entry) gives the request's duration.
 */
export function writeEntry(w: JsonWriter, custom: CustomNode | null, nowMs: i64): void {
  nextEntry();
  resetScratch();
  // ---- what the host knows about the request
  reqId.clear();
  uri.clear();
  query.clear();
  method.clear();
  scheme.clear();
  rawHost.clear();
  statusCode.clear();
  readMap(requestMap, P_REQ_HEADERS, 0);
  if (parseMap(requestMap, requestPairs)) {
    // One pass: the first of each (pseudo-headers come first in Envoy's maps).
    const list = requestPairs;
    for (let i = 0; i < list.count; i++) {
      const kp = list.kp(i);
      const kl = list.kl(i);
      let into: Slice | null = null;
      if (kl > 0 && load<u8>(kp) == 0x3a) {
        if (bytesEqual(kp, kl, PATH_KEY)) into = uri;
        else if (bytesEqual(kp, kl, METHOD_KEY)) into = method;
        else if (bytesEqual(kp, kl, AUTHORITY_KEY)) into = rawHost;
        else if (bytesEqual(kp, kl, SCHEME_KEY)) into = scheme;
      } else if (bytesEqual(kp, kl, REQUEST_ID_KEY)) into = reqId;
      if (into !== null && !into.ok) into.set(list.vp(i), list.vl(i));
    }
  }
  readMap(responseMap, P_RESP_HEADERS, 2);
  if (parseMap(responseMap, responsePairs)) take(responsePairs, STATUS_KEY, statusCode);

  fill(reqId, P_REQ_ID);
  if (fill(uri, P_REQ_PATH)) {
    const qm = indexOfByte(uri.ptr, uri.len, 0x3f);
    if (qm >= 0) query.set(uri.ptr + qm + 1, uri.len - qm - 1);
    else query.set(uri.ptr, 0);
  } else {
    fill(query, P_REQ_QUERY);
    if (tmp.fromRead(readPath(P_REQ_URL_PATH))) {
      uriBuf.reset();
      uriBuf.rawBytes(tmp.ptr, tmp.len);
      if (query.ok && query.len > 0) {
        uriBuf.rawByte(0x3f);
        uriBuf.rawBytes(query.ptr, query.len);
      }
      uri.set(uriBuf.ptr, uriBuf.len);
    }
  }
  fill(method, P_REQ_METHOD);
  fill(scheme, P_REQ_SCHEME);
  fill(rawHost, P_REQ_HOST);
  const status = statusCode.ok ? sliceInt(statusCode, 0) : tmp.fromRead(readPath(P_RESP_CODE)) ? sliceInt(tmp, 0) : 0;
  const destPort = tmp.fromRead(readPath(P_DEST_PORT)) ? sliceInt(tmp, -1) : -1;
  const requestSize = tmp.fromRead(readPath(P_REQ_TOTAL_SIZE)) ? sliceInt(tmp, 0) : 0;
  const startNs = tmp.fromRead(readPath(P_REQ_TIME)) ? sliceInt(tmp, -1) : -1;
  const responseSize = tmp.fromRead(readPath(P_RESP_TOTAL_SIZE)) ? sliceInt(tmp, 0) : 0;
  const backendNs = tmp.fromRead(readPath(P_RESP_BACKEND_LATENCY)) ? sliceInt(tmp, -1) : -1;
  source.fromRead(readPath(P_SOURCE_ADDRESS));
  upstream.fromRead(readPath(P_UPSTREAM_ADDRESS));
  upstreamUri.fromRead(readPath(P_UPSTREAM_URI));
  upstreamStatus.fromRead(readPath(P_UPSTREAM_STATUS));
  // Kong's request.tls: only on TLS connections (plaintext requests make no extra host call);
  // connection.tls_version says the host knows the connection (an https :scheme alone may come from a header).
  const https = scheme.ok && bytesEqual(scheme.ptr, scheme.len, HTTPS);
  if (https) {
    tlsVersion.fromRead(readPath(P_TLS_VERSION));
    tlsCipher.fromRead(readPath(P_TLS_CIPHER));
    tlsClientVerify.fromRead(readPath(P_TLS_CLIENT_VERIFY));
  }

  const ident = identity;
  addressHost(source, ident.clientIp);
  readIdentity(ident);

  // Latencies in ms. request: from the start until now (on_log runs when the
  // response is over); proxy: time spent on the upstream (-1 without one, as
  // Kong); kong: the rest of the request time.
  const requestMs: i64 = startNs >= 0 ? max<i64>(0, nowMs - startNs / 1_000_000) : 0;
  const proxyMs: i64 = backendNs >= 0 ? backendNs / 1_000_000 : -1;
  const kongMs: i64 = proxyMs >= 0 ? max<i64>(0, requestMs - proxyMs) : requestMs;
  const startedAt: i64 = startNs >= 0 ? startNs / 1_000_000 : nowMs - requestMs;

  // upstream_status: hookwire's own, else (Envoy) the response code when an upstream host was picked.
  let statusPtr: usize = upstreamStatus.ptr;
  let statusLen: i32 = upstreamStatus.len;
  let hasStatus = upstreamStatus.ok;
  if (!hasStatus && upstream.ok && status > 0) {
    scratch.reset();
    scratch.rawInt(status);
    statusPtr = scratch.ptr;
    statusLen = scratch.len;
    hasStatus = true;
  }
  const fromUpstream = hasStatus && statusLen > 0;

  // ---- the entry
  w.beginObject();
  const root = custom;

  if (objectKey(w, root, K_REQUEST)) {
    const s = sub;
    w.beginObject();
    if (scalarKey(w, s, K_ID)) strOr(w, reqId);
    if (scalarKey(w, s, K_URI)) strOr(w, uri);
    if (scalarKey(w, s, K_URL)) {
      let port = destPort;
      const hostPort = rawHost.ok ? splitHost(rawHost, hostName) : -1;
      if (port < 0) port = hostPort;
      if (port < 0) port = https ? 443 : 80;
      // Written in place, piece by piece, as one JSON string.
      w.beginString();
      if (scheme.ok) w.stringBytes(scheme.ptr, scheme.len);
      else w.stringAscii("http");
      w.stringAscii("://");
      if (rawHost.ok) w.stringBytes(hostName.ptr, hostName.len);
      w.stringAscii(":");
      w.stringInt(port);
      if (uri.ok) w.stringBytes(uri.ptr, uri.len);
      w.endString();
    }
    if (objectKey(w, s, K_QUERYSTRING)) writeQuery(w, query, sub);
    if (scalarKey(w, s, K_METHOD)) strOr(w, method);
    if (objectKey(w, s, K_HEADERS)) writeHeaders(w, requestPairs, sub, true);
    if (scalarKey(w, s, K_SIZE)) w.int(requestSize);
    if (https && tlsVersion.ok && objectKey(w, s, K_TLS)) {
      const t = sub;
      w.beginObject();
      if (scalarKey(w, t, K_VERSION)) strOrNull(w, tlsVersion);
      if (scalarKey(w, t, K_CIPHER)) strOrNull(w, tlsCipher);
      if (scalarKey(w, t, K_CLIENT_VERIFY)) strOrNull(w, tlsClientVerify);
      finish(w, t);
    }
    finish(w, s);
  }

  if (scalarKey(w, root, K_UPSTREAM_URI)) {
    if (upstreamUri.ok) w.strBytes(upstreamUri.ptr, upstreamUri.len);
    else strOr(w, uri);
  }
  if (scalarKey(w, root, K_UPSTREAM_STATUS)) {
    if (hasStatus) w.strBytes(statusPtr, statusLen);
    else w.str("");
  }

  if (objectKey(w, root, K_RESPONSE)) {
    const s = sub;
    w.beginObject();
    if (scalarKey(w, s, K_STATUS)) w.int(status);
    if (objectKey(w, s, K_HEADERS)) writeHeaders(w, responsePairs, sub, false);
    if (scalarKey(w, s, K_SIZE)) w.int(responseSize);
    finish(w, s);
  }

  if (objectKey(w, root, K_LATENCIES)) {
    const s = sub;
    w.beginObject();
    if (scalarKey(w, s, K_KONG)) w.int(kongMs);
    if (scalarKey(w, s, K_PROXY)) w.int(proxyMs);
    if (scalarKey(w, s, K_REQUEST)) w.int(requestMs);
    if (scalarKey(w, s, K_RECEIVE)) w.int(0);
    finish(w, s);
  }

  if (upstream.ok && scalarKey(w, root, K_TRIES)) {
    w.beginArray();
    w.beginObject();
    w.keyOf(key(K_IP));
    addressHost(upstream, tmp);
    w.strBytes(tmp.ptr, tmp.len);
    const port = addressPort(upstream);
    w.keyOf(key(K_PORT));
    if (port >= 0) w.int(port);
    else w.nul();
    w.keyOf(key(K_BALANCER_LATENCY));
    w.int(0);
    w.endObject();
    w.endArray();
  }

  if (scalarKey(w, root, K_CLIENT_IP)) strOr(w, ident.clientIp);
  if (scalarKey(w, root, K_STARTED_AT)) w.int(startedAt);
  if (scalarKey(w, root, K_SOURCE)) w.str(fromUpstream ? "upstream" : "kong");

  if (ident.routeId.ok || ident.routeName.ok) writeNamed(w, root, K_ROUTE, ident.routeId, K_NAME, ident.routeName);
  if (ident.serviceId.ok || ident.serviceName.ok) writeNamed(w, root, K_SERVICE, ident.serviceId, K_NAME, ident.serviceName);
  if (ident.consumerId.ok || ident.consumerUsername.ok) writeNamed(w, root, K_CONSUMER, ident.consumerId, K_USERNAME, ident.consumerUsername);

  if (ident.workspaceId.ok && scalarKey(w, root, K_WORKSPACE)) w.strBytes(ident.workspaceId.ptr, ident.workspaceId.len);
  if (ident.workspaceName.ok && scalarKey(w, root, K_WORKSPACE_NAME)) w.strBytes(ident.workspaceName.ptr, ident.workspaceName.len);

  finish(w, root);
}
