// JSON for hookwire plugins: a byte-level writer that escapes correctly, small
// builders for event data, and a parser that reports errors instead of aborting.
//
// Why not assemblyscript-json's encoder and parser alone: its Str.stringify
// emits a backslash followed by the raw control character (invalid JSON) and
// never escapes keys, and its decoder asserts (traps the VM) on bad input. The
// parser here produces the same JSON.Value classes, so its getters still work.
import { JSON } from "assemblyscript-json/assembly";
import { decimal } from "../sdk/decimal";

const QUOTE: u8 = 0x22;
const BACKSLASH: u8 = 0x5c;
const HEX = "0123456789abcdef";

/**
 * Appends JSON to a growable UTF-8 byte buffer. Commas between members and
 * array items are inserted automatically: call key() before each member value.
 * Strings from AssemblyScript (UTF-16) and from the host (UTF-8 bytes) are both
 * escaped; invalid sequences become U+FFFD so the output is always valid JSON.
 * Only the byte-level helpers are @inline: inlining the member writers (keyOf,
 * strBytes, int...) into http-log's entry writer cost 15 KB of module for
 * about 0.5 µs per request (docs/module-size.md).
 */
export class JsonWriter {
  buf: ArrayBuffer;
  len: i32 = 0;
  private needComma: bool = false;

  constructor(capacity: i32 = 256) {
    this.buf = new ArrayBuffer(capacity > 16 ? capacity : 16);
  }

  /** Forget the content; the buffer is kept for reuse. */
  reset(): void {
    this.len = 0;
    this.needComma = false;
  }

  /** Address of the first byte (valid until the next write). */
  get ptr(): usize {
    return changetype<usize>(this.buf);
  }

  /** A copy of the bytes written so far. */
  toArrayBuffer(): ArrayBuffer {
    const out = new ArrayBuffer(this.len);
    memory.copy(changetype<usize>(out), changetype<usize>(this.buf), this.len);
    return out;
  }

