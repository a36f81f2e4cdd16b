export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, log, LogLevelValues,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";

class HelloRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Hello(context_id, this);
  }
}
class Hello extends Context {
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-hello", "world");
    return FilterHeadersStatusValues.Continue;
  }
  onLog(): void {
    log(LogLevelValues.info, "hello log");
  }
}
registerRootContext((id: u32) => new HelloRoot(id), "hello-world");
