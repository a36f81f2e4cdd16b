// custom_fields: Kong's custom_fields_by_lua without Lua. Each key is a dotted
// path ("a.b.c", "\." for a literal dot) set into the log entry as Kong's
// kong.log.set_serialize_value(key, value) does:
//   - intermediate objects are created as needed, and merged into the entry's own objects;
//   - a value replaces what the entry had at that key (objects included);
//   - null deletes the key (Lua nil);
//   - {"property": "a.b"} reads a property at log time (missing: the key is deleted, like nil).
// The entry is streamed, not built as a tree, so the fields form a tree that
// the entry writer consults at each object it writes (scalarKey/objectKey/finish).
import { JSON } from "assemblyscript-json/assembly";
import { JsonWriter, jsonQuote } from "../../event-hooks/json";
import { decodeInt, getProperty, propertyPath } from "../../event-hooks/host";
import { key } from "./names";

export const KIND_BRANCH: i32 = 0;
export const KIND_STATIC: i32 = 1;
export const KIND_PROPERTY: i32 = 2;
export const KIND_REMOVE: i32 = 3;

export const TYPE_STRING: i32 = 0;
export const TYPE_INT: i32 = 1;
export const TYPE_BOOL: i32 = 2;

export class CustomNode {
  key: string;
  keyBytes: ArrayBuffer;
  kind: i32;
  children: CustomNode[] = [];
  /** STATIC: the value as JSON text. */
  staticJson: ArrayBuffer = new ArrayBuffer(0);
  /** PROPERTY: NUL-separated path and value type. */
  propPath: ArrayBuffer = new ArrayBuffer(0);
  propType: i32 = TYPE_STRING;
  /** The config key that created this leaf (for conflict messages). */
  origin: string = "";
  /** The entry number in which the entry writer consumed this node. */
  mark: u32 = 0;

  constructor(key: string, kind: i32) {
    this.key = key;
    this.keyBytes = String.UTF8.encode(key);
    this.kind = kind;
  }

  child(key: string): CustomNode | null {
    const c = this.children;
    for (let i = 0; i < c.length; i++) if (c[i].key == key) return c[i];
    return null;
  }

  childBytes(ptr: usize, len: i32): CustomNode | null {
    const c = this.children;
    for (let i = 0; i < c.length; i++) {
      const k = c[i].keyBytes;
      if (k.byteLength == len && memory.compare(changetype<usize>(k), ptr, len) == 0) return c[i];
    }
    return null;
  }
}

/** Split a custom field key on unescaped dots; "\." is a literal dot. Null when a segment is empty. */
export function splitKey(key: string): string[] | null {
  const out = new Array<string>();
  let seg = "";
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c == 0x5c && i + 1 < key.length && key.charCodeAt(i + 1) == 0x2e) {
      seg += ".";
      i++;
    } else if (c == 0x2e) {
      if (seg.length == 0) return null;
      out.push(seg);
      seg = "";
    } else seg += String.fromCharCode(c);
  }
  if (seg.length == 0) return null;
  out.push(seg);
  return out;
}

function label(key: string): string {
  return "config.custom_fields[" + jsonQuote(key) + "]";
}

/** Build the tree from the custom_fields object; null (and one message per problem in `errors`) when a field is invalid. */
export function buildCustomFields(obj: JSON.Obj, errors: string[]): CustomNode | null {
  const root = new CustomNode("", KIND_BRANCH);
  const keys = obj.keys;
  const before = errors.length;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const segments = splitKey(key);
    if (segments === null) {
      errors.push(label(key) + " is not a valid key (empty segment)");
      continue;
    }
    const leaf = leafFor(key, obj.valueOf().get(key), errors);
    if (leaf === null) continue;
    let node = root;
    let ok = true;
    for (let s = 0; s < segments.length - 1; s++) {
      let next = node.child(segments[s]);
      if (next === null) {
        next = new CustomNode(segments[s], KIND_BRANCH);
        next.origin = key;
        node.children.push(next);
      } else if (next.kind != KIND_BRANCH) {
        errors.push(label(key) + " conflicts with " + label(next.origin));
        ok = false;
        break;
      }
      node = next;
    }
    if (!ok) continue;
    const last = segments[segments.length - 1];
    const existing = node.child(last);
    if (existing !== null) {
      errors.push(label(key) + " conflicts with " + label(existing.origin));
      continue;
    }
    leaf.key = last;
    leaf.keyBytes = String.UTF8.encode(last);
    leaf.origin = key;
    node.children.push(leaf);
  }
  return errors.length > before ? null : root;
}

