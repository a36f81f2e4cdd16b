/**
 * Claims served from memory: the tail of an origin's outbox queue that this
 * process accepted itself.
 *
 * Once an origin is being claimed, the deliveries this process accepts for it
 * are also kept here, in acceptance order (they are on disk too). When the
 * claim query has leased everything queued before them (it returned one of
 * them, or came back short), those kept deliveries are exactly what the next
 * claims would read back, in the same order, until something else lands in
 * the queue. From then on claims take them from memory: no query, no text
 * read back.
 *
 * A tail is only an optimization and is dropped at the first doubt; the rows
 * are in the outbox and the claim query finds them:
 * - another delivery of the origin becomes due (a retry, a hand-back, one
 *   queued earlier for later): the tail serves only until that due time;
 * - anything that can reorder or move the queue (manual retry, hook deleted,
 *   re-partitioning, lost lease, a write by another process, the clock
 *   stepping back): `drop` / `clear`;
 * - it grows past `MAX_TAIL`, or all tails together past `MAX_KEPT` (origins
 *   that do not drain, e.g. their circuit is open): its memory goes back, the
 *   rows wait on disk.
 */
import type { ClaimedDelivery } from './store.js';

/** Most deliveries kept in memory per origin... */
export const MAX_TAIL = 4096;
/** ...and for all origins together (a few MB: each holds its event's JSON). */
export const MAX_KEPT = 16_384;

interface Tail {
  /** Accepted here, not yet claimed, in acceptance (= due) order. */
  rows: ClaimedDelivery[];
  /** Due times, parallel to `rows`. */
  due: number[];
  /** Index of the first unclaimed row (rows before it are taken). */
  head: number;
  /** The claim query has leased everything queued before `rows`: claims may be served from here. */
  ready: boolean;
  /** Earliest due time of any other pending delivery of the origin not in flight here (Infinity: none). */
  blockedFrom: number;
}

export class OutboxTails {
  private readonly tails = new Map<string, Tail>();
  /** Deliveries kept, all tails together. */
  private kept = 0;

  get size(): number {
    return this.tails.size;
  }

  /** Whether deliveries accepted for `origin` are kept. */
  has(origin: string): boolean {
    return this.tails.has(origin);
  }

  /** Starts keeping the deliveries accepted for `origin` from now on. */
  track(origin: string): void {
    if (!this.tails.has(origin)) this.tails.set(origin, { rows: [], due: [], head: 0, ready: false, blockedFrom: Infinity });
  }

  /** A delivery accepted (committed) here, due at `due`. */
  append(d: ClaimedDelivery, due: number): void {
    const t = this.tails.get(d.origin);
    if (t === undefined) return;
    const last = t.due.length > t.head ? t.due[t.due.length - 1]! : -Infinity;
    // Too big, or the clock stepped back (memory order would no longer be due order).
    if (t.rows.length - t.head >= MAX_TAIL || this.kept >= MAX_KEPT || due < last) {
      this.drop(d.origin);
      return;
    }
    t.rows.push(d);
    t.due.push(due);
    this.kept++;
  }

  /**
   * The claim query just leased deliveries of `origin` (`leased(seq)` says
   * which are in flight now): they leave the tail. Returns true when the
   * query reached the tail (leased at least one of its deliveries).
   */
  leasedByQuery(origin: string, leased: (seq: number) => boolean): boolean {
    const t = this.tails.get(origin);
    if (t === undefined) return false;
    const from = t.head;
    while (t.head < t.rows.length && leased(t.rows[t.head]!.seq)) t.head++;
    const reached = t.head !== from;
    this.kept -= t.head - from;
    this.compact(t);
    return reached;
  }

  /** The seq of the first delivery still kept for `origin`, or null when none is. */
  firstSeq(origin: string): number | null {
    const t = this.tails.get(origin);
    return t !== undefined && t.head < t.rows.length ? t.rows[t.head]!.seq : null;
  }

  /** Everything queued for `origin` before its tail is leased; the next other delivery is due at `blockedFrom`. */
  ready(origin: string, blockedFrom: number): void {
    const t = this.tails.get(origin);
    if (t === undefined) return;
    t.ready = true;
    t.blockedFrom = blockedFrom;
  }

  /** Another pending delivery of `origin` (not kept here) is due at `at`. */
  blockAt(origin: string, at: number): void {
    const t = this.tails.get(origin);
    if (t !== undefined && at < t.blockedFrom) t.blockedFrom = at;
  }

  drop(origin: string): void {
    const t = this.tails.get(origin);
    if (t === undefined) return;
    this.kept -= t.rows.length - t.head;
    this.tails.delete(origin);
  }

  clear(): void {
    this.tails.clear();
    this.kept = 0;
  }

  /** Deliveries kept in memory, all origins together. */
  get keptCount(): number {
    return this.kept;
  }

  /** Whether a claim of `origin` at `now` can be served from memory. */
  serves(origin: string, now: number): boolean {
    const t = this.tails.get(origin);
    return t !== undefined && t.ready && now < t.blockedFrom;
  }

  /**
   * Up to `limit` deliveries of `origin` due at `now`, oldest first; null when
   * the tail cannot answer (the claim must query). A short answer means the
   * origin has nothing else due: `nextDue` is its next due time.
   */
  take(origin: string, now: number, limit: number): { rows: ClaimedDelivery[]; nextDue: number | null } | null {
    const t = this.tails.get(origin);
    if (t === undefined || !t.ready) return null;
    if (now >= t.blockedFrom) {
      // Another delivery is due: the claim query orders the queue again, and keeping starts over.
      this.drop(origin);
      return null;
    }
    let end = t.head;
    const stop = Math.min(t.rows.length, t.head + limit);
    while (end < stop && t.due[end]! <= now) end++;
    const rows = t.rows.slice(t.head, end);
    t.head = end;
    this.kept -= rows.length;
    let nextDue: number | null = null;
    if (rows.length < limit) {
      // Nothing more is due now: the earliest of what waits here and elsewhere.
      const next = Math.min(t.head < t.rows.length ? t.due[t.head]! : Infinity, t.blockedFrom);
      nextDue = next === Infinity ? null : next;
    }
    this.compact(t);
    return { rows, nextDue };
  }

  private compact(t: Tail): void {
    if (t.head === t.rows.length) {
      t.rows = [];
      t.due = [];
      t.head = 0;
    } else if (t.head > 1024) {
      t.rows = t.rows.slice(t.head);
      t.due = t.due.slice(t.head);
      t.head = 0;
    }
  }
}
