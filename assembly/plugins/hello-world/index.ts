// hello-world: the smallest useful hookwire plugin, and the template for new ones.
//  - adds a response header (name and value from the plugin configuration);
//  - logs one line per request in on_log;
//  - every `tick_ms`, pings an upstream cluster with proxy_http_call and logs the answer.
// Configuration (JSON, every key optional):
//   {"header": "x-hello", "value": "world", "ping_upstream": "", "ping_path": "/ping", "tick_ms": 0}
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
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
    const headers = [
      makeHeaderPair(":method", "GET"),
      makeHeaderPair(":path", this.config.pingPath),
      makeHeaderPair(":authority", this.config.pingUpstream),
    ];
    this.httpCall(this.config.pingUpstream, headers, new ArrayBuffer(0), [], 1000, this, onPingResponse);
  }
}

function onPingResponse(origin: BaseContext, headers: u32, body_size: usize, trailers: u32): void {
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

registerRootContext((context_id: u32) => new HelloRoot(context_id), "hello-world");
