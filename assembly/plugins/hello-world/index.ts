// hello-world: the smallest useful hookwire plugin, and the template for new ones.
//  - adds a response header (name and value from the plugin configuration);
//  - answers 403 itself (a local reply) when the request carries `deny_header`;
//  - logs one line per request in on_log, from properties (request.method,
//    request.path, response.code, response.code_details);
//  - every `tick_ms`, pings an upstream cluster with proxy_http_call and logs the answer;
//  - when unloaded (reload, configuration change, shutdown) with a ping in flight,
//    waits for its answer before it goes: Envoy's proxy_on_done / proxy_done protocol.
//    A plugin that holds data (a queue, a batch) flushes it the same way.
// Configuration (JSON, every key optional):
//   {"header": "x-hello", "value": "world", "deny_header": "", "ping_upstream": "", "ping_path": "/ping", "tick_ms": 0}
// The callbacks this plugin needs, from hookwire's lean SDK layer (assembly/sdk):
// a host skips a stream callback a module does not export.
export {
  malloc,
  proxy_abi_version_0_2_1,
  proxy_on_vm_start,
  proxy_on_configure,
  proxy_on_tick,
  proxy_on_http_call_response,
  proxy_on_context_create,
  proxy_on_request_headers,
  proxy_on_response_headers,
  proxy_on_log,
  proxy_on_done,
  proxy_on_delete,
} from "../../sdk";
import {
  decimal,
  Context,
  FilterHeadersStatusValues,
  get_buffer_bytes,
  get_property,
  GrpcStatusValues,
  BufferTypeValues,
  send_local_response,
  log,
  LogLevelValues,
  registerRootContext,
  RootContext,
  set_tick_period_milliseconds,
  stream_context,
  done,
} from "../../sdk";
import { httpCall, httpCallToken, serializePairs } from "../../event-hooks/host";
import { JSON } from "assemblyscript-json/assembly";
// assemblyscript-json's own JSON.parse aborts (traps the VM) on bad input; this parser
// returns null and says why in jsonError, so a bad configuration is refused, not a trap.
import { jsonError, parseJsonString } from "../../event-hooks/json";

class HelloConfig {
  header: string = "x-hello";
  value: string = "world";
  denyHeader: string = "";
  pingUpstream: string = "";
  pingPath: string = "/ping";
  tickMs: i64 = 0;
}

function stringField(obj: JSON.Obj, key: string, fallback: string): string {
  const v = obj.getString(key);
  return v ? v.valueOf() : fallback;
}

class HelloRoot extends RootContext {
  config: HelloConfig = new HelloConfig();
  /** Token of the ping in flight (0: none). */
  pingToken: u32 = 0;
  unloading: bool = false;

  createContext(context_id: u32): Context {
    return new HelloStream(context_id, this);
  }

  onConfigure(configuration_size: u32): bool {
    super.onConfigure(configuration_size);
    const text = this.getConfiguration();
    const config = new HelloConfig();
    if (text.length > 0) {
      const parsed = parseJsonString(text);
      if (parsed === null) {
        log(LogLevelValues.error, "hello-world: the configuration is not valid JSON: " + jsonError);
        return false;
      }
      if (!parsed.isObj) {
        log(LogLevelValues.error, "hello-world: the configuration must be a JSON object");
        return false;
      }
      const obj = <JSON.Obj>parsed;
      config.header = stringField(obj, "header", config.header);
      config.value = stringField(obj, "value", config.value);
      config.denyHeader = stringField(obj, "deny_header", config.denyHeader);
      config.pingUpstream = stringField(obj, "ping_upstream", config.pingUpstream);
      config.pingPath = stringField(obj, "ping_path", config.pingPath);
      const tick = obj.getInteger("tick_ms");
      if (tick) config.tickMs = tick.valueOf();
      if (config.tickMs < 0) {
        log(LogLevelValues.error, "hello-world: tick_ms must be >= 0");
        return false;
      }
    }
    this.config = config;
    set_tick_period_milliseconds(config.pingUpstream.length > 0 ? <u32>config.tickMs : 0);
    return true;
  }

  onTick(): void {
    if (this.unloading || this.pingToken != 0) return;
    const c = this.config;
    const headers = serializePairs([":method", "GET", ":path", c.pingPath, ":authority", c.pingUpstream]);
    if (httpCall(String.UTF8.encode(c.pingUpstream), headers, new ArrayBuffer(0), 1000) == 0) this.pingToken = httpCallToken;
  }

  // Unloading. true: nothing pending, delete me now. false: keep my ticks and
  // http call responses going; I call proxy_done (done()) when finished. The
  // host bounds the wait (hookwire: proxy.drain_timeout_ms).
  onDone(): bool {
    this.unloading = true;
    return this.pingToken == 0;
  }

  onHttpCallResponse(token: u32, headers: u32, body_size: u32, trailers: u32): void {
    if (token != this.pingToken || token == 0) {
      log(LogLevelValues.error, "onHttpCallResponse: Token " + decimal(token) + " not found.");
      return;
    }
    this.pingToken = 0;
    if (this.unloading) done();
    if (headers == 0) {
      log(LogLevelValues.warn, "hello-world: ping failed (no response)");
      return;
    }
    const status = stream_context.headers.http_callback.get(":status");
    const body = String.UTF8.decode(get_buffer_bytes(BufferTypeValues.HttpCallResponseBody, 0, body_size));
    log(LogLevelValues.info, "hello-world: ping " + status + " " + body);
  }
}

/** A property as text ("" when the host has none: NOT_FOUND). Envoy's paths separate segments with NUL. */
function property(path: string): string {
  return String.UTF8.decode(get_property(path));
}

/** An integer property (8 bytes, little-endian), or -1 when the host has none. */
function intProperty(path: string): i64 {
  const b = get_property(path);
  return b.byteLength == 8 ? load<i64>(changetype<usize>(b)) : -1;
}

class HelloStream extends Context {
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const deny = (<HelloRoot>this.root_context).config.denyHeader;
    if (deny.length > 0 && stream_context.headers.request.get(deny).length > 0) {
      // The host answers 403 and stops the request here; the response phases
      // (onResponseHeaders below) still run, on the reply. Its code details
      // read back as "denied_by_hello-world" (Envoy turns whitespace into "_").
      // No extra headers: a pairs block with a zero count.
      send_local_response(403, "denied by hello-world", String.UTF8.encode("denied\n"), new ArrayBuffer(4), GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = <HelloRoot>this.root_context;
    stream_context.headers.response.add(root.config.header, root.config.value);
    return FilterHeadersStatusValues.Continue;
  }

  onLog(): void {
    const method = property("request\0method");
    const path = property("request\0path");
    const status = intProperty("response\0code");
    const details = property("response\0code_details");
    log(LogLevelValues.info, "hello-world: " + method + " " + path + " -> " + decimal(status) + " (" + details + ")");
  }
}

registerRootContext((context_id: u32) => new HelloRoot(context_id), "hello-world");
