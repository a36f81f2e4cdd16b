/**
 * The guest's linear memory, seen from the host.
 *
 * Guest -> host values are (ptr, len) ranges we read. Host -> guest values are
 * copied into a block the guest allocates through its `malloc` (or
 * `proxy_on_memory_allocate`) export; ptr and len are then written at the
 * guest's return pointers. The allocator re-enters the guest and may grow the
 * memory, which detaches the old ArrayBuffer, so views are re-read lazily.
 */
import { HeaderMap } from './header-map.js';

/** Thrown inside a host call when the guest passed a range outside its memory. */
export class MemoryAccessError extends Error {
  constructor(ptr: number, len: number, size: number) {
    super(`memory access out of bounds: [${ptr}, ${ptr + len}) of ${size} bytes`);
  }
}

export type Allocator = (size: number) => number;

export class GuestMemory {
  private readonly memory: WebAssembly.Memory;
  private readonly allocate: Allocator;
  private bytes: Buffer;

  constructor(memory: WebAssembly.Memory, allocate: Allocator) {
    this.memory = memory;
    this.allocate = allocate;
    this.bytes = Buffer.from(memory.buffer);
  }

  /**
   * The current byte view. Growing a (non-shared) memory detaches its old
   * ArrayBuffer, which turns our view's length to 0: that is the cheap signal
   * to re-read `memory.buffer` (a getter that crosses into the engine).
   */
  buffer(): Buffer {
    const b = this.bytes;
    return b.length !== 0 ? b : (this.bytes = Buffer.from(this.memory.buffer));
  }

  get size(): number {
    return this.buffer().length;
  }

  check(ptr: number, len: number): void {
    // ptr/len arrive as i32: normalise the sign so huge u32 values are caught.
    if (ptr < 0 || len < 0 || ptr + len > this.buffer().length) {
      throw new MemoryAccessError(ptr >>> 0, len >>> 0, this.buffer().length);
    }
  }

  /** A view (no copy) of guest bytes; valid only until the guest runs again. */
  view_(ptr: number, len: number): Buffer {
    ptr >>>= 0;
    len >>>= 0;
    this.check(ptr, len);
    return this.buffer().subarray(ptr, ptr + len);
  }

  /** A copy of guest bytes the host may keep. */
  copy(ptr: number, len: number): Buffer {
    return Buffer.from(this.view_(ptr, len));
  }

  /** Guest bytes as a byte string (latin1): header names and values. */
  latin1(ptr: number, len: number): string {
    ptr >>>= 0;
    len >>>= 0;
    this.check(ptr, len);
    return this.buffer().toString('latin1', ptr, ptr + len);
  }

  /** Guest bytes decoded as UTF-8: log messages, names, paths. */
  utf8(ptr: number, len: number): string {
    ptr >>>= 0;
    len >>>= 0;
    this.check(ptr, len);
    return this.buffer().toString('utf8', ptr, ptr + len);
  }

  u32(ptr: number): number {
    ptr >>>= 0;
    this.check(ptr, 4);
    return this.bytes.readUInt32LE(ptr);
  }

  setU32(ptr: number, value: number): void {
    ptr >>>= 0;
    this.check(ptr, 4);
    this.bytes.writeUInt32LE(value >>> 0, ptr);
  }

  setU64(ptr: number, value: bigint): void {
    ptr >>>= 0;
    this.check(ptr, 8);
    this.bytes.writeBigUInt64LE(BigInt.asUintN(64, value), ptr);
  }

  /**
   * Give the guest a copy of `data` (bytes, or a latin1 byte string): allocate,
   * copy, then write ptr and len at the return pointers. Empty values are
   * written as (0, 0) without allocating (the AS SDKs free only non-empty blocks).
   */
  give(retPtr: number, retLen: number, data: Uint8Array | string): void {
    // Validate the return pointers before allocating, so a bad pointer leaks nothing.
    this.check(retPtr >>> 0, 4);
    this.check(retLen >>> 0, 4);
    const len = typeof data === 'string' ? data.length : data.byteLength;
    if (len === 0) {
      this.setU32(retPtr, 0);
      this.setU32(retLen, 0);
      return;
    }
    const ptr = this.alloc(len);
    const buf = this.buffer();
    if (typeof data === 'string') buf.write(data, ptr, len, 'latin1');
    else buf.set(data, ptr);
    this.setU32(retPtr, ptr);
    this.setU32(retLen, len);
  }

