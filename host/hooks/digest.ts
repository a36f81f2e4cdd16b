/**
 * Kong's event digest (kong.enterprise_edition.event_hooks.digest): md5 of
 * the data flattened by `normalize_table` into `k:v:k2:v2…` with sorted keys,
 * recursing into tables. Only the `unique` fields count when the event was
 * published with some; otherwise the whole data does.
 *
 * Numbers and booleans are part of the digest: before 3.10 Kong skipped them,
 * so `{"n": 1}` and `{"n": 2}` looked the same and on_change dropped real
 * changes (fixed in 3.10.0.0; hookwire has the fixed behaviour). null values
 * (cjson.null in Kong) are skipped, as Kong does. Arrays are tables with keys
 * 1..n, as in Lua.
 */
import { createHash } from 'node:crypto';

export function normalizeTable(value: object): string {
  const parts: string[] = [];
  const keys = Array.isArray(value)
    ? value.map((_, i) => String(i + 1))
    : Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const k of keys) {
    const v: unknown = Array.isArray(value) ? value[Number(k) - 1] : (value as Record<string, unknown>)[k];
    if (v !== null && typeof v === 'object') parts.push(k, normalizeTable(v));
    else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') parts.push(k, String(v));
  }
  return parts.join(':');
}

/**
 * The digest of `data` restricted to `unique` (all of it when `unique` is
 * absent or empty: the AssemblyScript library sends `[]` for "none").
 */
export function digest(data: Record<string, unknown>, unique?: readonly string[] | null): string {
  let subject: Record<string, unknown> = data;
  if (unique && unique.length > 0) {
    // Null prototype: a unique field named `__proto__` counts like any other.
    subject = Object.create(null) as Record<string, unknown>;
    for (const k of unique) if (Object.prototype.hasOwnProperty.call(data, k)) subject[k] = data[k];
  }
  return createHash('md5').update(normalizeTable(subject), 'utf8').digest('hex');
}
