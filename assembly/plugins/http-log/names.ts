// The constant names http-log uses: the property paths the entry reads, the
// header and entity names it looks for, and the JSON member names it writes.
// Each table is one string in the module, split and encoded once at start-up;
// a constant is an index into its table. (As separate constants they cost
// about 50 bytes of module each: a static string with its header, a global,
// start-up code and a visit by the collector: docs/module-size.md.)
// Keep each list and its indices in the same order.
import { JsonKey, jsonKeys } from "../../event-hooks/json";
import { propertyPath } from "../../event-hooks/host";

/** UTF-8 byte strings packed in one buffer, given as one space-separated string. */
export class ByteTable {
  private readonly bytes: ArrayBuffer;
  /** Where entry i starts; entry i ends one byte (the separator) before entry i + 1 starts. */
  private readonly starts: StaticArray<i32>;

  constructor(bytes: ArrayBuffer) {
    const p = changetype<usize>(bytes);
    const n = bytes.byteLength;
    let count = 1;
    for (let i = 0; i < n; i++) if (load<u8>(p + i) == 0x20) count++;
    const starts = new StaticArray<i32>(count + 1);
    let k = 1;
    for (let i = 0; i < n; i++) if (load<u8>(p + i) == 0x20) unchecked((starts[k++] = i + 1));
    unchecked((starts[count] = n + 1));
    this.bytes = bytes;
    this.starts = starts;
  }

  // Plain loads: unchecked(starts[i]) compiles to a call per access (not inlined at shrinkLevel 2),
  // which cost about 0.5 µs per entry in the header loops.
  @inline private start(i: i32): i32 {
    return load<i32>(changetype<usize>(this.starts) + (<usize>i << 2));
  }

  @inline ptr(i: i32): usize {
    return changetype<usize>(this.bytes) + <usize>this.start(i);
  }

  @inline len(i: i32): i32 {
    return this.start(i + 1) - this.start(i) - 1;
  }

  /** Whether the n bytes at p are entry i. */
  equals(i: i32, p: usize, n: i32): bool {
    return n == this.len(i) && memory.compare(p, this.ptr(i), n) == 0;
  }
}

/** Property paths (NUL-separated segments: propertyPath). */
export const PATHS = new ByteTable(propertyPath("\
request.id request.path request.url_path request.query \
request.method request.scheme request.host request.headers \
request.total_size request.time response.code response.headers \
response.total_size response.backend_latency source.address destination.port \
upstream.address hookwire.entities hookwire.route_id hookwire.route_name \
hookwire.service_id hookwire.service_name hookwire.workspace_id hookwire.workspace_name \
hookwire.consumer_id hookwire.consumer_username hookwire.upstream_uri hookwire.upstream_status \
xds.route_name xds.cluster_name connection.tls_version hookwire.tls_cipher \
hookwire.tls_client_verify"));
export const P_REQ_ID = 0; // request.id
export const P_REQ_PATH = 1; // request.path
export const P_REQ_URL_PATH = 2; // request.url_path
export const P_REQ_QUERY = 3; // request.query
export const P_REQ_METHOD = 4; // request.method
export const P_REQ_SCHEME = 5; // request.scheme
export const P_REQ_HOST = 6; // request.host
export const P_REQ_HEADERS = 7; // request.headers
export const P_REQ_TOTAL_SIZE = 8; // request.total_size
export const P_REQ_TIME = 9; // request.time
export const P_RESP_CODE = 10; // response.code
export const P_RESP_HEADERS = 11; // response.headers
export const P_RESP_TOTAL_SIZE = 12; // response.total_size
export const P_RESP_BACKEND_LATENCY = 13; // response.backend_latency
export const P_SOURCE_ADDRESS = 14; // source.address
export const P_DEST_PORT = 15; // destination.port
export const P_UPSTREAM_ADDRESS = 16; // upstream.address
export const P_ENTITIES = 17; // hookwire.entities
export const P_ROUTE_ID = 18; // hookwire.route_id
export const P_ROUTE_NAME = 19; // hookwire.route_name
export const P_SERVICE_ID = 20; // hookwire.service_id
export const P_SERVICE_NAME = 21; // hookwire.service_name
export const P_WORKSPACE_ID = 22; // hookwire.workspace_id
export const P_WORKSPACE_NAME = 23; // hookwire.workspace_name
export const P_CONSUMER_ID = 24; // hookwire.consumer_id
export const P_CONSUMER_USERNAME = 25; // hookwire.consumer_username
export const P_UPSTREAM_URI = 26; // hookwire.upstream_uri
export const P_UPSTREAM_STATUS = 27; // hookwire.upstream_status
export const P_XDS_ROUTE_NAME = 28; // xds.route_name
export const P_XDS_CLUSTER_NAME = 29; // xds.cluster_name
export const P_TLS_VERSION = 30; // connection.tls_version
export const P_TLS_CIPHER = 31; // hookwire.tls_cipher
export const P_TLS_CLIENT_VERIFY = 32; // hookwire.tls_client_verify