  toString(): string {
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf), this.len);
  }

  @inline
  private ensure(n: i32): void {
    if (this.len + n > this.buf.byteLength) this.grow(n);
  }

  private grow(n: i32): void {
    // Double, or to the next power of two when that is not enough (no loop: fewer fuel checks under the host's guard).
    const need = this.len + n;
    let cap = this.buf.byteLength << 1;
    if (cap < need) cap = 1 << (32 - clz<i32>(need - 1));
    const next = new ArrayBuffer(cap);
    memory.copy(changetype<usize>(next), changetype<usize>(this.buf), this.len);
    this.buf = next;
  }

  // ---- raw output (no comma handling, no escaping) ----

  @inline
  rawByte(b: u8): void {
    this.ensure(1);
    store<u8>(changetype<usize>(this.buf) + this.len, b);
    this.len++;
  }

  rawBytes(ptr: usize, n: i32): void {
    if (n <= 0) return;
    this.ensure(n);
    memory.copy(changetype<usize>(this.buf) + this.len, ptr, n);
    this.len += n;
  }

  rawBuffer(b: ArrayBuffer): void {
    this.rawBytes(changetype<usize>(b), b.byteLength);
  }

  /** ASCII-only text (every char < 0x80), copied as is. */
  rawAscii(s: string): void {
    const n = s.length;
    this.ensure(n);
    const base = changetype<usize>(this.buf) + this.len;
    for (let i = 0; i < n; i++) store<u8>(base + i, <u8>s.charCodeAt(i));
    this.len += n;
  }

  /** Decimal digits of a signed 64-bit integer. */
  rawInt(v: i64): void {
    if (v < 0) {
      this.rawByte(0x2d);
      this.rawUint(<u64>(-(v + 1)) + 1); // also right for i64.MIN_VALUE
    } else {
      this.rawUint(<u64>v);
    }
  }

  rawUint(v: u64): void {
    this.ensure(20);
    const base = changetype<usize>(this.buf) + this.len;
    if (v <= <u64>u32.MAX_VALUE) {
      // Most numbers (statuses, sizes, latencies): 32-bit division is much cheaper.
      const x = <u32>v;
      let digits = 1;
      for (let t = x; t >= 10; t /= 10) digits++;
      let t = x;
      for (let i = digits - 1; i >= 0; i--) {
        store<u8>(base + i, <u8>(0x30 + t % 10));
        t /= 10;
      }
      this.len += digits;
      return;
    }
    let digits = 1;
    for (let t = v; t >= 10; t /= 10) digits++;
    let t = v;
    for (let i = digits - 1; i >= 0; i--) {
      store<u8>(base + i, <u8>(0x30 + <i32>(t % 10)));
      t /= 10;
    }
    this.len += digits;
  }

  // ---- structure ----

  @inline
  private comma(): void {
    if (this.needComma) this.rawByte(0x2c);
  }

  beginObject(): void {
    this.comma();
    this.rawByte(0x7b);
    this.needComma = false;
  }

  endObject(): void {
    this.rawByte(0x7d);
    this.needComma = true;
  }

  beginArray(): void {
    this.comma();
    this.rawByte(0x5b);
    this.needComma = false;
  }

  endArray(): void {
    this.rawByte(0x5d);
    this.needComma = true;
  }

  /** A member name; the next value call writes its value. */
  key(k: string): void {
    this.comma();
    this.quoted(k);
    this.rawByte(0x3a);
    this.needComma = false;
  }

  /** A member name encoded once (a JsonKey): one copy, no escaping work per use. */
  keyOf(k: JsonKey): void {
    const b = k.encoded;
    const words = b.byteLength;
    this.ensure(words + 1);
    let o = changetype<usize>(this.buf) + <usize>this.len;
    if (this.needComma) {
      store<u8>(o++, 0x2c);
      this.len++;
    }
    // Keys are short: whole words (the padding lands past the end and is overwritten later) beat a memory.copy call.
    const src = changetype<usize>(b);
    for (let i = 0; i < words; i += 8) store<u64>(o + <usize>i, load<u64>(src + <usize>i));
    this.len += k.length;
    this.needComma = false;
  }

  /** A member name given as UTF-8 bytes. */
  keyBytes(ptr: usize, n: i32): void {
    this.comma();
    this.quotedBytes(ptr, n);
    this.rawByte(0x3a);
    this.needComma = false;
  }

  // ---- values ----

  str(s: string): void {
    this.comma();
    this.quoted(s);
    this.needComma = true;
  }

  /** A string value from UTF-8 bytes (e.g. a property or header value). */
  strBytes(ptr: usize, n: i32): void {
    this.comma();
    this.quotedBytes(ptr, n);
    this.needComma = true;
  }

  strBuffer(b: ArrayBuffer): void {
    this.strBytes(changetype<usize>(b), b.byteLength);
  }

  // ---- a string value written in pieces (no intermediate buffer) ----

  beginString(): void {
    this.comma();
    this.rawByte(QUOTE);
  }

  /** UTF-8 bytes inside the open string, escaped. */
  stringBytes(ptr: usize, n: i32): void {
    this.escapedBytes(ptr, n);
  }

  /** ASCII text that needs no escaping (a literal), inside the open string. */
  stringAscii(s: string): void {
    this.rawAscii(s);
  }

  stringInt(v: i64): void {
    this.rawInt(v);
  }

  endString(): void {
    this.rawByte(QUOTE);
    this.needComma = true;
  }

  int(v: i64): void {
    this.comma();
    this.rawInt(v);
    this.needComma = true;
  }

  /** A double; non-finite values have no JSON form and are written as null. */
  num(v: f64): void {
    this.comma();
    if (!isFinite(v)) this.rawAscii("null");
    else if (v == Math.floor(v) && Math.abs(v) < 1e15) this.rawInt(<i64>v);
    else this.rawAscii(v.toString());
    this.needComma = true;
  }

  bool(v: bool): void {
    this.comma();
    this.rawAscii(v ? "true" : "false");
    this.needComma = true;
  }

  nul(): void {
    this.comma();
    this.rawAscii("null");
    this.needComma = true;
  }

  /** A value that is already JSON text (trusted: it must be valid). */
  rawValue(ptr: usize, n: i32): void {
    this.comma();
    this.rawBytes(ptr, n);
    this.needComma = true;
  }

  rawValueBuffer(b: ArrayBuffer): void {
    this.rawValue(changetype<usize>(b), b.byteLength);
  }

  /** Any parsed JSON value (assemblyscript-json classes), re-encoded with proper escaping. */
  value(v: JSON.Value): void {
    if (v instanceof JSON.Str) this.str((<JSON.Str>v).valueOf());
    else if (v instanceof JSON.Integer) this.int((<JSON.Integer>v).valueOf());
    else if (v instanceof JSON.Num) this.num((<JSON.Num>v).valueOf());
    else if (v instanceof JSON.Bool) this.bool((<JSON.Bool>v).valueOf());
    else if (v instanceof JSON.Arr) {
      const items = (<JSON.Arr>v).valueOf();
      this.beginArray();
      for (let i = 0; i < items.length; i++) this.value(items[i]);
      this.endArray();
    } else if (v instanceof JSON.Obj) {
      const obj = <JSON.Obj>v;
      const keys = obj.keys;
      this.beginObject();
      for (let i = 0; i < keys.length; i++) {
        this.key(keys[i]);
        this.value(obj.valueOf().get(keys[i]));
      }
      this.endObject();
    } else this.nul();
  }

  /** A finished object or array builder. */
  object(o: JsonObject): void {
    this.rawValue(o.writer.ptr, o.writer.len);
    this.rawByte(0x7d);
  }

  array(a: JsonArray): void {
    this.rawValue(a.writer.ptr, a.writer.len);
    this.rawByte(0x5d);
  }

  // ---- escaping ----

  private escapeAscii(c: u32): void {
    // c < 0x20, or '"' or '\'
    this.ensure(6);
    const p = changetype<usize>(this.buf) + this.len;
    store<u8>(p, BACKSLASH);
    let short: u8 = 0;
    if (c == 0x22) short = QUOTE;
    else if (c == 0x5c) short = BACKSLASH;
    else if (c == 0x08) short = 0x62; // b
    else if (c == 0x0c) short = 0x66; // f
    else if (c == 0x0a) short = 0x6e; // n
    else if (c == 0x0d) short = 0x72; // r
    else if (c == 0x09) short = 0x74; // t
    if (short != 0) {
      store<u8>(p + 1, short);
      this.len += 2;
      return;
    }
    store<u8>(p + 1, 0x75); // u
    store<u8>(p + 2, 0x30);
    store<u8>(p + 3, 0x30);
    store<u8>(p + 4, <u8>HEX.charCodeAt(<i32>(c >> 4)));
    store<u8>(p + 5, <u8>HEX.charCodeAt(<i32>(c & 0xf)));
    this.len += 6;
  }

  private replacementChar(): void {
    this.ensure(3);
    const p = changetype<usize>(this.buf) + this.len;
    store<u8>(p, 0xef);
    store<u8>(p + 1, 0xbf);
    store<u8>(p + 2, 0xbd);
    this.len += 3;
  }

  /** A UTF-16 string as a quoted, escaped UTF-8 JSON string. */
  private quoted(s: string): void {
    const n = s.length;
    // Room for the worst case (6 bytes per unit: \u00XX), then plain stores: no check per character.
    if (n > SHORT_RUN) {
      this.quotedLong(s);
      return;
    }
    this.ensure(n * 6 + 2);
    let base = changetype<usize>(this.buf);
    let o = <usize>this.len;
    store<u8>(base + o++, QUOTE);
    const src = changetype<usize>(s);
    for (let i = 0; i < n; i++) {
      const c = <u32>load<u16>(src + (<usize>i << 1));
      if (c >= 0x20 && c < 0x80 && c != 0x22 && c != 0x5c) {
        store<u8>(base + o++, <u8>c);
        continue;
      }
      this.len = <i32>o;
      i = this.quotedUnit(s, i, n);
      o = <usize>this.len;
      base = changetype<usize>(this.buf);
    }
    store<u8>(base + o++, QUOTE);
    this.len = <i32>o;
  }

  /** quoted() for long strings: growth checked as it goes. */
  private quotedLong(s: string): void {
    const n = s.length;
    this.ensure(n + 2);
    this.rawByte(QUOTE);
    for (let i = 0; i < n; i++) {
      const c = <u32>load<u16>(changetype<usize>(s) + (<usize>i << 1));
      if (c >= 0x20 && c < 0x80 && c != 0x22 && c != 0x5c) this.rawByte(<u8>c);
      else i = this.quotedUnit(s, i, n);
    }
    this.rawByte(QUOTE);
  }

  /** Write the code unit at i (not plain ASCII), escaped or UTF-8 encoded; returns the index of the last unit consumed. */
  private quotedUnit(s: string, i: i32, n: i32): i32 {
    const src = changetype<usize>(s);
    const c = <u32>load<u16>(src + (<usize>i << 1));
    if (c < 0x80) {
      this.escapeAscii(c);
    } else if (c < 0x800) {
      this.ensure(2);
      const p = changetype<usize>(this.buf) + this.len;
      store<u8>(p, <u8>(0xc0 | (c >> 6)));
      store<u8>(p + 1, <u8>(0x80 | (c & 0x3f)));
      this.len += 2;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // A surrogate: valid only as a high one followed by a low one.
      if (c <= 0xdbff && i + 1 < n) {
        const d = <u32>load<u16>(src + (<usize>(i + 1) << 1));
        if (d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          this.ensure(4);
          const p = changetype<usize>(this.buf) + this.len;
          store<u8>(p, <u8>(0xf0 | (cp >> 18)));
          store<u8>(p + 1, <u8>(0x80 | ((cp >> 12) & 0x3f)));
          store<u8>(p + 2, <u8>(0x80 | ((cp >> 6) & 0x3f)));
          store<u8>(p + 3, <u8>(0x80 | (cp & 0x3f)));
          this.len += 4;
          return i + 1;
        }
      }
      this.replacementChar();
    } else {
      this.ensure(3);
      const p = changetype<usize>(this.buf) + this.len;
      store<u8>(p, <u8>(0xe0 | (c >> 12)));
      store<u8>(p + 1, <u8>(0x80 | ((c >> 6) & 0x3f)));
      store<u8>(p + 2, <u8>(0x80 | (c & 0x3f)));
      this.len += 3;
    }
    return i;
  }

  /** UTF-8 bytes as a quoted, escaped JSON string; invalid sequences become U+FFFD. */
  private quotedBytes(ptr: usize, n: i32): void {
    if (n <= SHORT_RUN) {
      // One capacity check for the worst case, the quotes stored inline.
      this.ensure(n * 6 + 2);
      store<u8>(changetype<usize>(this.buf) + <usize>this.len, QUOTE);
      this.len++;
      this.escapedShort(ptr, n);
      store<u8>(changetype<usize>(this.buf) + <usize>this.len, QUOTE);
      this.len++;
      return;
    }
    this.rawByte(QUOTE);
    this.escapedLong(ptr, n);
    this.rawByte(QUOTE);
  }

  /** The inside of a JSON string from UTF-8 bytes: escaped; invalid sequences become U+FFFD. */
  private escapedBytes(ptr: usize, n: i32): void {
    if (n <= SHORT_RUN) {
      this.ensure(n * 6 + 1);
      this.escapedShort(ptr, n);
      return;
    }
    this.escapedLong(ptr, n);
  }

  /** escapedBytes for at most SHORT_RUN bytes, room for the worst case (6 bytes per byte) already ensured. */
  @inline
  private escapedShort(ptr: usize, n: i32): void {
    let base = changetype<usize>(this.buf);
    let o = <usize>this.len;
    let i = 0;
    while (i < n) {
      // Eight bytes at a time while none needs escaping (the usual case).
      while (i + 8 <= n) {
        const x = load<u64>(ptr + i);
        if (needsEscape8(x)) break;
        store<u64>(base + o, x);
        o += 8;
        i += 8;
      }
      // The rest byte by byte while none needs escaping: one inner loop (which the host's deadline
      // guard charges once, as a counted loop), not a turn of the outer loop per byte.
      while (i < n) {
        const b = load<u8>(ptr + i);
        if (b < 0x20 || b >= 0x80 || b == QUOTE || b == BACKSLASH) break;
        store<u8>(base + o++, b);
        i++;
      }
      if (i >= n) break;
      this.len = <i32>o;
      i = this.bytesUnit(ptr, i, n);
      o = <usize>this.len;
      base = changetype<usize>(this.buf);
    }
    this.len = <i32>o;
  }

  /** escapedBytes for more than SHORT_RUN bytes: growth checked as it goes. */
  private escapedLong(ptr: usize, n: i32): void {
    this.ensure(n + 1);
    let i = 0;
    while (i < n) {
      // Copy the longest run of bytes that need no escaping in one go.
      let j = i;
      while (j < n) {
        const b = load<u8>(ptr + j);
        if (b < 0x20 || b == QUOTE || b == BACKSLASH || b >= 0x80) break;
        j++;
      }
      if (j > i) {
        this.rawBytes(ptr + i, j - i);
        i = j;
        if (i >= n) break;
      }
      i = this.bytesUnit(ptr, i, n);
    }
  }

  /** Write the byte sequence at i (not plain ASCII), escaped or checked as UTF-8; returns the next index. */
  private bytesUnit(ptr: usize, i: i32, n: i32): i32 {
    const b = <u32>load<u8>(ptr + i);
    if (b < 0x80) {
      this.escapeAscii(b);
      return i + 1;
    }
    const seq = utf8SequenceLength(ptr + i, n - i);
    if (seq == 0) {
      this.replacementChar();
      return i + 1;
    }
    this.rawBytes(ptr + i, seq);
    return i + seq;
  }
}

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;

