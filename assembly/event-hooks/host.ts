// Thin helpers over the raw proxy-wasm imports, for calls whose status matters.
// The SDK's wrappers abort the VM on any status but OK/NOT_FOUND (CHECK_RESULT)
// and build property paths with dots, which Envoy does not split on; these
// return the status or null instead, and take NUL-separated paths.
import * as imports from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";
import { globalArrayBufferReference, WasmResultValues } from "../sdk/host";

/**
 * A property path as Envoy wants it: segments separated by NUL, UTF-8.
 * The argument uses dots between segments; write "\." for a dot inside a
 * segment ("metadata.filter_metadata.envoy\.lb").
 */
export function propertyPath(dotted: string): ArrayBuffer {
  let out = "";
  let i = 0;
  const n = dotted.length;
  while (i < n) {
    const c = dotted.charCodeAt(i);
    if (c == 0x5c && i + 1 < n && dotted.charCodeAt(i + 1) == 0x2e) {
      out += ".";
      i += 2;
      continue;
    }
    out += c == 0x2e ? "\0" : String.fromCharCode(c);
    i++;
  }
  return String.UTF8.encode(out);
}

/** Status of the last getProperty call. */
export let propertyStatus: u32 = 0;

/**
 * A property's raw value (Envoy encodings), or null when the host has none.
 * An empty value is an empty (non-null) buffer.
 */
export function getProperty(path: ArrayBuffer): ArrayBuffer | null {
  const ref = globalArrayBufferReference;
  propertyStatus = imports.proxy_get_property(changetype<usize>(path), path.byteLength, ref.bufferPtr(), ref.sizePtr());
  if (propertyStatus != WasmResultValues.Ok) return null;
  return ref.toArrayBuffer();
}

/** A string property (raw UTF-8 bytes decoded), or null. */
export function getPropertyString(path: ArrayBuffer): string | null {
  const v = getProperty(path);
  return v === null ? null : String.UTF8.decode(v);
}

/**
 * An integer property: Envoy sends 8-byte little-endian int64 (ints, sizes,
 * timestamps and durations in ns); some hosts send decimal text. Returns
 * `fallback` when missing or unreadable.
 */
export function getPropertyInt(path: ArrayBuffer, fallback: i64): i64 {
  const v = getProperty(path);
  if (v === null) return fallback;
  return decodeInt(v, fallback);
}

export function decodeInt(v: ArrayBuffer, fallback: i64): i64 {
  return decodeIntAt(changetype<usize>(v), v.byteLength, fallback);
}

/** decodeInt over the n bytes at p. */
export function decodeIntAt(p: usize, n: i32, fallback: i64): i64 {
  if (n == 8) {
    // Could still be 8 ASCII digits from a text-encoding host.
    let allDigits = true;
    for (let i = 0; i < 8; i++) {
      const c = load<u8>(p + i);
      if (c < 0x30 || c > 0x39) {
        allDigits = false;
        break;
      }
    }
    if (!allDigits) return load<i64>(p);
  }
  if (n == 0 || n > 20) return fallback;
  let neg = false;
  let i = 0;
  if (load<u8>(p) == 0x2d) {
    neg = true;
    i = 1;
    if (n == 1) return fallback;
  }
  let r: i64 = 0;
  for (; i < n; i++) {
    const c = load<u8>(p + i);
    if (c < 0x30 || c > 0x39) return fallback;
    r = r * 10 + <i64>(c - 0x30);
  }
  return neg ? -r : r;
}

let nowCell: u64 = 0;

/** Wall clock in ns since the epoch (proxy_get_current_time_nanoseconds). */
export function nowNanos(): u64 {
  const ptr = changetype<usize>(memory.data(8));
  if (imports.proxy_get_current_time_nanoseconds(ptr) != WasmResultValues.Ok) return nowCell;
  nowCell = load<u64>(ptr);
  return nowCell;
}

/** Wall clock in ms since the epoch. */
export function nowMillis(): i64 {
  return <i64>(nowNanos() / 1_000_000);
}

/** Make `contextId` the context later host calls act on (e.g. the root, for http calls that must outlive a stream). */
export function setEffectiveContext(contextId: u32): bool {
  return imports.proxy_set_effective_context(contextId) == WasmResultValues.Ok;
}

/** Change the root context's tick period (0 stops it). */
export function setTickPeriod(ms: u32): bool {
  return imports.proxy_set_tick_period_milliseconds(ms) == WasmResultValues.Ok;
}