  /** Give the guest a JS string as UTF-8, encoded straight into its memory. */
  giveUtf8(retPtr: number, retLen: number, text: string): void {
    // All-ASCII (the usual case): the UTF-8 length is the string length.
    const len = Buffer.byteLength(text, 'utf8');
    if (len === 0) return this.give(retPtr, retLen, '');
    this.check(retPtr >>> 0, 4);
    this.check(retLen >>> 0, 4);
    const ptr = this.alloc(len);
    this.buffer().write(text, ptr, len, 'utf8');
    this.setU32(retPtr, ptr);
    this.setU32(retLen, len);
  }

  /** Give the guest a header map in the pairs format, serialized straight into its memory. */
  givePairs(retPtr: number, retLen: number, map: HeaderMap): void {
    this.check(retPtr >>> 0, 4);
    this.check(retLen >>> 0, 4);
    const f = map.flat;
    const n = f.length >> 1;
    if (n === 0) {
      this.setU32(retPtr, 0);
      this.setU32(retLen, 0);
      return;
    }
    const size = pairsSize(f);
    const ptr = this.alloc(size);
    writePairs(this.buffer(), ptr, f);
    this.setU32(retPtr, ptr);
    this.setU32(retLen, size);
  }

  /** Read a pairs-format map the guest passed as (ptr, len). */
  readPairs(ptr: number, len: number): string[] | null {
    if ((len >>> 0) === 0) return [];
    return parsePairs(this.view_(ptr, len));
  }

  private alloc(len: number): number {
    const ptr = this.allocate(len) >>> 0;
    if (ptr === 0) throw new MemoryAccessError(0, len, this.size);
    this.check(ptr, len);
    return ptr;
  }
}

/** Size of the pairs serialization of a flat [k, v, ...] list. */
export function pairsSize(flat: readonly string[]): number {
  let size = 4 + (flat.length >> 1) * 8;
  for (let i = 0; i < flat.length; i++) size += flat[i]!.length + 1;
  return size;
}

/**
 * Pairs format (little-endian): u32 count, then {u32 keyLen, u32 valueLen} per
 * pair, then "key\0value\0" per pair.
 */
export function writePairs(buf: Buffer, at: number, flat: readonly string[]): void {
  const n = flat.length >> 1;
  buf.writeUInt32LE(n, at);
  let sizes = at + 4;
  let data = at + 4 + n * 8;
  for (let i = 0; i < flat.length; i += 2) {
    const k = flat[i]!;
    const v = flat[i + 1]!;
    buf.writeUInt32LE(k.length, sizes);
    buf.writeUInt32LE(v.length, sizes + 4);
    sizes += 8;
    buf.write(k, data, k.length, 'latin1');
    data += k.length;
    buf[data++] = 0;
    buf.write(v, data, v.length, 'latin1');
    data += v.length;
    buf[data++] = 0;
  }
}

export function serializePairs(flat: readonly string[]): Buffer {
  const buf = Buffer.allocUnsafe(pairsSize(flat));
  writePairs(buf, 0, flat);
  return buf;
}

/** Parse the pairs format; null when the bytes are not a well-formed map. */
export function parsePairs(bytes: Buffer): string[] | null {
  if (bytes.length === 0) return [];
  // A lone 0x00 byte is how some SDKs send an empty map.
  if (bytes.length < 4) return bytes.every((b) => b === 0) ? [] : null;
  const n = bytes.readUInt32LE(0);
  if (n > (bytes.length - 4) / 8) return null;
  const flat = new Array<string>(n * 2);
  let sizes = 4;
  let data = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    const kl = bytes.readUInt32LE(sizes);
    const vl = bytes.readUInt32LE(sizes + 4);
    sizes += 8;
    if (data + kl + vl + 2 > bytes.length) return null;
    flat[2 * i] = bytes.toString('latin1', data, data + kl);
    data += kl + 1;
    flat[2 * i + 1] = bytes.toString('latin1', data, data + vl);
    data += vl + 1;
  }
  return flat;
}
