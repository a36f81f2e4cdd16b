/**
 * Shared key-value data, scoped per vm_id as in Envoy, with compare-and-swap.
 * Lives outside any VM instance so a reloaded VM sees what its predecessor stored.
 */
import { Status } from '../abi/constants.js';
import { BoundHits, GUEST_LIMITS } from './limits.js';

interface Entry {
  value: Uint8Array;
  cas: number;
}

export class SharedData {
  private readonly byVm = new Map<string, Map<string, Entry>>();
  /** Bytes of keys and values, per vm_id (bounded by GUEST_LIMITS.sharedDataTotalBytes). */
  private readonly bytesByVm = new Map<string, number>();
  private nextCas = 1;

  constructor(private readonly bounds: BoundHits = new BoundHits()) {}

  private scope(vmId: string): Map<string, Entry> {
    let m = this.byVm.get(vmId);
    if (!m) this.byVm.set(vmId, (m = new Map()));
    return m;
  }

  get(vmId: string, key: string): { value: Uint8Array; cas: number } | undefined {
    return this.byVm.get(vmId)?.get(key);
  }

  /** cas 0 writes unconditionally; otherwise it must match the stored cas. */
  set(vmId: string, key: string, value: Uint8Array, cas: number): Status {
    const scope = this.scope(vmId);
    const entry = scope.get(key);
    if (entry && cas !== 0 && cas !== entry.cas) return Status.CAS_MISMATCH;
    // Bounds: one value, the number of keys, and all bytes of this vm_id.
    if (value.byteLength > GUEST_LIMITS.sharedDataValueBytes) return this.refuse(vmId, Status.BAD_ARGUMENT);
    if (!entry && scope.size >= GUEST_LIMITS.sharedDataKeys) return this.refuse(vmId, Status.INTERNAL_FAILURE);
    const before = this.bytesByVm.get(vmId) ?? 0;
    const after = before + value.byteLength - (entry ? entry.value.byteLength : -key.length);
    if (after > GUEST_LIMITS.sharedDataTotalBytes) return this.refuse(vmId, Status.INTERNAL_FAILURE);
    this.bytesByVm.set(vmId, after);
    // CAS values never repeat, so a stale token can never match again.
    const next = this.nextCas++;
    if (this.nextCas > 0xffffffff) this.nextCas = 1;
    scope.set(key, { value, cas: next });
    return Status.OK;
  }

  private refuse(vmId: string, status: Status): Status {
    this.bounds.hit(vmId, 'shared_data');
    return status;
  }

  keys(vmId: string): string[] {
    return [...(this.byVm.get(vmId)?.keys() ?? [])];
  }
}