/**
 * proxy_done: a root context that returned false from proxy_on_done (to
 * finish work before it is unloaded) reports that it has finished; the host
 * then deletes it. Call it from a root callback (tick, http call response).
 */
export function rootDone(): bool {
  return imports.proxy_done() == WasmResultValues.Ok;
}

/** proxy_http_call with serialized pairs; returns the status, the token in `httpCallToken`. */
export let httpCallToken: u32 = 0;

export function httpCall(cluster: ArrayBuffer, headers: ArrayBuffer, body: ArrayBuffer, timeoutMs: u32): u32 {
  const tokenPtr = changetype<usize>(memory.data(4));
  const status = imports.proxy_http_call(
    changetype<usize>(cluster), cluster.byteLength,
    changetype<usize>(headers), headers.byteLength,
    changetype<usize>(body), body.byteLength,
    0, 0, timeoutMs, tokenPtr,
  );
  httpCallToken = status == WasmResultValues.Ok ? load<u32>(tokenPtr) : 0;
  return status;
}

/** Serialize header pairs in the proxy-wasm pairs format. `flat` is [name0, value0, name1, value1, ...]. */
export function serializePairs(flat: string[]): ArrayBuffer {
  const count = flat.length >> 1;
  const encoded = new Array<ArrayBuffer>(flat.length);
  let size = 4 + count * 8;
  // In bounds by the loops' conditions: unchecked access.
  for (let i = 0; i < flat.length; i++) {
    const e = String.UTF8.encode(unchecked(flat[i]));
    unchecked((encoded[i] = e));
    size += e.byteLength + 1;
  }
  const out = new ArrayBuffer(size);
  const p = changetype<usize>(out);
  store<u32>(p, count);
  let data = p + 4 + count * 8;
  for (let i = 0; i < flat.length; i++) {
    const e = unchecked(encoded[i]);
    store<u32>(p + 4 + i * 4, e.byteLength);
    memory.copy(data, changetype<usize>(e), e.byteLength);
    data += e.byteLength;
    store<u8>(data, 0);
    data++;
  }
  return out;
}

/** The message of the last http call / gRPC status (proxy_get_status), or "". */
export function lastStatusMessage(): string {
  const codePtr = changetype<usize>(memory.data(4));
  const ref = globalArrayBufferReference;
  if (imports.proxy_get_status(codePtr, ref.bufferPtr(), ref.sizePtr()) != WasmResultValues.Ok) return "";
  return String.UTF8.decode(ref.toArrayBuffer());
}

/** The status of a shared queue call in `queueStatus`, the id in `queueId`. */
export let queueId: u32 = 0;

export function resolveQueue(vmId: ArrayBuffer, name: ArrayBuffer): u32 {
  const idPtr = changetype<usize>(memory.data(4));
  const status = imports.proxy_resolve_shared_queue(changetype<usize>(vmId), vmId.byteLength, changetype<usize>(name), name.byteLength, idPtr);
  queueId = status == WasmResultValues.Ok ? load<u32>(idPtr) : 0;
  return status;
}

export function registerQueue(name: ArrayBuffer): u32 {
  const idPtr = changetype<usize>(memory.data(4));
  const status = imports.proxy_register_shared_queue(changetype<usize>(name), name.byteLength, idPtr);
  queueId = status == WasmResultValues.Ok ? load<u32>(idPtr) : 0;
  return status;
}

export function enqueue(id: u32, ptr: usize, len: i32): u32 {
  return imports.proxy_enqueue_shared_queue(id, ptr, len);
}

/** Status of the last dequeue. */
export let dequeueStatus: u32 = 0;

/** The next item of a queue this VM registered, or null (EMPTY, NOT_FOUND...: see dequeueStatus). */
export function dequeue(id: u32): ArrayBuffer | null {
  const ref = globalArrayBufferReference;
  dequeueStatus = imports.proxy_dequeue_shared_queue(id, ref.bufferPtr(), ref.sizePtr());
  if (dequeueStatus != WasmResultValues.Ok) return null;
  return ref.toArrayBuffer();
}

/** A header map in the pairs format (0 request, 2 response headers...), or null. */
export function getHeaderMapPairs(mapType: i32): ArrayBuffer | null {
  const ref = globalArrayBufferReference;
  if (imports.proxy_get_header_map_pairs(mapType, ref.bufferPtr(), ref.sizePtr()) != WasmResultValues.Ok) return null;
  return ref.toArrayBuffer();
}
