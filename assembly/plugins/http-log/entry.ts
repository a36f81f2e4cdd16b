// The log entry: Kong's kong.log.serialize() (http subsystem), built from
// proxy-wasm properties in on_log and written straight into JSON bytes (no
// intermediate tree). Key order is fixed:
//   request {id, uri, url, querystring, method, headers, size}, upstream_uri,
//   upstream_status, response {status, headers, size}, latencies {kong, proxy,
//   request, receive}, tries, client_ip, started_at, source, route, service,
//   consumer, workspace, workspace_name, then custom fields that add keys.
// Properties are read with NUL-separated paths in Envoy's encodings; any of
// them may be missing (see the fallbacks below).
import { JsonWriter } from "../../event-hooks/json";
import { getHeaderMapPairs, getProperty, getPropertyInt, propertyPath } from "../../event-hooks/host";
import { CustomNode, finish, nextEntry, objectKey, scalarKey, scalarKeyBytes, sub } from "./custom";
import { unescapeQuery } from "./url";

const P_REQ_ID = propertyPath("request.id");
const P_REQ_PATH = propertyPath("request.path");
const P_REQ_URL_PATH = propertyPath("request.url_path");
const P_REQ_QUERY = propertyPath("request.query");
const P_REQ_METHOD = propertyPath("request.method");
const P_REQ_SCHEME = propertyPath("request.scheme");
const P_REQ_HOST = propertyPath("request.host");
const P_REQ_HEADERS = propertyPath("request.headers");
const P_REQ_TOTAL_SIZE = propertyPath("request.total_size");
const P_REQ_TIME = propertyPath("request.time");
const P_REQ_DURATION = propertyPath("request.duration");
const P_RESP_CODE = propertyPath("response.code");
const P_RESP_HEADERS = propertyPath("response.headers");
const P_RESP_TOTAL_SIZE = propertyPath("response.total_size");
const P_RESP_BACKEND_LATENCY = propertyPath("response.backend_latency");
const P_SOURCE_ADDRESS = propertyPath("source.address");
const P_DEST_PORT = propertyPath("destination.port");
const P_UPSTREAM_ADDRESS = propertyPath("upstream.address");
const P_ROUTE_ID = propertyPath("hookwire.route_id");
const P_ROUTE_NAME = propertyPath("hookwire.route_name");
const P_SERVICE_ID = propertyPath("hookwire.service_id");
const P_SERVICE_NAME = propertyPath("hookwire.service_name");
const P_WORKSPACE_ID = propertyPath("hookwire.workspace_id");
const P_WORKSPACE_NAME = propertyPath("hookwire.workspace_name");
const P_CONSUMER_ID = propertyPath("hookwire.consumer_id");
const P_CONSUMER_USERNAME = propertyPath("hookwire.consumer_username");
const P_UPSTREAM_URI = propertyPath("hookwire.upstream_uri");
const P_UPSTREAM_STATUS = propertyPath("hookwire.upstream_status");
const P_XDS_ROUTE_NAME = propertyPath("xds.route_name");
const P_XDS_CLUSTER_NAME = propertyPath("xds.cluster_name");

const HTTPS = String.UTF8.encode("https");
const HOST_KEY = String.UTF8.encode("host");
const AUTHORITY_KEY = String.UTF8.encode(":authority");
const AUTHORIZATION = String.UTF8.encode("authorization");
const PROXY_AUTHORIZATION = String.UTF8.encode("proxy-authorization");

/** Most query arguments decoded, as ngx.req.get_uri_args' default. */
const MAX_QUERY_ARGS = 100;

/** Who the request was for, kept from the last entry for the event hooks data. */
export class Identity {
  clientIp: ArrayBuffer | null = null;
  routeId: ArrayBuffer | null = null;
  routeName: ArrayBuffer | null = null;
  serviceId: ArrayBuffer | null = null;
  serviceName: ArrayBuffer | null = null;
  consumerId: ArrayBuffer | null = null;
  consumerUsername: ArrayBuffer | null = null;
}

export const identity = new Identity();