/** Whether any of the 8 bytes in x is zero (the classic SWAR test). */
@inline
function hasZeroByte(x: u64): bool {
  return ((x - ONES) & ~x & HIGHS) != 0;
}

/** Whether any of the 8 bytes in x is a control byte, '"', '\\' or non-ASCII (needs escaping or UTF-8 checks). */
@inline
function needsEscape8(x: u64): bool {
  // Control bytes are those < 0x20: (x - 0x20 per byte) borrows into the high bit; high bytes are >= 0x80.
  return (((x - ONES * 0x20) | x) & HIGHS) != 0 || hasZeroByte(x ^ (ONES * 0x22)) || hasZeroByte(x ^ (ONES * 0x5c));
}

/** Strings up to this many units are written with one capacity check for the worst case. */
const SHORT_RUN: i32 = 256;

/** Length of the valid UTF-8 sequence starting at p (at most `avail` bytes), or 0 if invalid. */
function utf8SequenceLength(p: usize, avail: i32): i32 {
  const b0 = <u32>load<u8>(p);
  let need = 0;
  let lo: u32 = 0x80;
  let hi: u32 = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) need = 1;
  else if (b0 == 0xe0) { need = 2; lo = 0xa0; }
  else if (b0 >= 0xe1 && b0 <= 0xec) need = 2;
  else if (b0 == 0xed) { need = 2; hi = 0x9f; }
  else if (b0 >= 0xee && b0 <= 0xef) need = 2;
  else if (b0 == 0xf0) { need = 3; lo = 0x90; }
  else if (b0 >= 0xf1 && b0 <= 0xf3) need = 3;
  else if (b0 == 0xf4) { need = 3; hi = 0x8f; }
  else return 0;
  if (avail < need + 1) return 0;
  const b1 = <u32>load<u8>(p + 1);
  if (b1 < lo || b1 > hi) return 0;
  for (let k = 2; k <= need; k++) {
    const b = <u32>load<u8>(p + k);
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return need + 1;
}

