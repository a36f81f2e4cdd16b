// Scratch reads: property values and header maps that live in a reused block
// instead of the GC heap.
//
// proxy-wasm hands every value over in a block the host allocates through the
// module's `malloc` export. The SDK's malloc makes each block a GC-managed
// ArrayBuffer (allocate, pin, unpin, collect later), which is most of the cost
// of a property read for a filter that reads a dozen of them per request.
// While readProperty/readHeaderMap run, this module's malloc bump-allocates
// from one block instead; the host fills it during that same call (Envoy and
// hookwire both allocate synchronously inside the host call). The values are
// views (ptr, len) that stay valid until the next resetScratch(). Every other
// allocation (the SDK's own reads, configuration, http call responses) still
// goes to the GC heap.
//
// A module using this exports `malloc` from here instead of the SDK's.
import * as imports from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";
import { malloc as heapMalloc, WasmResultValues } from "../sdk/host";
import { decodeIntAt } from "./host";

const INITIAL_BLOCK: i32 = 8192;

let scratchOn = false;
let block = new ArrayBuffer(INITIAL_BLOCK);
let used: i32 = 0;
/** Blocks that did not fit in `block`, kept alive until the reset. */
const spill = new Array<ArrayBuffer>();
let spilled: i32 = 0;

/** The module's allocator export: scratch while a scratch read runs, the GC heap otherwise. */
export function malloc(size: i32): usize {
  if (!scratchOn) return heapMalloc(size);
  const need = (size + 7) & ~7;
  if (used + need <= block.byteLength) {
    const p = changetype<usize>(block) + <usize>used;
    used += need;
    return p;
  }
  const b = new ArrayBuffer(size);
  spill.push(b);
  spilled += need;
  return changetype<usize>(b);
}

/** Forget every scratch value; the block grows to what the last round needed. */
export function resetScratch(): void {
  if (spilled > 0) {
    let cap = block.byteLength;
    while (cap < used + spilled) cap <<= 1;
    block = new ArrayBuffer(cap);
    spill.length = 0;
    spilled = 0;
  }
  used = 0;
}

/** The value of the last successful scratch read. */
export let valuePtr: usize = 0;
export let valueLen: i32 = 0;
/** Status of the last scratch read. */
export let readStatus: u32 = 0;

// Where the host writes (ptr, len): static memory, not the heap.
const RET = memory.data(8);

function finishRead(status: u32): bool {
  readStatus = status;
  if (status != WasmResultValues.Ok) {
    valuePtr = 0;
    valueLen = 0;
    return false;
  }
  valuePtr = <usize>load<u32>(RET);
  valueLen = <i32>load<u32>(RET + 4);
  return true;
}

/** Read a property (its NUL-separated path: the n bytes at p) into scratch memory: valuePtr/valueLen; false when the host has none. */
export function readProperty(p: usize, n: i32): bool {
  scratchOn = true;
  const status = imports.proxy_get_property(p, n, RET, RET + 4);
  scratchOn = false;
  return finishRead(status);
}

/** Read a header map (pairs format; 0 request, 2 response headers) into scratch memory. */
export function readHeaderMap(mapType: i32): bool {
  scratchOn = true;
  const status = imports.proxy_get_header_map_pairs(mapType, RET, RET + 4);
  scratchOn = false;
  return finishRead(status);
}

/**
 * A byte range in scratch memory (or anywhere that outlives its use).
 * Unmanaged (no references to trace; the collector neither visits nor frees
 * it): make them once, as module globals, never per request.
 */
@unmanaged
export class Slice {
  ptr: usize = 0;
  len: i32 = 0;
  /** False: the value is missing (not the same as empty). */
  ok: bool = false;

  clear(): void {
    this.ptr = 0;
    this.len = 0;
    this.ok = false;
  }

  set(ptr: usize, len: i32): void {
    this.ptr = ptr;
    this.len = len;
    this.ok = true;
  }

  setFrom(other: Slice): void {
    this.ptr = other.ptr;
    this.len = other.len;
    this.ok = other.ok;
  }

  /** Set to the last scratch read's value when it succeeded; returns ok. */
  fromRead(found: bool): bool {
    if (found) this.set(valuePtr, valueLen);
    else this.clear();
    return found;
  }

  equals(b: ArrayBuffer): bool {
    return this.ok && this.len == b.byteLength && memory.compare(this.ptr, changetype<usize>(b), this.len) == 0;
  }
}

/** An integer property value (Envoy's 8-byte LE, or decimal text), or `fallback` when missing or unreadable. */
export function sliceInt(s: Slice, fallback: i64): i64 {
  return s.ok ? decodeIntAt(s.ptr, s.len, fallback) : fallback;
}
