// http-log configuration: Kong's field names, defaults and ranges (OSS schema
// plus kong.tools.queue_schema). Unknown fields are refused, as Kong's schema
// does; null means "not set" (the default), as in Kong's Admin API output.
// Every problem is reported as "http-log: config.<field> <why> (found <value>)".
import { JSON } from "assemblyscript-json/assembly";
import { DEFAULT_VM_ID, jsonError, parseJson } from "../../event-hooks";
import { ConfigChecker } from "../../event-hooks/config";
import { serializePairs } from "../../event-hooks/host";
import { buildCustomFields, CustomNode } from "./custom";
import { asciiLower, base64, endpointError, parseEndpoint } from "./url";

export class QueueConfig {
  maxBatchSize: i32 = 1;
  /** ms */
  maxCoalescingDelay: f64 = 1000;
  maxEntries: i32 = 10000;
  /** 0: no byte limit (Kong: null). */
  maxBytes: i64 = 0;
  /** ms; negative: never retry */
  maxRetryTime: f64 = 60000;
  /** ms */
  initialRetryDelay: f64 = 10;
  /** ms */
  maxRetryDelay: f64 = 60000;
}

export class HttpLogConfig {
  httpEndpoint: string = "";
  /** The endpoint's host: the cluster (Envoy) / upstream (hookwire) the http call goes to. */
  cluster: string = "";
  port: i32 = 0;
  method: string = "POST";
  contentType: string = "application/json";
  timeout: u32 = 10000;
  keepalive: f64 = 60000;
  queue: QueueConfig = new QueueConfig();
  customFields: CustomNode | null = null;
  eventHooks: bool = false;
  eventHooksVmId: string = DEFAULT_VM_ID;
  /** Request headers of every http call, serialized pairs (:method, :path, :authority, content-type, user headers). */
  callHeaders: ArrayBuffer = new ArrayBuffer(0);
  clusterBytes: ArrayBuffer = new ArrayBuffer(0);
}

const TOP_FIELDS = [
  "http_endpoint", "method", "content_type", "timeout", "keepalive", "headers", "queue",
  "custom_fields", "event_hooks", "event_hooks_vm_id",
  // deprecated in Kong 3.x, still accepted there
  "retry_count", "queue_size", "flush_timeout",
];
const QUEUE_FIELDS = [
  "max_batch_size", "max_coalescing_delay", "max_entries", "max_bytes", "max_retry_time",
  "initial_retry_delay", "max_retry_delay", "concurrency_limit",
];

function refuseUnknown(c: ConfigChecker, obj: JSON.Obj, prefix: string, known: string[]): void {
  const unknown = c.unknownKeys(obj, known);
  for (let i = 0; i < unknown.length; i++) {
    const k = unknown[i];
    if (k == "custom_fields_by_lua") c.fail(prefix + k, "is not supported: Lua does not run in a proxy-wasm filter; use config.custom_fields", null);
    else if (k == "ssl_verify" || k == "client_certificate") c.fail(prefix + k, "is not supported: TLS to the log server is configured on its cluster", null);
    else c.fail(prefix + k, "is not a known field", null);
  }
}

function isTokenChar(c: i32): bool {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return "!#$%&'*+-.^_`|~".indexOf(String.fromCharCode(c)) >= 0;
}

/**
 * Parse and validate the plugin configuration. On failure returns null and
 * `errors` holds every problem; `warnings` holds deprecation notices.
 */