// Scratch space reused by every entry.
const scratch = new JsonWriter(256);
let decoded = new ArrayBuffer(256);
const kPtr = new Array<usize>();
const kLen = new Array<i32>();
const vPtr = new Array<usize>();
const vLen = new Array<i32>(); // -1: a query flag (true)
const used = new Array<bool>();

function bytesEqual(p: usize, n: i32, b: ArrayBuffer): bool {
  return n == b.byteLength && memory.compare(p, changetype<usize>(b), n) == 0;
}

function indexOfByte(b: ArrayBuffer, c: u8, from: i32 = 0): i32 {
  const p = changetype<usize>(b);
  for (let i = from; i < b.byteLength; i++) if (load<u8>(p + i) == c) return i;
  return -1;
}

function slice(b: ArrayBuffer, start: i32, end: i32): ArrayBuffer {
  return b.slice(start, end);
}

/** "ip:port" / "[v6]:port" / "v6" → the address without port or brackets. */
function addressHost(a: ArrayBuffer): ArrayBuffer {
  const n = a.byteLength;
  if (n > 0 && load<u8>(changetype<usize>(a)) == 0x5b) {
    const close = indexOfByte(a, 0x5d);
    return close > 0 ? slice(a, 1, close) : a;
  }
  const colon = indexOfByte(a, 0x3a);
  if (colon >= 0 && indexOfByte(a, 0x3a, colon + 1) < 0) return slice(a, 0, colon);
  return a;
}

