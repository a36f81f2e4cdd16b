/**
 * Properties (Envoy "attributes"): path parsing and value encodings.
 *
 * Paths arrive as raw bytes. Envoy separates segments with NUL
 * ("request\0path") and splits only on NUL; the AS SDK examples use dots
 * ("request.path"). Both are accepted unless the host is Envoy-strict.
 * Internally a path is one canonical dotted key: "request.path".
 *
 * Values are typed in the host (string, int, bool, timestamp, map...) and
 * encoded the way Envoy's serializeValue does; the encoder is pluggable
 * because other hosts differ (ngx returns every value as a string).
 */
import { HeaderMap } from '../abi/header-map.js';
import { serializePairs, toInt64 } from '../abi/memory.js';

/**
 * A typed property value. numbers are 64-bit ints; use Float64 for doubles.
 * A string is text (sent as UTF-8); raw bytes are a Uint8Array or, cheaper
 * for bytes that already are a byte string (header values), a ByteString.
 */
export type PropertyValue = string | Uint8Array | ByteString | number | bigint | boolean | Float64 | HeaderMap | readonly string[];

/** Raw bytes held as a byte string (latin1: each char code is a byte), as header values are: sent as is. */
export class ByteString {
  constructor(readonly latin1: string) {}
}

/** Marks a double (Envoy encodes doubles as 8-byte little-endian IEEE 754). */
export class Float64 {
  constructor(readonly value: number) {}
}

/** Looks a canonical key up; undefined when this source does not know it. */
export type PropertySource = (key: string) => PropertyValue | undefined;

export interface PropertyEncoder {
  readonly name: string;
  encode(value: PropertyValue): Uint8Array;
}

function int64(v: number | bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigInt64LE(toInt64(v));
  return b;
}

/** Envoy: strings raw, ints and timestamps 8-byte LE, bool 1 byte, maps and lists as pairs. */
export const envoyEncoding: PropertyEncoder = {
  name: 'envoy',
  encode(value) {
    if (typeof value === 'string') return Buffer.from(value, 'utf8');
    if (value instanceof Uint8Array) return value;
    if (value instanceof ByteString) return Buffer.from(value.latin1, 'latin1');
    if (typeof value === 'number' || typeof value === 'bigint') return int64(value);
    if (typeof value === 'boolean') return Buffer.from([value ? 1 : 0]);
    if (value instanceof Float64) {
      const b = Buffer.allocUnsafe(8);
      b.writeDoubleLE(value.value);
      return b;
    }
    if (value instanceof HeaderMap) return serializePairs(value.flat);
    // A list: values in the key slots, empty values.
    const flat: string[] = [];
    for (const item of value as readonly string[]) flat.push(Buffer.from(item, 'utf8').toString('latin1'), '');
    return serializePairs(flat);
  },
};

/** ngx_wasm_module style: scalars as their decimal/text form. */
export const stringEncoding: PropertyEncoder = {
  name: 'string',
  encode(value) {
    if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
      return Buffer.from(String(value), 'utf8');
    }
    if (value instanceof Float64) return Buffer.from(String(value.value), 'utf8');
    return envoyEncoding.encode(value);
  },
};

export interface ParsedPath {
  /** Canonical dotted key, e.g. "request.headers.x-id". */
  readonly key: string;
  /** True when the guest used NUL separators (the only form Envoy understands). */
  readonly nul: boolean;
  /** Kept in the path cache already. */
  readonly cached: boolean;
}

/**
 * Parsed paths by raw path, for paths that named a property. Bounded by
 * bytes: at most MAX_CACHED_PATHS paths of at most MAX_CACHED_PATH_BYTES
 * each (about 1 MiB with their keys), shared by every VM of the process.
 */
const parsedPaths = new Map<string, ParsedPath>();
const MAX_CACHED_PATHS = 4096;
export const MAX_CACHED_PATH_BYTES = 128;

/**
 * Parse a raw property path, given as a byte string (latin1). Plugins ask for
 * the same few paths on every request, so results are cached by raw path.
 */
/**
 * The engine's unique copy of a string (property names are kept unique), so
 * comparing a cached key with the string literals of a property switch is a
 * pointer comparison.
 */
function internalize(s: string): string {
  return Object.keys({ [s]: 0 })[0] ?? s;
}

export function parsePropertyPath(raw: string): ParsedPath {
  const cached = parsedPaths.get(raw);
  if (cached !== undefined) return cached;
  let s = Buffer.from(raw, 'latin1').toString('utf8');
  // A trailing NUL (C-string habit) is not an empty segment.
  while (s.endsWith('\0')) s = s.slice(0, -1);
  const nul = s.includes('\0');
  const key = nul ? s.replaceAll('\0', '.') : s;
  // Only short keys are interned: the engine keeps interned strings, and a guest may send junk.
  return { key: raw.length <= MAX_CACHED_PATH_BYTES ? internalize(key) : key, nul, cached: false };
}

/** How many parsed paths are kept (diagnostics and tests). */
export function cachedPropertyPaths(): number {
  return parsedPaths.size;
}

/** Keep a parsed path for next time: called once the path named a property (a NOT_FOUND read keeps nothing). */
export function rememberPropertyPath(raw: string, parsed: ParsedPath): void {
  if (parsed.cached || raw.length > MAX_CACHED_PATH_BYTES) return;
  if (parsedPaths.size >= MAX_CACHED_PATHS) parsedPaths.clear();
  parsedPaths.set(raw, { key: parsed.key, nul: parsed.nul, cached: true });
}
