/**
 * Live objects by integer id, for ids handed out in increasing order (context
 * ids, http call tokens) whose objects come and go at the request rate.
 *
 * Why not a Map: V8's Map (an OrderedHashTable) rehashes into a new table
 * every few dozen additions under add/remove churn, and the table it leaves
 * keeps its entries and a link to its successor (for iterators still walking
 * it). Once a table has been promoted (a Mark-Compact promotes everything
 * alive in the young generation), every later table is allocated in the old
 * generation as well. The scavenger takes every old-generation slot that
 * points into the young generation as a root, live or not; so each left-behind
 * table kept the streams that were in flight when it was replaced (request,
 * response, header maps, undici request: the whole graph), and the chain of
 * tables kept the next ones, until the next Mark-Compact. Under load that
 * promoted most of every request (issue 13: the post-Mark-Compact scavenges
 * promoted 2–3 MB each, which brought the next Mark-Compact within a second).
 *
 * Here two arrays hold the entries (open addressing: slot `id & mask`,
 * linear probing, backward-shift deletion): removing an entry clears its slot
 * in the only arrays there are, and they are replaced only when the live
 * entries outgrow them. Consecutive ids take consecutive slots, so a probe
 * rarely goes past the first slot.
 */
const EMPTY = -1;

export class IdTable<V> {
  /** The id in each slot, EMPTY for none (a typed array: no pointers for the collector to follow). */
  private ids: Float64Array;
  private values: (V | undefined)[];
  private mask: number;
  private count = 0;

  constructor(capacity = 64) {
    let n = 8;
    while (n < capacity) n *= 2;
    this.ids = new Float64Array(n).fill(EMPTY);
    this.values = new Array<V | undefined>(n).fill(undefined);
    this.mask = n - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The slot holding `id`, or -1. */
  private find(id: number): number {
    const ids = this.ids;
    const mask = this.mask;
    for (let i = id & mask; ; i = (i + 1) & mask) {
      const k = ids[i]!;
      if (k === id) return i;
      if (k === EMPTY) return -1;
    }
  }

  get(id: number): V | undefined {
    const i = this.find(id);
    return i < 0 ? undefined : this.values[i];
  }

  /** `id` is a non-negative integer (at most 2^53). */
  set(id: number, value: V): void {
    const at = this.find(id);
    if (at >= 0) {
      this.values[at] = value;
      return;
    }
    // At most half full: probes stay short.
    if ((this.count + 1) * 2 > this.ids.length) this.grow();
    const ids = this.ids;
    const mask = this.mask;
    let i = id & mask;
    while (ids[i] !== EMPTY) i = (i + 1) & mask;
    ids[i] = id;
    this.values[i] = value;
    this.count++;
  }

  /** Remove `id`; false when it was not there. */
  delete(id: number): boolean {
    let i = this.find(id);
    if (i < 0) return false;
    const ids = this.ids;
    const values = this.values;
    const mask = this.mask;
    // Backward shift: pull later entries of the probe run into the hole, so no
    // tombstone is left and every entry stays reachable from its home slot.
    for (let j = (i + 1) & mask; ids[j] !== EMPTY; j = (j + 1) & mask) {
      const home = ids[j]! & mask;
      // Entry j may move to i unless its home lies cyclically in (i, j].
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (stays) continue;
      ids[i] = ids[j]!;
      values[i] = values[j];
      i = j;
    }
    ids[i] = EMPTY;
    values[i] = undefined;
    this.count--;
    return true;
  }

  clear(): void {
    this.ids.fill(EMPTY);
    this.values.fill(undefined);
    this.count = 0;
  }

  private grow(): void {
    const oldIds = this.ids;
    const oldValues = this.values;
    const n = oldIds.length * 2;
    this.ids = new Float64Array(n).fill(EMPTY);
    this.values = new Array<V | undefined>(n).fill(undefined);
    this.mask = n - 1;
    this.count = 0;
    for (let i = 0; i < oldIds.length; i++) if (oldIds[i] !== EMPTY) this.set(oldIds[i]!, oldValues[i] as V);
    // The old arrays are dropped; clear them anyway, so that a promoted copy keeps nothing alive.
    oldValues.fill(undefined);
  }
}
