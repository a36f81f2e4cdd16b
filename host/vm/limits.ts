/**
 * Bounds on what a guest can make the host keep, per VM, and the count of
 * times each was hit. A guest over a bound gets a status (documented in
 * docs/data-plane.md "Guest bounds"), never an exception or unbounded growth;
 * the counts are exposed as hookwire_wasm_bound_hits_total{vm_id,bound}.
 */
import { BUFFER_MAX_BYTES, HEADER_MAP_MAX_BYTES, HEADER_MAP_MAX_ENTRIES } from '../abi/imports.js';

export const GUEST_LIMITS = {
  /** Shared data (per vm_id): keys, bytes of one value, bytes of all keys and values. */
  sharedDataKeys: 4096,
  sharedDataValueBytes: 1024 * 1024,
  sharedDataTotalBytes: 16 * 1024 * 1024,
  /** Shared queues registered per vm_id, items waiting in one queue, bytes waiting in all queues of a vm_id. */
  sharedQueues: 256,
  queueItems: 10_000,
  queueBytes: 16 * 1024 * 1024,
  /** Metrics defined through proxy_define_metric (one registry per runtime), bytes of a name. */
  metrics: 4096,
  metricNameBytes: 1024,
  /** proxy_http_call requests in flight per plugin, and the bytes of their headers and bodies. */
  pendingHttpCalls: 1024,
  pendingHttpCallBytes: 16 * 1024 * 1024,
  /** Bytes (names plus values, Envoy's byteSize) and entries of one header map after a guest edit. */
  headerMapBytes: HEADER_MAP_MAX_BYTES,
  headerMapEntries: HEADER_MAP_MAX_ENTRIES,
  /** Bytes a guest may make one body buffer hold through set_buffer_bytes. */
  bufferBytes: BUFFER_MAX_BYTES,
  /** proxy_set_property: values kept per context, bytes of one key and value, bytes of all of a context's. */
  customProperties: 1024,
  customPropertyBytes: 64 * 1024,
  customPropertyTotalBytes: 1024 * 1024,
} as const;

export type GuestBound =
  | 'shared_data'
  | 'shared_queue'
  | 'queue_items'
  | 'metrics'
  | 'http_calls'
  | 'header_map'
  | 'buffer'
  | 'properties';

/** How often each bound was hit, by vm_id. */
export class BoundHits {
  private readonly hits = new Map<string, Map<GuestBound, number>>();

  hit(vmId: string, bound: GuestBound): void {
    let byBound = this.hits.get(vmId);
    if (byBound === undefined) this.hits.set(vmId, (byBound = new Map()));
    byBound.set(bound, (byBound.get(bound) ?? 0) + 1);
  }

  count(vmId: string, bound: GuestBound): number {
    return this.hits.get(vmId)?.get(bound) ?? 0;
  }

  /** [vmId, bound, count] for every bound hit at least once. */
  *entries(): IterableIterator<[string, GuestBound, number]> {
    for (const [vmId, byBound] of this.hits) for (const [bound, n] of byBound) yield [vmId, bound, n];
  }
}

/** Longest timer Node can schedule (ms); longer periods and timeouts are clamped to it (about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * proxy_set_property's store for one context: false (nothing stored) when the
 * value is over GUEST_LIMITS.customPropertyBytes, or the context would keep
 * more than GUEST_LIMITS.customProperties values or customPropertyTotalBytes.
 */
export function storeProperty(map: Map<string, Uint8Array>, key: string, value: Uint8Array): boolean {
  if (key.length + value.byteLength > GUEST_LIMITS.customPropertyBytes) return false;
  const old = map.get(key);
  if (old === undefined && map.size >= GUEST_LIMITS.customProperties) return false;
  // set_property is rare (not per header): summing what the context keeps is cheap enough.
  let total = key.length + value.byteLength - (old === undefined ? 0 : key.length + old.byteLength);
  for (const [k, v] of map) total += k.length + v.byteLength;
  if (total > GUEST_LIMITS.customPropertyTotalBytes) return false;
  map.set(key, value);
  return true;
}
