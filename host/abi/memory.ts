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

/** A byte string decoded once from a guest address, with the bytes it came from. */
interface CachedText {
  /** The guest address it was read from. */
  readonly ptr: number;
  readonly bytes: Uint8Array;
  /** The same bytes as 32-bit words (the whole words of `bytes`), for a quicker comparison. */
  readonly words: Uint32Array;
  readonly text: string;
}

/** Longest name kept in the name cache, and its sets of two slots (NAME_SET_BITS bits of a hash of the address pick the set). */
const MAX_CACHED_NAME = 128;
const NAME_SET_BITS = 10;

export class GuestMemory {
  private readonly memory: WebAssembly.Memory;
  private readonly allocate: Allocator;
  private bytes: Buffer;
  /** Int64 and u32 views of the same memory (re-read after growth like `bytes`). */
  private int64s: BigInt64Array;
  private u32s: Uint32Array;
  /**
   * Names (property paths, header names) by guest address: plugins pass the
   * same constants on every request. Two slots per address hash (so two
   * constants that hash alike do not evict each other on every request; a
   * new name goes first, the one it displaces second), not a Map: the SDK's
   * own get_property encodes the path into a fresh guest block on every call,
   * so a miss per call is usual, and a Map churned by misses leaves old tables
   * that keep their entries alive through the young collections (see
   * host/vm/id-table.ts).
   */
  private readonly names = new Array<CachedText | undefined>(2 << NAME_SET_BITS).fill(undefined);

  constructor(memory: WebAssembly.Memory, allocate: Allocator) {
    this.memory = memory;
    this.allocate = allocate;
    this.bytes = Buffer.from(memory.buffer);
    this.int64s = new BigInt64Array(memory.buffer);
    this.u32s = new Uint32Array(memory.buffer);
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
    const view = this.view_(ptr, len);
    const out = Buffer.allocUnsafe(view.length); // every byte is overwritten: no zero fill
    out.set(view);
    return out;
  }

  /** Guest bytes as a byte string (latin1): header names and values. */
  latin1(ptr: number, len: number): string {
    ptr >>>= 0;
    len >>>= 0;
    this.check(ptr, len);
    return this.buffer().toString('latin1', ptr, ptr + len);
  }

  /**
   * Like latin1(), for names a guest passes again and again from the same
   * address (property paths, header names): the decoded string is reused
   * while the bytes at that address are unchanged, so it is neither decoded
   * nor re-hashed (as a Map key) on every call.
   */
  name(ptr: number, len: number): string {
    ptr >>>= 0;
    len >>>= 0;
    this.check(ptr, len);
    const buf = this.buffer();
    // Fibonacci hashing: the top bits of ptr * 2^32/phi spread nearby addresses over the sets.
    const set = (Math.imul(ptr, 0x9e3779b1) >>> (32 - NAME_SET_BITS)) << 1;
    const names = this.names;
    const first = names[set];
    if (first !== undefined && first.ptr === ptr && first.bytes.length === len && this.sameBytes(ptr, first)) return first.text;
    const second = names[set + 1];
    if (second !== undefined && second.ptr === ptr && second.bytes.length === len && this.sameBytes(ptr, second)) return second.text;
    const text = buf.toString('latin1', ptr, ptr + len);
    if (len <= MAX_CACHED_NAME) {
      const bytes = Uint8Array.prototype.slice.call(buf, ptr, ptr + len);
      names[set + 1] = first;
      names[set] = { ptr, bytes, words: new Uint32Array(bytes.buffer, 0, len >>> 2), text };
    }
    return text;
  }

  /** Whether the guest bytes at ptr still are the cached name's (its length already matched). */
  private sameBytes(ptr: number, hit: CachedText): boolean {
    const b = hit.bytes;
    const len = b.length;
    let i = 0;
    if ((ptr & 3) === 0) {
      // Four bytes per comparison: names are constants in the guest's data, usually aligned.
      const words = hit.words;
      const u32 = this.u32View();
      const at = ptr >>> 2;
      for (let w = 0; w < words.length; w++) if (u32[at + w] !== words[w]) return false;
      i = words.length << 2;
    }
    const buf = this.bytes;
    for (; i < len; i++) if (buf[ptr + i] !== b[i]) return false;
    return true;
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

  /**
   * Write a (ptr, len) result at the two return pointers, already checked by
   * the caller (memory only grows, so a check made before an allocation holds).
   */
  private setResult(retPtr: number, retLen: number, ptr: number, len: number): void {
    retPtr >>>= 0;
    retLen >>>= 0;
    if (((retPtr | retLen) & 3) === 0) {
      let view = this.u32s;
      if (view.length === 0) view = this.u32s = new Uint32Array(this.memory.buffer);
      view[retPtr >>> 2] = ptr;
      view[retLen >>> 2] = len;
      return;
    }
    const buf = this.buffer();
    buf.writeUInt32LE(ptr >>> 0, retPtr);
    buf.writeUInt32LE(len >>> 0, retLen);
  }

  setU64(ptr: number, value: bigint): void {
    ptr >>>= 0;
    this.check(ptr, 8);
    if ((ptr & 7) === 0) {
      // One typed-array store (it wraps to 64 bits itself) instead of Buffer's BigInt arithmetic.
      this.int64View()[ptr >>> 3] = value;
      return;
    }
    this.bytes.writeBigUInt64LE(BigInt.asUintN(64, value), ptr);
  }

  private u32View(): Uint32Array {
    const view = this.u32s;
    return view.length !== 0 ? view : (this.u32s = new Uint32Array(this.memory.buffer));
  }

  private int64View(): BigInt64Array {
    const view = this.int64s;
    return view.length !== 0 ? view : (this.int64s = new BigInt64Array(this.memory.buffer));
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
      this.setResult(retPtr, retLen, 0, 0);
      return;
    }
    const ptr = this.alloc(len);
    const buf = this.buffer();
    if (typeof data === 'string') writeLatin1(buf, data, ptr);
    else buf.set(data, ptr);
    this.setResult(retPtr, retLen, ptr, len);
  }