/** A constant member name with its JSON encoding ("name":) made once. */
export class JsonKey {
  readonly text: string;
  /** `"text":`, padded with zeros to whole 8-byte words (keyOf copies words). */
  readonly encoded: ArrayBuffer;
  /** The length of `"text":` in bytes. */
  readonly length: i32;

  constructor(text: string) {
    this.text = text;
    const w = new JsonWriter(text.length * 3 + 4);
    w.key(text);
    this.length = w.len;
    const padded = new ArrayBuffer((w.len + 7) & ~7);
    memory.copy(changetype<usize>(padded), w.ptr, <usize>w.len);
    this.encoded = padded;
  }
}

/** A JsonKey for each space-separated name in `names`, in order (one string in the module for all of them). */
export function jsonKeys(names: string): StaticArray<JsonKey> {
  const n = names.length;
  let count = 1;
  for (let i = 0; i < n; i++) if (names.charCodeAt(i) == 0x20) count++;
  const keys = new StaticArray<JsonKey>(count);
  let start = 0;
  for (let k = 0; k < count; k++) {
    let end = start;
    while (end < n && names.charCodeAt(end) != 0x20) end++;
    unchecked((keys[k] = new JsonKey(names.substring(start, end))));
    start = end + 1;
  }
  return keys;
}

