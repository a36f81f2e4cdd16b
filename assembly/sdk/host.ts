// The proxy-wasm calls hookwire's plugins make, over the raw imports of
// @gcoredev/proxy-wasm-sdk-as (assembly/imports.ts, declarations only).
//
// Why not the SDK's own wrappers: its runtime.ts imports malloc.ts, which
// imports the incremental GC ("rt/itcms") by name, so no module that uses it
// can be built with AssemblyScript's minimal runtime (see docs/module-size.md).
// This file keeps the SDK's names and behaviour for what the plugins use and
// works under any runtime: malloc/free pin through the selected runtime.
// Nothing here holds per-call state but the (ptr, len) cell the host writes.
import { decimal } from "./decimal";
import * as imports from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";
import { fd_write } from "bindings/wasi_snapshot_preview1";

export enum LogLevelValues { trace, debug, info, warn, error, critical }
export enum WasmResultValues {
  Ok = 0,
  NotFound = 1,
  BadArgument = 2,
  SerializationFailure = 3,
  ParseFailure = 4,
  BadExpression = 5,
  InvalidMemoryAccess = 6,
  Empty = 7,
  CasMismatch = 8,
  ResultMismatch = 9,
  InternalFailure = 10,
  BrokenConnection = 11,
  Unimplemented = 12,
}
export enum FilterHeadersStatusValues {
  Continue = 0,
  StopIteration = 1,
  ContinueAndEndStream = 2,
  StopAllIterationAndBuffer = 3,
  StopAllIterationAndWatermark = 4,
}
export enum BufferTypeValues {
  HttpRequestBody = 0,
  HttpResponseBody = 1,
  NetworkDownstreamData = 2,
  NetworkUpstreamData = 3,
  HttpCallResponseBody = 4,
  GrpcReceiveBuffer = 5,
  VmConfiguration = 6,
  PluginConfiguration = 7,
  CallData = 8,
}
export enum HeaderMapTypeValues {
  RequestHeaders = 0,
  RequestTrailers = 1,
  ResponseHeaders = 2,
  ResponseTrailers = 3,
  GrpcReceiveInitialMetadata = 4,
  GrpcReceiveTrailingMetadata = 5,
  HttpCallResponseHeaders = 6,
  HttpCallResponseTrailers = 7,
}

// ---- memory the host asks for ----

/** The module's allocator export: a pinned ArrayBuffer the host fills; the guest unpins it when it takes the value. */
export function malloc(size: i32): usize {
  return __pin(changetype<usize>(new ArrayBuffer(size)));
}

/** Give a block from malloc back to the collector. */
export function free(ptr: usize): void {
  __unpin(ptr);
}

/** Where the host writes a returned value's (ptr, len): the SDK's globalArrayBufferReference. */
class ArrayBufferReference {
  private buffer: usize = 0;
  private size: usize = 0;

  sizePtr(): usize {
    return changetype<usize>(this) + offsetof<ArrayBufferReference>("size");
  }
  bufferPtr(): usize {
    return changetype<usize>(this) + offsetof<ArrayBufferReference>("buffer");
  }

  /** The value the host just returned, as a GC-managed buffer (call once per host call). */
  toArrayBuffer(): ArrayBuffer {
    if (this.size == 0) return new ArrayBuffer(0);
    const array = changetype<ArrayBuffer>(this.buffer);
    free(this.buffer);
    return array;
  }
}

export const globalArrayBufferReference = new ArrayBufferReference();

// ---- logging ----

// fd_write's iovec (ptr, len) and its count of bytes written.
const IOV = memory.data(12);

/**
 * One log line on the WASI stdout, "[LEVEL]: message" in UTF-8, info and
 * above: what the SDK's log does (its fastedge logger, level info unless set
 * otherwise, through the WASI shim's process.stdout.write). Written with one
 * fd_write; a failed write is ignored (the shim's would trap, and keeps the
 * name of every WASI errno in the module for its message).
 */