  /**
   * Give the guest a 64-bit little-endian integer (Envoy's int, duration and
   * timestamp encoding), written straight into its memory.
   */
  giveInt64(retPtr: number, retLen: number, value: number | bigint): void {
    this.check(retPtr >>> 0, 4);
    this.check(retLen >>> 0, 4);
    const ptr = this.alloc(8);
    const buf = this.buffer();
    if (typeof value === 'number' && value >= 0 && value <= Number.MAX_SAFE_INTEGER && Number.isInteger(value)) {
      if ((ptr & 3) === 0) {
        const u32 = this.u32View();
        u32[ptr >>> 2] = value >>> 0;
        u32[(ptr >>> 2) + 1] = Math.floor(value / 4294967296);
      } else {
        buf.writeUInt32LE(value >>> 0, ptr);
        buf.writeUInt32LE(Math.floor(value / 4294967296), ptr + 4);
      }
    } else if (typeof value === 'bigint' && (ptr & 7) === 0 && value >= INT64_MIN && value <= INT64_MAX) {
      // Guest allocators align to 8 or more: one typed-array store instead of Buffer's BigInt arithmetic.
      this.int64View()[ptr >>> 3] = value;
    } else {
      buf.writeBigInt64LE(toInt64(value), ptr);
    }
    this.setResult(retPtr, retLen, ptr, 8);
  }

  /** Give the guest a JS string as UTF-8, encoded straight into its memory. */
  giveUtf8(retPtr: number, retLen: number, text: string): void {
    // A short all-ASCII string (the usual case) is its own UTF-8: copied by a JS loop.
    const ascii = text.length < SHORT_STRING && isAscii(text);
    const len = ascii ? text.length : Buffer.byteLength(text, 'utf8');
    if (len === 0) return this.give(retPtr, retLen, '');
    this.check(retPtr >>> 0, 4);
    this.check(retLen >>> 0, 4);
    const ptr = this.alloc(len);
    if (ascii) writeLatin1(this.buffer(), text, ptr);
    else this.buffer().write(text, ptr, len, 'utf8');
    this.setResult(retPtr, retLen, ptr, len);
  }

  /** Give the guest a header map in the pairs format, serialized straight into its memory. */
  givePairs(retPtr: number, retLen: number, map: HeaderMap): void {
    this.check(retPtr >>> 0, 4);
    this.check(retLen >>> 0, 4);
    // A shallow copy (the strings are immutable): the guest's malloc runs guest
    // code, which may edit this very map; what is written must be what was sized.
    const f = map.flat.slice();
    const n = f.length >> 1;
    if (n === 0) {
      this.setResult(retPtr, retLen, 0, 0);
      return;
    }
    const size = pairsSize(f);
    const ptr = this.alloc(size);
    if ((ptr & 3) === 0) writePairsAligned(this.buffer(), this.u32View(), ptr, f);
    else writePairs(this.buffer(), ptr, f);
    this.setResult(retPtr, retLen, ptr, size);
  }

  /** Read a pairs-format map the guest passed as (ptr, len). */
  readPairs(ptr: number, len: number): string[] | null {
    if ((len >>> 0) === 0) {
      // Empty, but still a range: a pointer past the end is a bad access (as in proxy-wasm-cpp-host).
      this.check(ptr >>> 0, 0);
      return [];
    }
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
    data = writeLatin1(buf, k, data);
    buf[data++] = 0;
    data = writeLatin1(buf, v, data);
    buf[data++] = 0;
  }
}

/** writePairs at a 4-aligned address: the count and sizes as typed-array stores (no Buffer method calls). */
function writePairsAligned(buf: Buffer, u32: Uint32Array, at: number, flat: readonly string[]): void {
  const n = flat.length >> 1;
  let word = at >>> 2;
  u32[word++] = n;
  let data = at + 4 + n * 8;
  for (let i = 0; i < flat.length; i += 2) {
    const k = flat[i]!;
    const v = flat[i + 1]!;
    u32[word++] = k.length;
    u32[word++] = v.length;
    data = writeLatin1(buf, k, data);
    buf[data++] = 0;
    data = writeLatin1(buf, v, data);
    buf[data++] = 0;
  }
}

/** Strings shorter than this are copied by a JS loop (cheaper than a call into the Buffer binding). */
const SHORT_STRING = 48;

/** Any number as a 64-bit integer that cannot throw: NaN and infinities become 0, larger values wrap. */
export function toInt64(value: number | bigint): bigint {
  if (typeof value === 'bigint') return BigInt.asIntN(64, value);
  return Number.isFinite(value) ? BigInt.asIntN(64, BigInt(Math.trunc(value))) : 0n;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Write a byte string (latin1: each char code is a byte) at `at`; returns the end. */
function writeLatin1(buf: Buffer, s: string, at: number): number {
  const n = s.length;
  if (n < SHORT_STRING) {
    for (let i = 0; i < n; i++) buf[at + i] = s.charCodeAt(i); // a Uint8Array store keeps the low byte, as latin1 does
  } else {
    buf.write(s, at, n, 'latin1');
  }
  return at + n;
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