/**
 * A JSON object under construction, e.g. an event's data:
 *   const data = new JsonObject().str("ip", ip).obj("route", new JsonObject().str("id", id));
 * Keys are written in call order; nothing checks for duplicates.
 */
export class JsonObject {
  writer: JsonWriter;

  constructor(capacity: i32 = 64) {
    this.writer = new JsonWriter(capacity);
    this.writer.beginObject();
  }

  /** Empty the object for reuse (keeps its buffer). */
  clear(): JsonObject {
    this.writer.reset();
    this.writer.beginObject();
    return this;
  }

  str(key: string, value: string): JsonObject {
    this.writer.key(key);
    this.writer.str(value);
    return this;
  }

  /** A string member whose value is UTF-8 bytes. */
  bytes(key: string, value: ArrayBuffer): JsonObject {
    this.writer.key(key);
    this.writer.strBuffer(value);
    return this;
  }

  /** A string member whose value is the n UTF-8 bytes at ptr. */
  bytesAt(key: string, ptr: usize, n: i32): JsonObject {
    this.writer.key(key);
    this.writer.strBytes(ptr, n);
    return this;
  }

  int(key: string, value: i64): JsonObject {
    this.writer.key(key);
    this.writer.int(value);
    return this;
  }

  num(key: string, value: f64): JsonObject {
    this.writer.key(key);
    this.writer.num(value);
    return this;
  }