function leafFor(key: string, v: JSON.Value, errors: string[]): CustomNode | null {
  if (v.isNull) return new CustomNode("", KIND_REMOVE);
  if (v.isObj) {
    const o = <JSON.Obj>v;
    if (o.has("property")) {
      const p = o.getString("property");
      if (p === null || p.valueOf().length == 0) {
        errors.push(label(key) + ".property must be a non-empty string");
        return null;
      }
      const node = new CustomNode("", KIND_PROPERTY);
      node.propPath = propertyPath(p.valueOf());
      const okeys = o.keys;
      for (let i = 0; i < okeys.length; i++) {
        const k = okeys[i];
        if (k == "property") continue;
        if (k != "type") {
          errors.push(label(key) + "." + k + " is not a known field (a property field takes \"property\" and \"type\")");
          return null;
        }
        const t = o.getString("type");
        const tv = t === null ? "" : t.valueOf();
        if (tv == "string") node.propType = TYPE_STRING;
        else if (tv == "int") node.propType = TYPE_INT;
        else if (tv == "bool") node.propType = TYPE_BOOL;
        else {
          errors.push(label(key) + ".type must be one of: string, int, bool");
          return null;
        }
      }
      return node;
    }
    // {"value": X} is X itself (to set an object that has a "property" key).
    if (o.keys.length == 1 && o.has("value")) v = o.get("value")!;
  }
  const node = new CustomNode("", KIND_STATIC);
  const w = new JsonWriter(32);
  w.value(v);
  node.staticJson = w.toArrayBuffer();
  return node;
}

// ---- consulted by the entry writer ----
// The helpers below run for every member of every entry (about fifty), so they
// are inlined, as are the JsonWriter calls they make: a call each cost more
// than the work (the entry took about 30 % longer to write without).

/** The entry being written (nodes marked with another number are not consumed yet). */
export let entrySeq: u32 = 0;

export function nextEntry(): void {
  entrySeq++;
  if (entrySeq == 0) entrySeq = 1;
}

/** After objectKey returned true: the custom branch to merge into that object, or null. */
export let sub: CustomNode | null = null;

/**
 * Before a built-in scalar member, K_* `k` (names.ts). Returns true when the caller writes
 * its value (the key is written); false when a custom field replaced or
 * deleted it.
 */
// @ts-ignore: decorator
export function scalarKey(w: JsonWriter, node: CustomNode | null, k: i32): bool {
  const name = key(k);
  if (node !== null) {
    const c = node.child(name.text);
    if (c !== null) {
      c.mark = entrySeq;
      writeCustom(w, c);
      return false;
    }
  }
  w.keyOf(name);
  return true;
}

/** scalarKey for a member whose name is UTF-8 bytes (header and query names). */
// @ts-ignore: decorator
export function scalarKeyBytes(w: JsonWriter, node: CustomNode | null, ptr: usize, len: i32): bool {
  if (node !== null) {
    const c = node.childBytes(ptr, len);
    if (c !== null) {
      c.mark = entrySeq;
      writeCustom(w, c);
      return false;
    }
  }
  w.keyBytes(ptr, len);
  return true;
}

/**
 * Before a built-in object member, K_* `k` (names.ts). Returns true when the caller writes
 * the object (key written; merge `sub` into it); false when a custom value
 * replaced or deleted it.
 */
// @ts-ignore: decorator
export function objectKey(w: JsonWriter, node: CustomNode | null, k: i32): bool {
  const name = key(k);
  sub = null;
  if (node !== null) {
    const c = node.child(name.text);
    if (c !== null) {
      c.mark = entrySeq;
      if (c.kind != KIND_BRANCH) {
        writeCustom(w, c);
        return false;
      }
      sub = c;
    }
  }
  w.keyOf(name);
  return true;
}

/** Close an object: add the custom members not consumed above, then "}". */
// @ts-ignore: decorator
export function finish(w: JsonWriter, node: CustomNode | null): void {
  if (node !== null) {
    const c = node.children;
    for (let i = 0; i < c.length; i++) if (c[i].mark != entrySeq) writeCustom(w, c[i]);
  }
  w.endObject();
}

function writeCustom(w: JsonWriter, c: CustomNode): void {
  if (c.kind == KIND_STATIC) {
    w.keyBytes(changetype<usize>(c.keyBytes), c.keyBytes.byteLength);
    w.rawValueBuffer(c.staticJson);
  } else if (c.kind == KIND_PROPERTY) {
    const v = getProperty(c.propPath);
    if (v === null) return; // nil: no key
    w.keyBytes(changetype<usize>(c.keyBytes), c.keyBytes.byteLength);
    if (c.propType == TYPE_INT) w.int(decodeInt(v, 0));
    else if (c.propType == TYPE_BOOL) {
      const n = v.byteLength;
      const p = changetype<usize>(v);
      w.bool(n == 1 ? load<u8>(p) != 0 && load<u8>(p) != 0x30 : n == 4 && load<u32>(p) == 0x65757274); // 1 byte, or "true"
    } else w.strBuffer(v);
  } else if (c.kind == KIND_BRANCH) {
    w.keyBytes(changetype<usize>(c.keyBytes), c.keyBytes.byteLength);
    w.beginObject();
    const k = c.children;
    for (let i = 0; i < k.length; i++) writeCustom(w, k[i]);
    w.endObject();
  }
  // KIND_REMOVE: nothing
}
