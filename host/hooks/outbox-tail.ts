/**
 * Claims served from memory: the tail of an origin's outbox queue that this
 * process accepted itself.
 *
 * Once a claim for an origin has leased every due delivery of it (the claim
 * came back short), the deliveries this process accepts next for that origin
 * are exactly what its next claims would read back, in the same order, until
 * something else lands in its queue. While that holds, the accepted
 * deliveries are kept here (they are on disk too) and claims take them from
 * memory: no query, no text read back.
 *
 * A tail is only an optimization and is dropped at the first doubt; the rows
 * are in the outbox and the claim query finds them:
 * - another delivery of the origin becomes due (a retry, a hand-back): the
 *   tail serves only until that row's due time (`blockAt`);
 * - anything that can reorder or move the queue (manual retry, hook deleted,
 *   re-partitioning, lost lease, a write by another process): `drop` / `clear`;
 * - it grows past `MAX_TAIL` (an origin that does not drain, e.g. its circuit
 *   is open): its memory goes back, the rows wait on disk.
 */
import type { ClaimedDelivery } from './store.js';

/** Most deliveries kept in memory per origin. */
export const MAX_TAIL = 4096;

interface Tail {
  /** Accepted here, not yet claimed, in acceptance (= due) order. */
  rows: ClaimedDelivery[];
  /** Due times, parallel to `rows`. */
  due: number[];
  /** Index of the first unclaimed row (rows before it are taken). */
  head: number;
  /** Earliest due time of any other pending delivery of the origin not in flight here (Infinity: none). */
  blockedFrom: number;
}

export class OutboxTails {
  private readonly tails = new Map<string, Tail>();

  get size(): number {
    return this.tails.size;
  }

  /** Every due delivery of `origin` is in flight here; the next one not accepted here is due at `blockedFrom`. */
  activate(origin: string, blockedFrom: number): void {
    // A claim just leased everything due: whatever an older tail still held is in flight now.
    this.tails.set(origin, { rows: [], due: [], head: 0, blockedFrom });
  }

  /** A delivery of `origin` accepted (committed) here, due at `due`. */
  append(d: ClaimedDelivery, due: number): void {
    const t = this.tails.get(d.origin);
    if (t === undefined) return;
    if (t.rows.length - t.head >= MAX_TAIL) {
      this.tails.delete(d.origin);
      return;
    }
    t.rows.push(d);
    t.due.push(due);
  }

  /** Another pending delivery of `origin` (not accepted through the tail) is due at `at`. */
  blockAt(origin: string, at: number): void {
    const t = this.tails.get(origin);
    if (t !== undefined && at < t.blockedFrom) t.blockedFrom = at;
  }

  drop(origin: string): void {
    this.tails.delete(origin);
  }

  clear(): void {
    this.tails.clear();
  }

  /** Whether claims of `origin` at `now` can be served from memory. */
  serves(origin: string, now: number): boolean {
    const t = this.tails.get(origin);
    return t !== undefined && now < t.blockedFrom;
  }

  /**
   * Up to `limit` deliveries of `origin` due at `now`, oldest first; null when
   * the tail cannot answer (the claim must query). A short answer means the
   * origin has nothing else due: its next due time is `blockedFrom`.
   */
  take(origin: string, now: number, limit: number): { rows: ClaimedDelivery[]; lastDue: number; nextDue: number | null } | null {
    const t = this.tails.get(origin);
    if (t === undefined) return null;
    if (now >= t.blockedFrom) {
      // Another delivery is due: from here on the claim query orders the queue.
      this.tails.delete(origin);
      return null;
    }
    let end = t.head;
    const stop = Math.min(t.rows.length, t.head + limit);
    while (end < stop && t.due[end]! <= now) end++;
    const rows = t.rows.slice(t.head, end);
    const lastDue = end > t.head ? t.due[end - 1]! : 0;
    t.head = end;
    if (t.head === t.rows.length) {
      t.rows = [];
      t.due = [];
      t.head = 0;
    } else if (t.head > 1024) {
      t.rows = t.rows.slice(t.head);
      t.due = t.due.slice(t.head);
      t.head = 0;
    }
    let nextDue: number | null = null;
    if (rows.length < limit) {
      // Nothing more is due now: the earliest of what waits in the tail and elsewhere.
      const waiting = t.head < t.rows.length ? t.due[t.head]! : Infinity;
      const next = Math.min(waiting, t.blockedFrom);
      nextDue = next === Infinity ? null : next;
    }
    return { rows, lastDue, nextDue };
  }
}