  bool(key: string, value: bool): JsonObject {
    this.writer.key(key);
    this.writer.bool(value);
    return this;
  }

  nul(key: string): JsonObject {
    this.writer.key(key);
    this.writer.nul();
    return this;
  }

  obj(key: string, value: JsonObject): JsonObject {
    this.writer.key(key);
    this.writer.object(value);
    return this;
  }

  arr(key: string, value: JsonArray): JsonObject {
    this.writer.key(key);
    this.writer.array(value);
    return this;
  }

  strs(key: string, values: string[]): JsonObject {
    this.writer.key(key);
    this.writer.beginArray();
    for (let i = 0; i < values.length; i++) this.writer.str(values[i]);
    this.writer.endArray();
    return this;
  }

  /** A parsed JSON value (assemblyscript-json), re-encoded. */
  json(key: string, value: JSON.Value): JsonObject {
    this.writer.key(key);
    this.writer.value(value);
    return this;
  }

  /** The finished object as UTF-8 JSON bytes. */
  toArrayBuffer(): ArrayBuffer {
    const out = new ArrayBuffer(this.writer.len + 1);
    memory.copy(changetype<usize>(out), this.writer.ptr, this.writer.len);
    store<u8>(changetype<usize>(out) + this.writer.len, 0x7d);
    return out;
  }

  toString(): string {
    return String.UTF8.decode(this.toArrayBuffer());
  }
}

/** A JSON array under construction. */
export class JsonArray {
  writer: JsonWriter;

  constructor(capacity: i32 = 64) {
    this.writer = new JsonWriter(capacity);
    this.writer.beginArray();
  }

  str(value: string): JsonArray {
    this.writer.str(value);
    return this;
  }

  int(value: i64): JsonArray {
    this.writer.int(value);
    return this;
  }

  num(value: f64): JsonArray {
    this.writer.num(value);
    return this;
  }

  bool(value: bool): JsonArray {
    this.writer.bool(value);
    return this;
  }

  nul(): JsonArray {
    this.writer.nul();
    return this;
  }

  obj(value: JsonObject): JsonArray {
    this.writer.object(value);
    return this;
  }

  arr(value: JsonArray): JsonArray {
    this.writer.array(value);
    return this;
  }

  json(value: JSON.Value): JsonArray {
    this.writer.value(value);
    return this;
  }
}

// ---------------------------------------------------------------------------
// Parsing

const MAX_DEPTH = 64;

/** Why the last parseJson/isJsonObject call failed ("" after a success). */
export let jsonError: string = "";

// @ts-ignore: decorator
@lazy const VALID: JSON.Value = JSON.Value.Null();

class Parser {
  p: usize;
  end: usize;
  start: usize;
  build: bool;
  depth: i32 = 0;
  error: string = "";

  constructor(ptr: usize, len: i32, build: bool) {
    this.start = ptr;
    this.p = ptr;
    this.end = ptr + <usize>len;
    this.build = build;
  }

  fail(what: string): JSON.Value | null {
    if (this.error.length == 0) {
      const at = <i32>(this.p - this.start);
      this.error = this.p >= this.end ? what + " at end of input" : what + " at byte " + decimal(at);
    }
    return null;
  }

