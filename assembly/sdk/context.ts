// Root and stream contexts and the exported callbacks that reach them, with
// the SDK's (@gcoredev/proxy-wasm-sdk-as) class names and behaviour for what
// hookwire's plugins use, minus the debug log lines the SDK builds on every
// callback before the level is checked. A plugin re-exports the callbacks it
// needs by name (a host skips a stream callback a module does not export and
// goes on), and wraps its own exports in enter()/leave() (./gc).
import { get_buffer_bytes, BufferTypeValues, FilterHeadersStatusValues } from "./host";
import { enter, leave } from "./gc";

export abstract class BaseContext {
  constructor(public context_id: u32) {}

  /** The host unloads (root) or ends (stream) this context: true, done now; false, call done() later (root). */
  onDone(): bool {
    return true;
  }

  onDelete(): void {}
}

/** The plugin's one root context: configuration, timers, http call responses. */
export class RootContext extends BaseContext {
  private configuration_: string = "";

  getConfiguration(): string {
    return this.configuration_;
  }

  /** A stream's context; a plugin with stream callbacks returns its own subclass. */
  createContext(context_id: u32): Context {
    return new Context(context_id, this);
  }

  onStart(vm_configuration_size: u32): bool {
    return true;
  }

  validateConfiguration(configuration_size: u32): bool {
    return true;
  }

  /** Keeps the plugin configuration as text (getConfiguration); none (size 0) keeps the previous one. */
  onConfigure(configuration_size: u32): bool {
    if (configuration_size == 0) return true;
    this.configuration_ = String.UTF8.decode(get_buffer_bytes(BufferTypeValues.PluginConfiguration, 0, configuration_size));
    return true;
  }

  onTick(): void {}

  onQueueReady(token: u32): void {}

  onHttpCallResponse(token: u32, headers: u32, body_size: u32, trailers: u32): void {}
}

/** A stream (request) context; every phase continues unless the plugin overrides it. */
export class Context extends BaseContext {
  constructor(context_id: u32, public root_context: RootContext) {
    super(context_id);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    return FilterHeadersStatusValues.Continue;
  }

  onLog(): void {}
}

let rootFactory: ((context_id: u32) => RootContext) | null = null;
let root: RootContext | null = null;
const streams = new Map<u32, Context>();

/** Register the plugin's root context factory (the name is kept for the SDK's signature; unused). */
export function registerRootContext(factory: (context_id: u32) => RootContext, name: string): void {
  rootFactory = factory;
}

/** The root context, created on first use. */
export function ensureRootContext(root_context_id: u32): RootContext {
  let r = root;
  if (r === null) {
    const factory = rootFactory;
    if (factory === null) throw new Error("Missing root context factory");
    r = factory(root_context_id);
    r.context_id = root_context_id;
    root = r;
  }
  return r;
}

/** The root context (the module has one; the id is not checked, as in the SDK). */
export function getRootContext(context_id: u32): RootContext {
  return root!;
}

/** A live stream context (aborts for an unknown id, as the SDK does). */
export function getContext(context_id: u32): Context {
  return streams.get(context_id);
}

// ---- the exported callbacks ----

export function proxy_abi_version_0_2_1(): void {}

export function proxy_on_vm_start(root_context_id: u32, configuration_size: u32): u32 {
  enter();
  const ok = getRootContext(root_context_id).onStart(configuration_size);
  leave();
  return ok ? 1 : 0;
}

export function proxy_validate_configuration(root_context_id: u32, configuration_size: u32): u32 {
  enter();
  const ok = getRootContext(root_context_id).validateConfiguration(configuration_size);
  leave();
  return ok ? 1 : 0;
}

export function proxy_on_configure(root_context_id: u32, configuration_size: u32): u32 {
  enter();
  const ok = getRootContext(root_context_id).onConfigure(configuration_size);
  leave();
  return ok ? 1 : 0;
}

export function proxy_on_tick(root_context_id: u32): void {
  enter();
  getRootContext(root_context_id).onTick();
  leave();
}

export function proxy_on_queue_ready(root_context_id: u32, token: u32): void {
  enter();
  getRootContext(root_context_id).onQueueReady(token);
  leave();
}

export function proxy_on_foreign_function(root_context_id: u32, function_id: u32, data_size: u32): void {}

export function proxy_on_http_call_response(context_id: u32, token: u32, headers: u32, body_size: u32, trailers: u32): void {
  enter();
  getRootContext(context_id).onHttpCallResponse(token, headers, body_size, trailers);
  leave();
}

/** A root (parent 0) or a stream context (created by the root's createContext). */
export function proxy_on_context_create(context_id: u32, root_context_id: u32): void {
  enter();
  if (root_context_id == 0) {
    ensureRootContext(context_id);
  } else {
    const r = ensureRootContext(root_context_id);
    if (!streams.has(context_id)) streams.set(context_id, r.createContext(context_id));
  }
  leave();
}

export function proxy_on_request_headers(context_id: u32, headers: u32, end_of_stream: u32): u32 {
  enter();
  const status = getContext(context_id).onRequestHeaders(headers, end_of_stream != 0);
  leave();
  return status;
}

export function proxy_on_response_headers(context_id: u32, headers: u32, end_of_stream: u32): u32 {
  enter();
  const status = getContext(context_id).onResponseHeaders(headers, end_of_stream != 0);
  leave();
  return status;
}

export function proxy_on_log(context_id: u32): void {
  enter();
  getContext(context_id).onLog();
  leave();
}

/** The root's unload (its onDone may ask the host to wait for done()) or a stream's end. */
export function proxy_on_done(context_id: u32): u32 {
  enter();
  const r = root;
  const ok = r !== null && context_id == r.context_id ? r.onDone() : getContext(context_id).onDone();
  leave();
  return ok ? 1 : 0;
}

/** No more calls for this context: the stream's entry is dropped. */
export function proxy_on_delete(context_id: u32): void {
  enter();
  const r = root;
  if (r !== null && context_id == r.context_id) {
    r.onDelete();
  } else {
    getContext(context_id).onDelete();
    streams.delete(context_id);
  }
  leave();
}