/** The port of "ip:port" / "[v6]:port", or -1. */
function addressPort(a: ArrayBuffer): i64 {
  const n = a.byteLength;
  const p = changetype<usize>(a);
  let colon = -1;
  if (n > 0 && load<u8>(p) == 0x5b) {
    const close = indexOfByte(a, 0x5d);
    if (close > 0 && close + 1 < n && load<u8>(p + close + 1) == 0x3a) colon = close + 1;
  } else {
    colon = indexOfByte(a, 0x3a);
    if (colon >= 0 && indexOfByte(a, 0x3a, colon + 1) >= 0) colon = -1;
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

/** Split "host:port" of request.host (Envoy's :authority) → host, and the port into hostPort. */
let hostPort: i64 = -1;

function hostOnly(h: ArrayBuffer): ArrayBuffer {
  hostPort = addressPort(h);
  if (hostPort < 0) return h;
  const p = changetype<usize>(h);
  if (h.byteLength > 0 && load<u8>(p) == 0x5b) return slice(h, 0, indexOfByte(h, 0x5d) + 1);
  return slice(h, 0, indexOfByte(h, 0x3a));
}

function strOr(w: JsonWriter, v: ArrayBuffer | null): void {
  if (v === null) w.str("");
  else w.strBuffer(v);
}

/** Parse a proxy-wasm pairs map into the k/v scratch arrays; false if malformed. */
function readPairs(m: ArrayBuffer): bool {
  kPtr.length = 0;
  kLen.length = 0;
  vPtr.length = 0;
  vLen.length = 0;
  const size = m.byteLength;
  if (size < 4) return size <= 1; // empty map: 0 bytes or a single 0
  const p = changetype<usize>(m);
  const count = <i32>load<u32>(p);
  if (count < 0 || 4 + <i64>count * 8 > <i64>size) return false;
  let data = p + 4 + <usize>count * 8;
  const end = p + <usize>size;
  for (let i = 0; i < count; i++) {
    const kl = <i32>load<u32>(p + 4 + <usize>i * 8);
    const vl = <i32>load<u32>(p + 8 + <usize>i * 8);
    if (kl < 0 || vl < 0 || data + <usize>kl + <usize>vl + 2 > end) return false;
    kPtr.push(data);
    kLen.push(kl);
    data += <usize>kl + 1;
    vPtr.push(data);
    vLen.push(vl);
    data += <usize>vl + 1;
  }
  return true;
}

/**
 * Write the k/v scratch entries as a JSON object: repeated names become arrays
 * (as Kong's get_headers/get_query return them), flags are true.
 */
function writeGrouped(w: JsonWriter, node: CustomNode | null, redact: bool): void {
  const n = kPtr.length;
  used.length = n;
  for (let i = 0; i < n; i++) unchecked(used[i] = false);
  w.beginObject();
  for (let i = 0; i < n; i++) {
    if (unchecked(used[i])) continue;
    const kp = unchecked(kPtr[i]);
    const kl = unchecked(kLen[i]);
    let count = 1;
    for (let j = i + 1; j < n; j++) {
      if (!unchecked(used[j]) && unchecked(kLen[j]) == kl && memory.compare(unchecked(kPtr[j]), kp, kl) == 0) {
        unchecked(used[j] = true);
        count++;
      }
    }
    if (!scalarKeyBytes(w, node, kp, kl)) continue;
    if (redact && (bytesEqual(kp, kl, AUTHORIZATION) || bytesEqual(kp, kl, PROXY_AUTHORIZATION))) {
      w.str("REDACTED");
      continue;
    }
    if (count > 1) w.beginArray();
    for (let j = i; j < n; j++) {
      if (j != i && !(unchecked(kLen[j]) == kl && memory.compare(unchecked(kPtr[j]), kp, kl) == 0)) continue;
      if (unchecked(vLen[j]) < 0) w.bool(true);
      else w.strBytes(unchecked(vPtr[j]), unchecked(vLen[j]));
    }
    if (count > 1) w.endArray();
  }
  finish(w, node);
}

/** request.headers / response.headers: lower-case names, pseudo-headers left out (request :authority becomes host). */
function writeHeaders(w: JsonWriter, m: ArrayBuffer | null, node: CustomNode | null, request: bool): void {
  if (m === null || !readPairs(m)) {
    kPtr.length = 0;
    kLen.length = 0;
    vPtr.length = 0;
    vLen.length = 0;
  }
  let hasHost = false;
  for (let i = 0; i < kPtr.length; i++) if (bytesEqual(unchecked(kPtr[i]), unchecked(kLen[i]), HOST_KEY)) hasHost = true;
  // Drop pseudo-headers, in place.
  let o = 0;
  for (let i = 0; i < kPtr.length; i++) {
    let kp = unchecked(kPtr[i]);
    let kl = unchecked(kLen[i]);
    if (kl > 0 && load<u8>(kp) == 0x3a) {
      if (!(request && !hasHost && bytesEqual(kp, kl, AUTHORITY_KEY))) continue;
      kp = changetype<usize>(HOST_KEY);
      kl = HOST_KEY.byteLength;
      hasHost = true;
    }
    unchecked(kPtr[o] = kp);
    unchecked(kLen[o] = kl);
    unchecked(vPtr[o] = unchecked(vPtr[i]));
    unchecked(vLen[o] = unchecked(vLen[i]));
    o++;
  }
  kPtr.length = o;
  kLen.length = o;
  vPtr.length = o;
  vLen.length = o;
  writeGrouped(w, node, request);
}

/** request.querystring from the raw query ("a=1&b&a=2"): decoded, flags true, repeats as arrays. */
function writeQuery(w: JsonWriter, q: ArrayBuffer | null, node: CustomNode | null): void {
  kPtr.length = 0;
  kLen.length = 0;
  vPtr.length = 0;
  vLen.length = 0;
  if (q !== null && q.byteLength > 0) {
    const n = q.byteLength;
    if (decoded.byteLength < n) decoded = new ArrayBuffer(n);
    const src = changetype<usize>(q);
    const dst = changetype<usize>(decoded);
    let out = 0;
    let start = 0;
    while (start <= n && kPtr.length < MAX_QUERY_ARGS) {
      let end = start;
      while (end < n && load<u8>(src + end) != 0x26) end++;
      if (end > start) {
        let eq = start;
        while (eq < end && load<u8>(src + eq) != 0x3d) eq++;
        const klen = unescapeQuery(src + start, eq - start, dst + out);
        if (klen > 0) {
          kPtr.push(dst + out);
          kLen.push(klen);
          out += klen;
          if (eq < end) {
            const vl = unescapeQuery(src + eq + 1, end - eq - 1, dst + out);
            vPtr.push(dst + out);
            vLen.push(vl);
            out += vl;
          } else {
            vPtr.push(0);
            vLen.push(-1);
          }
        }
      }
      start = end + 1;
    }
  }
  writeGrouped(w, node, false);
}

/** A header map from its property (request.headers / response.headers), else from the stream's map. */
function headerMap(path: ArrayBuffer, mapType: i32): ArrayBuffer | null {
  const m = getProperty(path);
  return m !== null ? m : getHeaderMapPairs(mapType);
}

function writeNamed(w: JsonWriter, node: CustomNode | null, key: string, id: ArrayBuffer | null, nameKey: string, name: ArrayBuffer | null): void {
  if (!objectKey(w, node, key)) return;
  const s = sub;
  w.beginObject();
  if (id !== null && scalarKey(w, s, "id")) w.strBuffer(id);
  if (name !== null && scalarKey(w, s, nameKey)) w.strBuffer(name);
  finish(w, s);
}

/**
 * Write one log entry into `w` (reset by the caller). `nowMs` is used when the
 * host gives no request start time or duration.
 */
export function writeEntry(w: JsonWriter, custom: CustomNode | null, nowMs: i64): void {
  nextEntry();
  // ---- what the host knows about the request
  const id = getProperty(P_REQ_ID);
  let uri = getProperty(P_REQ_PATH);
  let query = getProperty(P_REQ_QUERY);
  if (uri === null) {
    const urlPath = getProperty(P_REQ_URL_PATH);
    if (urlPath !== null) {
      scratch.reset();
      scratch.rawBuffer(urlPath);
      if (query !== null && query.byteLength > 0) {
        scratch.rawByte(0x3f);
        scratch.rawBuffer(query);
      }
      uri = scratch.toArrayBuffer();
    }
  }
  if (query === null && uri !== null) {
    const qm = indexOfByte(uri, 0x3f);
    if (qm >= 0) query = slice(uri, qm + 1, uri.byteLength);
  }
  const method = getProperty(P_REQ_METHOD);
  const scheme = getProperty(P_REQ_SCHEME);
  const rawHost = getProperty(P_REQ_HOST);
  const destPort = getPropertyInt(P_DEST_PORT, -1);
  const requestSize = getPropertyInt(P_REQ_TOTAL_SIZE, 0);
  const startNs = getPropertyInt(P_REQ_TIME, -1);
  const durationNs = getPropertyInt(P_REQ_DURATION, -1);
  const status = getPropertyInt(P_RESP_CODE, 0);
  const responseSize = getPropertyInt(P_RESP_TOTAL_SIZE, 0);
  const backendNs = getPropertyInt(P_RESP_BACKEND_LATENCY, -1);
  const source = getProperty(P_SOURCE_ADDRESS);
  const upstream = getProperty(P_UPSTREAM_ADDRESS);
  const upstreamUri = getProperty(P_UPSTREAM_URI);
  const upstreamStatus = getProperty(P_UPSTREAM_STATUS);

  const ident = identity;
  ident.clientIp = source === null ? null : addressHost(source);
  ident.routeId = getProperty(P_ROUTE_ID);
  ident.routeName = getProperty(P_ROUTE_NAME);
  if (ident.routeName === null) ident.routeName = getProperty(P_XDS_ROUTE_NAME);
  ident.serviceId = getProperty(P_SERVICE_ID);
  ident.serviceName = getProperty(P_SERVICE_NAME);
  if (ident.serviceName === null) ident.serviceName = getProperty(P_XDS_CLUSTER_NAME);
  ident.consumerId = getProperty(P_CONSUMER_ID);
  ident.consumerUsername = getProperty(P_CONSUMER_USERNAME);
  const workspaceId = getProperty(P_WORKSPACE_ID);
  const workspaceName = getProperty(P_WORKSPACE_NAME);

  // Latencies in ms. proxy: time spent on the upstream (-1 without one, as Kong);
  // kong: the rest of the request time.
  const requestMs: i64 = durationNs >= 0 ? durationNs / 1_000_000 : startNs >= 0 ? max<i64>(0, nowMs - startNs / 1_000_000) : 0;
  const proxyMs: i64 = backendNs >= 0 ? backendNs / 1_000_000 : -1;
  const kongMs: i64 = proxyMs >= 0 ? max<i64>(0, requestMs - proxyMs) : requestMs;
  const startedAt: i64 = startNs >= 0 ? startNs / 1_000_000 : nowMs - requestMs;

  // upstream_status: hookwire's own, else (Envoy) the response code when an upstream host was picked.
  let statusText: ArrayBuffer | null = upstreamStatus;
  if (statusText === null && upstream !== null && status > 0) {
    scratch.reset();
    scratch.rawInt(status);
    statusText = scratch.toArrayBuffer();
  }
  const fromUpstream = statusText !== null && statusText.byteLength > 0;

  // ---- the entry
  w.beginObject();
  const root = custom;

  if (objectKey(w, root, "request")) {
    const s = sub;
    w.beginObject();
    if (scalarKey(w, s, "id")) strOr(w, id);
    if (scalarKey(w, s, "uri")) strOr(w, uri);
    if (scalarKey(w, s, "url")) {
      scratch.reset();
      if (scheme !== null) scratch.rawBuffer(scheme);
      else scratch.rawAscii("http");
      scratch.rawAscii("://");
      let port = destPort;
      hostPort = -1;
      if (rawHost !== null) scratch.rawBuffer(hostOnly(rawHost));
      if (port < 0) port = hostPort;
      if (port < 0) port = scheme !== null && bytesEqual(changetype<usize>(scheme), scheme.byteLength, HTTPS) ? 443 : 80;
      scratch.rawByte(0x3a);
      scratch.rawInt(port);
      if (uri !== null) scratch.rawBuffer(uri);
      w.strBytes(scratch.ptr, scratch.len);
    }
    if (objectKey(w, s, "querystring")) writeQuery(w, query, sub);
    if (scalarKey(w, s, "method")) strOr(w, method);
    if (objectKey(w, s, "headers")) writeHeaders(w, headerMap(P_REQ_HEADERS, 0), sub, true);
    if (scalarKey(w, s, "size")) w.int(requestSize);
    finish(w, s);
  }

  if (scalarKey(w, root, "upstream_uri")) {
    if (upstreamUri !== null) w.strBuffer(upstreamUri);
    else strOr(w, uri);
  }
  if (scalarKey(w, root, "upstream_status")) strOr(w, statusText);

  if (objectKey(w, root, "response")) {
    const s = sub;
    w.beginObject();
    if (scalarKey(w, s, "status")) w.int(status);
    if (objectKey(w, s, "headers")) writeHeaders(w, headerMap(P_RESP_HEADERS, 2), sub, false);
    if (scalarKey(w, s, "size")) w.int(responseSize);
    finish(w, s);
  }

  if (objectKey(w, root, "latencies")) {
    const s = sub;
    w.beginObject();
    if (scalarKey(w, s, "kong")) w.int(kongMs);
    if (scalarKey(w, s, "proxy")) w.int(proxyMs);
    if (scalarKey(w, s, "request")) w.int(requestMs);
    if (scalarKey(w, s, "receive")) w.int(0);
    finish(w, s);
  }

  if (upstream !== null && scalarKey(w, root, "tries")) {
    w.beginArray();
    w.beginObject();
    w.key("ip");
    w.strBuffer(addressHost(upstream));
    const port = addressPort(upstream);
    w.key("port");
    if (port >= 0) w.int(port);
    else w.nul();
    w.key("balancer_latency");
    w.int(0);
    w.endObject();
    w.endArray();
  }

  if (scalarKey(w, root, "client_ip")) strOr(w, ident.clientIp);
  if (scalarKey(w, root, "started_at")) w.int(startedAt);
  if (scalarKey(w, root, "source")) w.str(fromUpstream ? "upstream" : "kong");

  if (ident.routeId !== null || ident.routeName !== null) writeNamed(w, root, "route", ident.routeId, "name", ident.routeName);
  if (ident.serviceId !== null || ident.serviceName !== null) writeNamed(w, root, "service", ident.serviceId, "name", ident.serviceName);
  if (ident.consumerId !== null || ident.consumerUsername !== null) writeNamed(w, root, "consumer", ident.consumerId, "username", ident.consumerUsername);

  if (workspaceId !== null && scalarKey(w, root, "workspace")) w.strBuffer(workspaceId);
  if (workspaceName !== null && scalarKey(w, root, "workspace_name")) w.strBuffer(workspaceName);

  finish(w, root);
}