  skipWs(): void {
    while (this.p < this.end) {
      const c = load<u8>(this.p);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) return;
      this.p++;
    }
  }

  value(): JSON.Value | null {
    this.skipWs();
    if (this.p >= this.end) return this.fail("expected a value");
    const c = load<u8>(this.p);
    if (c == 0x7b) return this.object();
    if (c == 0x5b) return this.array();
    if (c == QUOTE) {
      const s = this.string();
      if (s === null) return null;
      return this.build ? JSON.Value.String(s) : VALID;
    }
    if (c == 0x74) return this.literal("true", JSON.Value.Bool(true));
    if (c == 0x66) return this.literal("false", JSON.Value.Bool(false));
    if (c == 0x6e) return this.literal("null", JSON.Value.Null());
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    return this.fail("unexpected character '" + String.fromCharCode(c) + "'");
  }

  literal(word: string, v: JSON.Value): JSON.Value | null {
    const n = word.length;
    if (this.end - this.p < <usize>n) return this.fail("invalid literal");
    for (let i = 0; i < n; i++) {
      if (<i32>load<u8>(this.p + i) != word.charCodeAt(i)) return this.fail("invalid literal");
    }
    this.p += n;
    return this.build ? v : VALID;
  }

  digits(): i32 {
    let n = 0;
    while (this.p < this.end) {
      const c = load<u8>(this.p);
      if (c < 0x30 || c > 0x39) break;
      this.p++;
      n++;
    }
    return n;
  }

  number(): JSON.Value | null {
    const begin = this.p;
    let integral = true;
    if (load<u8>(this.p) == 0x2d) this.p++;
    if (this.p >= this.end) return this.fail("invalid number");
    if (load<u8>(this.p) == 0x30) {
      this.p++;
    } else if (this.digits() == 0) {
      return this.fail("invalid number");
    }
    if (this.p < this.end && load<u8>(this.p) == 0x2e) {
      this.p++;
      integral = false;
      if (this.digits() == 0) return this.fail("invalid number");
    }
    if (this.p < this.end && (load<u8>(this.p) | 0x20) == 0x65) {
      this.p++;
      integral = false;
      if (this.p < this.end && (load<u8>(this.p) == 0x2b || load<u8>(this.p) == 0x2d)) this.p++;
      if (this.digits() == 0) return this.fail("invalid number");
    }
    if (!this.build) return VALID;
    // Integers that fit i64 exactly (18 digits always do) stay integers,
    // summed from the digits just checked (no string, no strtol).
    const negative = load<u8>(begin) == 0x2d;
    const first = negative ? begin + 1 : begin;
    if (integral && this.p - first <= 18) {
      let v: i64 = 0;
      for (let q = first; q < this.p; q++) v = v * 10 + <i64>(load<u8>(q) - 0x30);
      return JSON.Value.Integer(negative ? -v : v);
    }
    return JSON.Value.Float(parseFloat(String.UTF8.decodeUnsafe(begin, this.p - begin)));
  }

  hex4(): i32 {
    if (this.end - this.p < 4) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = <i32>load<u8>(this.p + i);
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x61 + 10;
      if (d < 0) return -1;
      v = (v << 4) | d;
    }
    this.p += 4;
    return v;
  }

  /** A string token; null on error. Without `build`, returns "" on success. */
  string(): string | null {
    this.p++; // opening quote
    const begin = this.p;
    let escaped = false;
    while (true) {
      if (this.p >= this.end) {
        this.fail("unterminated string");
        return null;
      }
      const c = load<u8>(this.p);
      if (c == QUOTE) break;
      if (c < 0x20) {
        this.fail("control character in string");
        return null;
      }
      if (c == BACKSLASH) {
        escaped = true;
        this.p++;
        if (this.p >= this.end) {
          this.fail("unterminated string");
          return null;
        }
        const e = load<u8>(this.p);
        if (e == 0x75) {
          this.p++;
          if (this.hex4() < 0) {
            this.fail("invalid \\u escape");
            return null;
          }
          continue;
        }
        if (e != QUOTE && e != BACKSLASH && e != 0x2f && e != 0x62 && e != 0x66 && e != 0x6e && e != 0x72 && e != 0x74) {
          this.fail("invalid escape");
          return null;
        }
      }
      this.p++;
    }
    const stop = this.p;
    this.p++; // closing quote
    if (!this.build) return "";
    if (!escaped) return String.UTF8.decodeUnsafe(begin, stop - begin);
    return this.unescape(begin, stop);
  }

  /** Decode an already validated string body that contains escapes. */
  unescape(begin: usize, stop: usize): string {
    const out = new JsonWriter(<i32>(stop - begin));
    let q = begin;
    while (q < stop) {
      const c = load<u8>(q);
      if (c != BACKSLASH) {
        out.rawByte(c);
        q++;
        continue;
      }
      const e = load<u8>(q + 1);
      q += 2;
      if (e == 0x75) {
        const save = this.p;
        this.p = q;
        let cp = this.hex4();
        q = this.p;
        if (cp >= 0xd800 && cp <= 0xdbff && stop - q >= 6 && load<u8>(q) == BACKSLASH && load<u8>(q + 1) == 0x75) {
          this.p = q + 2;
          const low = this.hex4();
          if (low >= 0xdc00 && low <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            q = this.p;
          }
        }
        this.p = save;
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // a lone surrogate
        writeCodePoint(out, cp);
        continue;
      }
      let ch: u8 = e; // '"', '\\', '/'
      if (e == 0x62) ch = 0x08;
      else if (e == 0x66) ch = 0x0c;
      else if (e == 0x6e) ch = 0x0a;
      else if (e == 0x72) ch = 0x0d;
      else if (e == 0x74) ch = 0x09;
      out.rawByte(ch);
    }
    return String.UTF8.decodeUnsafe(out.ptr, out.len);
  }

  object(): JSON.Value | null {
    if (++this.depth > MAX_DEPTH) return this.fail("nesting too deep");
    this.p++;
    const obj = this.build ? JSON.Value.Object() : null;
    this.skipWs();
    if (this.p < this.end && load<u8>(this.p) == 0x7d) {
      this.p++;
      this.depth--;
      return this.build ? obj : VALID;
    }
    while (true) {
      this.skipWs();
      if (this.p >= this.end || load<u8>(this.p) != QUOTE) return this.fail("expected a member name");
      const key = this.string();
      if (key === null) return null;
      this.skipWs();
      if (this.p >= this.end || load<u8>(this.p) != 0x3a) return this.fail("expected ':'");
      this.p++;
      const v = this.value();
      if (v === null) return null;
      if (obj !== null) obj.set<JSON.Value>(key, v);
      this.skipWs();
      if (this.p >= this.end) return this.fail("unterminated object");
      const c = load<u8>(this.p);
      this.p++;
      if (c == 0x7d) break;
      if (c != 0x2c) {
        this.p--;
        return this.fail("expected ',' or '}'");
      }
    }
    this.depth--;
    return this.build ? obj : VALID;
  }

  array(): JSON.Value | null {
    if (++this.depth > MAX_DEPTH) return this.fail("nesting too deep");
    this.p++;
    const arr = this.build ? JSON.Value.Array() : null;
    this.skipWs();
    if (this.p < this.end && load<u8>(this.p) == 0x5d) {
      this.p++;
      this.depth--;
      return this.build ? arr : VALID;
    }
    while (true) {
      const v = this.value();
      if (v === null) return null;
      if (arr !== null) arr.push(v);
      this.skipWs();
      if (this.p >= this.end) return this.fail("unterminated array");
      const c = load<u8>(this.p);
      this.p++;
      if (c == 0x5d) break;
      if (c != 0x2c) {
        this.p--;
        return this.fail("expected ',' or ']'");
      }
    }
    this.depth--;
    return this.build ? arr : VALID;
  }

  document(): JSON.Value | null {
    const v = this.value();
    if (v === null) return null;
    this.skipWs();
    if (this.p < this.end) return this.fail("unexpected data after the value");
    return v;
  }
}