/** Header names, entity map keys and values compared with (UTF-8). */
export const NAMES = new ByteTable(String.UTF8.encode("\
https host :authority :path :method \
:scheme :status x-request-id authorization proxy-authorization \
route_id route_name service_id service_name workspace_id \
workspace_name consumer_id consumer_username"));
export const HTTPS = 0; // https
export const HOST_KEY = 1; // host
export const AUTHORITY_KEY = 2; // :authority
export const PATH_KEY = 3; // :path
export const METHOD_KEY = 4; // :method
export const SCHEME_KEY = 5; // :scheme
export const STATUS_KEY = 6; // :status
export const REQUEST_ID_KEY = 7; // x-request-id
export const AUTHORIZATION = 8; // authorization
export const PROXY_AUTHORIZATION = 9; // proxy-authorization
export const ROUTE_ID_KEY = 10; // route_id
export const ROUTE_NAME_KEY = 11; // route_name
export const SERVICE_ID_KEY = 12; // service_id
export const SERVICE_NAME_KEY = 13; // service_name
export const WORKSPACE_ID_KEY = 14; // workspace_id
export const WORKSPACE_NAME_KEY = 15; // workspace_name
export const CONSUMER_ID_KEY = 16; // consumer_id
export const CONSUMER_USERNAME_KEY = 17; // consumer_username

/** JSON member names, encoded once (JsonKey). */
const KEYS = jsonKeys("\
balancer_latency client_ip consumer headers id ip \
kong latencies method name port proxy \
querystring receive request response route service \
size source started_at status tries tls \
version cipher client_verify upstream_status upstream_uri uri \
url username workspace workspace_name");

/** The member name with index k (K_*). */
// @ts-ignore: decorator
@inline export function key(k: i32): JsonKey {
  return changetype<JsonKey>(load<usize>(changetype<usize>(KEYS) + (<usize>k << alignof<usize>())));
}

export const K_BALANCER_LATENCY = 0; // balancer_latency
export const K_CLIENT_IP = 1; // client_ip
export const K_CONSUMER = 2; // consumer
export const K_HEADERS = 3; // headers
export const K_ID = 4; // id
export const K_IP = 5; // ip
export const K_KONG = 6; // kong
export const K_LATENCIES = 7; // latencies
export const K_METHOD = 8; // method
export const K_NAME = 9; // name
export const K_PORT = 10; // port
export const K_PROXY = 11; // proxy
export const K_QUERYSTRING = 12; // querystring
export const K_RECEIVE = 13; // receive
export const K_REQUEST = 14; // request
export const K_RESPONSE = 15; // response
export const K_ROUTE = 16; // route
export const K_SERVICE = 17; // service
export const K_SIZE = 18; // size
export const K_SOURCE = 19; // source
export const K_STARTED_AT = 20; // started_at
export const K_STATUS = 21; // status
export const K_TRIES = 22; // tries
export const K_TLS = 23; // tls
export const K_VERSION = 24; // version
export const K_CIPHER = 25; // cipher
export const K_CLIENT_VERIFY = 26; // client_verify
export const K_UPSTREAM_STATUS = 27; // upstream_status
export const K_UPSTREAM_URI = 28; // upstream_uri
export const K_URI = 29; // uri
export const K_URL = 30; // url
export const K_USERNAME = 31; // username
export const K_WORKSPACE = 32; // workspace
export const K_WORKSPACE_NAME = 33; // workspace_name
