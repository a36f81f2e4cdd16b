// hello-world: the smallest useful hookwire plugin, and the template for new ones.
//  - adds a response header (name and value from the plugin configuration);
//  - logs one line per request in on_log;
//  - every `tick_ms`, pings an upstream cluster with proxy_http_call and logs the answer;
//  - when unloaded (reload, configuration change, shutdown) with a ping in flight,
//    waits for its answer before it goes: Envoy's proxy_on_done / proxy_done protocol.
//    A plugin that holds data (a queue, a batch) flushes it the same way.
// Configuration (JSON, every key optional):
//   {"header": "x-hello", "value": "world", "ping_upstream": "", "ping_path": "/ping", "tick_ms": 0}
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
// The SDK's proxy_on_done / proxy_on_delete abort for a root context (they look
// it up among stream contexts): this file exports its own (at the end), which
// hand the root's calls to HelloRoot and the streams' to the SDK.
import {
  proxy_on_delete as sdkOnDelete,
  proxy_on_done as sdkOnDone,
} from "@gcoredev/proxy-wasm-sdk-as/assembly/exports";
import { done } from "@gcoredev/proxy-wasm-sdk-as/assembly/runtime";
import {
  BaseContext,
  Context,
  FilterHeadersStatusValues,
  get_buffer_bytes,
  BufferTypeValues,
  log,
  LogLevelValues,
  makeHeaderPair,
  registerRootContext,
  RootContext,
  set_tick_period_milliseconds,
  stream_context,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { JSON } from "assemblyscript-json/assembly";
// assemblyscript-json's own JSON.parse aborts (traps the VM) on bad input; this parser
// returns null and says why in jsonError, so a bad configuration is refused, not a trap.
import { jsonError, parseJsonString } from "../../event-hooks/json";

class HelloConfig {
  header: string = "x-hello";
  value: string = "world";
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
  pingInFlight: bool = false;
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
    if (this.unloading || this.pingInFlight) return;
    const headers = [
      makeHeaderPair(":method", "GET"),
      makeHeaderPair(":path", this.config.pingPath),
      makeHeaderPair(":authority", this.config.pingUpstream),
    ];
    this.pingInFlight = this.httpCall(this.config.pingUpstream, headers, new ArrayBuffer(0), [], 1000, this, onPingResponse) == 0;
  }

  // Unloading. true: nothing pending, delete me now. false: keep my ticks and
  // http call responses going; I call proxy_done (done()) when finished. The
  // host bounds the wait (hookwire: proxy.drain_timeout_ms).
  onDone(): bool {
    this.unloading = true;
    return !this.pingInFlight;
  }

  pingAnswered(): void {
    this.pingInFlight = false;
    if (this.unloading) done();
  }
}

function onPingResponse(origin: BaseContext, headers: u32, body_size: usize, trailers: u32): void {
  (<HelloRoot>origin).pingAnswered();
  if (headers == 0) {
    log(LogLevelValues.warn, "hello-world: ping failed (no response)");
    return;
  }
  const status = stream_context.headers.http_callback.get(":status");
  const body = String.UTF8.decode(get_buffer_bytes(BufferTypeValues.HttpCallResponseBody, 0, <u32>body_size));
  log(LogLevelValues.info, "hello-world: ping " + status + " " + body);
}

class HelloStream extends Context {
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = <HelloRoot>this.root_context;
    stream_context.headers.response.add(root.config.header, root.config.value);
    return FilterHeadersStatusValues.Continue;
  }

  onLog(): void {
    const method = stream_context.headers.request.get(":method");
    const path = stream_context.headers.request.get(":path");
    const status = stream_context.headers.response.get(":status");
    log(LogLevelValues.info, "hello-world: " + method + " " + path + " -> " + status);
  }
}

let theRoot: HelloRoot | null = null;

export function proxy_on_done(context_id: u32): u32 {
  const root = theRoot;
  if (root !== null && context_id == root.context_id) return root.onDone() ? 1 : 0;
  return sdkOnDone(context_id);
}

export function proxy_on_delete(context_id: u32): void {
  const root = theRoot;
  if (root !== null && context_id == root.context_id) {
    root.onDelete();
    return;
  }
  sdkOnDelete(context_id);
}

registerRootContext((context_id: u32) => {
  const root = new HelloRoot(context_id);
  theRoot = root;
  return root;
}, "hello-world");