function writeCodePoint(out: JsonWriter, cp: i32): void {
  if (cp < 0x80) out.rawByte(<u8>cp);
  else if (cp < 0x800) {
    out.rawByte(<u8>(0xc0 | (cp >> 6)));
    out.rawByte(<u8>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.rawByte(<u8>(0xe0 | (cp >> 12)));
    out.rawByte(<u8>(0x80 | ((cp >> 6) & 0x3f)));
    out.rawByte(<u8>(0x80 | (cp & 0x3f)));
  } else {
    out.rawByte(<u8>(0xf0 | (cp >> 18)));
    out.rawByte(<u8>(0x80 | ((cp >> 12) & 0x3f)));
    out.rawByte(<u8>(0x80 | ((cp >> 6) & 0x3f)));
    out.rawByte(<u8>(0x80 | (cp & 0x3f)));
  }
}

/**
 * Parse UTF-8 JSON text into assemblyscript-json values. Returns null on any
 * syntax error (the reason is in `jsonError`); never traps.
 */
export function parseJson(text: ArrayBuffer): JSON.Value | null {
  const parser = new Parser(changetype<usize>(text), text.byteLength, true);
  const v = parser.document();
  jsonError = parser.error;
  return v;
}

/** Parse a JSON string (see parseJson). */
export function parseJsonString(text: string): JSON.Value | null {
  return parseJson(String.UTF8.encode(text));
}

/** Whether the bytes are one syntactically valid JSON object (no allocation). */
export function isJsonObject(ptr: usize, len: i32): bool {
  const parser = new Parser(ptr, len, false);
  parser.skipWs();
  if (parser.p >= parser.end || load<u8>(parser.p) != 0x7b) {
    jsonError = "not a JSON object";
    return false;
  }
  const ok = parser.document() !== null;
  jsonError = parser.error;
  return ok;
}

/** A value as compact JSON text (for messages). */
export function jsonText(v: JSON.Value): string {
  const w = new JsonWriter(64);
  w.value(v);
  return w.toString();
}

/** `s` as a JSON string literal (for messages). */
export function jsonQuote(s: string): string {
  const w = new JsonWriter(s.length + 8);
  w.str(s);
  return w.toString();
}
