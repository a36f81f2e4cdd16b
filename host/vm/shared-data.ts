/**
 * Shared key-value data, scoped per vm_id as in Envoy, with compare-and-swap.
 * Lives outside any VM instance so a reloaded VM sees what its predecessor stored.
 */
import { Status } from '../abi/constants.js';

interface Entry {
  value: Uint8Array;
  cas: number;
}

export class SharedData {
  private readonly byVm = new Map<string, Map<string, Entry>>();
  private nextCas = 1;

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
    // CAS values never repeat, so a stale token can never match again.
    const next = this.nextCas++;
    if (this.nextCas > 0xffffffff) this.nextCas = 1;
    scope.set(key, { value, cas: next });
    return Status.OK;
  }

  keys(vmId: string): string[] {
    return [...(this.byVm.get(vmId)?.keys() ?? [])];
  }
}