export function parseConfig(text: ArrayBuffer, errors: string[], warnings: string[]): HttpLogConfig | null {
  const parsed = text.byteLength == 0 ? JSON.Value.Object() : parseJson(text);
  if (parsed === null) {
    errors.push("http-log: the configuration is not valid JSON: " + jsonError);
    return null;
  }
  if (!parsed.isObj) {
    errors.push("http-log: the configuration must be a JSON object");
    return null;
  }
  const obj = <JSON.Obj>parsed;
  const c = new ConfigChecker("http-log");
  const cfg = new HttpLogConfig();
  refuseUnknown(c, obj, "", TOP_FIELDS);

  // http_endpoint
  const ep = c.present(obj, "http_endpoint");
  let userinfo = "";
  let path = "/";
  if (ep === null) c.fail("http_endpoint", "is required", null);
  else if (!ep.isString) c.fail("http_endpoint", "must be a string", ep);
  else {
    cfg.httpEndpoint = (<JSON.Str>ep).valueOf();
    const e = parseEndpoint(cfg.httpEndpoint);
    if (e === null) c.fail("http_endpoint", endpointError, ep);
    else {
      cfg.cluster = e.host;
      cfg.port = e.port;
      path = e.path;
      userinfo = e.userinfo;
    }
  }

  cfg.method = c.oneOf(obj, "method", "method", ["POST", "PUT", "PATCH"], "POST");
  cfg.contentType = c.oneOf(obj, "content_type", "content_type", ["application/json", "application/json; charset=utf-8"], "application/json");
  cfg.timeout = <u32>c.number(obj, "timeout", "timeout", 1, 2147483647, 10000);
  cfg.keepalive = c.number(obj, "keepalive", "keepalive", 0, -1, 60000);
  cfg.eventHooks = c.bool(obj, "event_hooks", "event_hooks", false);
  cfg.eventHooksVmId = c.str(obj, "event_hooks_vm_id", "event_hooks_vm_id", DEFAULT_VM_ID);
  if (cfg.eventHooksVmId.length == 0) c.fail("event_hooks_vm_id", "must not be empty", obj.get("event_hooks_vm_id"));

  // queue
  const q = cfg.queue;
  const qobj = c.object(obj, "queue", "queue");
  if (qobj !== null) {
    refuseUnknown(c, qobj, "queue.", QUEUE_FIELDS);
    q.maxBatchSize = <i32>c.integer(qobj, "max_batch_size", "queue.max_batch_size", 1, 1000000, 1);
    q.maxCoalescingDelay = c.number(qobj, "max_coalescing_delay", "queue.max_coalescing_delay", 0, 3600, 1) * 1000;
    q.maxEntries = <i32>c.integer(qobj, "max_entries", "queue.max_entries", 1, 1000000, 10000);
    q.maxBytes = c.integer(qobj, "max_bytes", "queue.max_bytes", 1, 9007199254740991, 0);
    q.maxRetryTime = c.number(qobj, "max_retry_time", "queue.max_retry_time", -1e15, 1e15, 60) * 1000;
    q.initialRetryDelay = c.number(qobj, "initial_retry_delay", "queue.initial_retry_delay", 0.001, 1000000, 0.01) * 1000;
    q.maxRetryDelay = c.number(qobj, "max_retry_delay", "queue.max_retry_delay", 0.001, 1000000, 60) * 1000;
    const conc = c.present(qobj, "concurrency_limit");
    if (conc !== null && !(conc.isInteger && (<JSON.Integer>conc).valueOf() == 1)) {
      c.fail("queue.concurrency_limit", "must be 1 (one batch in flight per queue; -1 is not supported)", conc);
    }
  }

  // Kong's deprecated top-level queue parameters (Queue.get_params).
  if (c.present(obj, "retry_count") !== null) {
    c.integer(obj, "retry_count", "retry_count", -2147483648, 2147483647, 0);
    warnings.push("http-log: config.retry_count is deprecated and ignored; use config.queue.max_retry_time");
  }
  if (c.present(obj, "queue_size") !== null) {
    const n = c.integer(obj, "queue_size", "queue_size", 1, 1000000, 1);
    if (n != 1) q.maxBatchSize = <i32>n;
    warnings.push("http-log: config.queue_size is deprecated; use config.queue.max_batch_size");
  }
  if (c.present(obj, "flush_timeout") !== null) {
    const f = c.number(obj, "flush_timeout", "flush_timeout", 0, 3600, 2);
    if (f != 2) q.maxCoalescingDelay = f * 1000;
    warnings.push("http-log: config.flush_timeout is deprecated; use config.queue.max_coalescing_delay");
  }

  // headers
  const flat = new Array<string>();
  flat.push(":method");
  flat.push(cfg.method);
  flat.push(":path");
  flat.push(path);
  flat.push(":authority");
  flat.push(cfg.cluster);
  flat.push("content-type");
  flat.push(cfg.contentType);
  let userAuthorization = false;
  const hobj = c.object(obj, "headers", "headers");
  if (hobj !== null) {
    const names = hobj.keys;
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const v = hobj.get(name)!;
      let validName = name.length > 0;
      for (let k = 0; k < name.length && validName; k++) validName = isTokenChar(name.charCodeAt(k));
      if (!validName) {
        c.fail("headers", "has an invalid header name", JSON.Value.String(name));
        continue;
      }
      const lower = asciiLower(name); // a token: ASCII only
      if (lower == "host" || lower == "content-length" || lower == "content-type") {
        const shown = lower == "host" ? "Host" : lower == "content-length" ? "Content-Length" : "Content-Type";
        c.fail("headers", "cannot contain '" + shown + "' header", JSON.Value.String(name));
        continue;
      }
      if (!v.isString) {
        c.fail("headers." + name, "must be a string", v);
        continue;
      }
      if (lower == "authorization") userAuthorization = true;
      flat.push(lower);
      flat.push((<JSON.Str>v).valueOf());
    }
  }
  if (userinfo.length > 0) {
    if (userAuthorization) c.fail("headers", "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed", null);
    else {
      flat.push("authorization");
      flat.push("Basic " + base64(userinfo));
    }
  }

  // custom_fields
  const cobj = c.object(obj, "custom_fields", "custom_fields");
  if (cobj !== null) {
    const problems = new Array<string>();
    const tree = buildCustomFields(cobj, problems);
    for (let i = 0; i < problems.length; i++) c.errors.push("http-log: " + problems[i]);
    if (tree !== null && tree.children.length > 0) cfg.customFields = tree;
  }

  for (let i = 0; i < c.errors.length; i++) errors.push(c.errors[i]);
  if (c.errors.length > 0) return null;
  cfg.callHeaders = serializePairs(flat);
  cfg.clusterBytes = String.UTF8.encode(cfg.cluster);
  return cfg;
}