export function log(level: LogLevelValues, message: string): void {
  if (level < LogLevelValues.info) return;
  const prefix = level == LogLevelValues.info ? "[INFO]: " : level == LogLevelValues.warn ? "[WARN]: " : level == LogLevelValues.error ? "[ERROR]: " : "[CRITICAL]: ";
  const line = String.UTF8.encode(prefix + message + "\n");
  store<u32>(IOV, <u32>changetype<usize>(line));
  store<u32>(IOV, <u32>line.byteLength, 4);
  fd_write(1, IOV, 1, IOV + 8);
}

// ---- values ----

/** A buffer (configuration, http call response body...), or an empty one when the host has none. */
export function get_buffer_bytes(typ: BufferTypeValues, start: u32, length: u32): ArrayBuffer {
  const ref = globalArrayBufferReference;
  if (imports.proxy_get_buffer_bytes(typ, start, length, ref.bufferPtr(), ref.sizePtr()) == WasmResultValues.Ok) return ref.toArrayBuffer();
  return new ArrayBuffer(0);
}

/** A property (path segments separated by NUL), or an empty buffer when the host has none. */
export function get_property(path: string): ArrayBuffer {
  const buffer = String.UTF8.encode(path);
  const ref = globalArrayBufferReference;
  const result = imports.proxy_get_property(changetype<usize>(buffer), buffer.byteLength, ref.bufferPtr(), ref.sizePtr());
  checkResult(result);
  if (result == WasmResultValues.Ok) return ref.toArrayBuffer();
  return new ArrayBuffer(0);
}

/** Like the SDK's CHECK_RESULT: a status other than OK or NOT_FOUND is a bug; log it and trap. */
function checkResult(status: u32): void {
  if (status == WasmResultValues.Ok || status == WasmResultValues.NotFound) return;
  log(LogLevelValues.critical, decimal(status));
  throw new Error(":(");
}

export function set_tick_period_milliseconds(millisecond: u32): void {
  checkResult(imports.proxy_set_tick_period_milliseconds(millisecond));
}

/** Report that an unload this module delayed (on_done returned false) may finish. */
export function done(): WasmResultValues {
  return imports.proxy_done();
}

// ---- headers ----

/** One header map of the current stream (or http call response). */
export class HeaderMap {
  constructor(public typ: HeaderMapTypeValues) {}

  /** The header's value, "" when absent. */
  get(key: string): string {
    const k = String.UTF8.encode(key);
    const ref = globalArrayBufferReference;
    if (imports.proxy_get_header_map_value(this.typ, changetype<usize>(k), k.byteLength, ref.bufferPtr(), ref.sizePtr()) == WasmResultValues.Ok) {
      return String.UTF8.decode(ref.toArrayBuffer());
    }
    return "";
  }

  add(key: string, value: string): void {
    const k = String.UTF8.encode(key);
    const v = String.UTF8.encode(value);
    imports.proxy_add_header_map_value(this.typ, changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
  }
}

class HeaderMaps {
  request: HeaderMap;
  response: HeaderMap;
  http_callback: HeaderMap;
  constructor(request: HeaderMapTypeValues, response: HeaderMapTypeValues, callback: HeaderMapTypeValues) {
    this.request = new HeaderMap(request);
    this.response = new HeaderMap(response);
    this.http_callback = new HeaderMap(callback);
  }
}

class StreamContext {
  headers: HeaderMaps = new HeaderMaps(HeaderMapTypeValues.RequestHeaders, HeaderMapTypeValues.ResponseHeaders, HeaderMapTypeValues.HttpCallResponseHeaders);
}

/** The current stream's header maps, as the SDK's stream_context. */
export const stream_context = new StreamContext();

export enum GrpcStatusValues { InvalidCode = -1 }

/**
 * Answer the stream from here (the host stops sending it upstream).
 * `headers`: extra response headers in the pairs format (event-hooks/host serializePairs).
 */
export function send_local_response(response_code: u32, response_code_details: string, body: ArrayBuffer, headers: ArrayBuffer, grpc_status: GrpcStatusValues): WasmResultValues {
  const details = String.UTF8.encode(response_code_details);
  return imports.proxy_send_local_response(response_code, changetype<usize>(details), details.byteLength,
    changetype<usize>(body), body.byteLength, changetype<usize>(headers), headers.byteLength, grpc_status);
}
