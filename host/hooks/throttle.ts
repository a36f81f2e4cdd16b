/**
 * on_change and snooze, with Kong's tested semantics (spec-ee event hooks):
 *
 * | on_change | snooze | behaviour |
 * |---|---|---|
 * | off | off | every event fires |
 * | on  | off | fires when the digest differs from the last one seen for (hook, source, event) |
 * | off | N   | the first event fires; later ones are dropped (not delayed) for N s from it |
 * | on  | N   | as snooze, keyed per digest: each distinct digest fires once per N-s window |
 *
 * State is per process and in memory, like Kong's (mlcache is per node): a
 * restart forgets it, so the next event fires. A shared store (PostgreSQL)
 * decides instead, for every node (EventHookStore.admitThrottled), with the
 * same keys and semantics, and keeps the state across restarts.
 */

export type ThrottleVerdict = 'fire' | 'snoozed' | 'unchanged';

export interface ThrottledHook {
  readonly id: string;
  readonly on_change: boolean | null;
  readonly snooze: number | null;
}

/** What a verdict is kept under: hook, source, event, and the digest when snooze applies per digest (on_change with snooze). */
export function throttleKey(hook: ThrottledHook, source: string, event: string, digest: string): string {
  const key = `${hook.id}:${source}:${event}`;
  return hook.on_change === true && (hook.snooze ?? 0) > 0 ? `${key}:${digest}` : key;
}

export class Throttle {
  /** on_change alone: key → last digest. */
  private readonly lastDigest = new Map<string, string>();
  /** snooze: key → end of the window (ms). */
  private readonly until = new Map<string, number>();

  /** Decide for one event; records the state when it fires. `digest` null: data without a digest, never throttled. */
  admit(hook: ThrottledHook, source: string, event: string, digest: string | null, nowMs: number): ThrottleVerdict {
    const onChange = hook.on_change === true;
    const snooze = hook.snooze ?? 0;
    if ((!onChange && snooze <= 0) || digest === null) return 'fire';
    const key = throttleKey(hook, source, event, digest);
    if (snooze > 0) {
      const end = this.until.get(key);
      if (end !== undefined && nowMs < end) return 'snoozed';
      this.until.set(key, nowMs + snooze * 1000);
      return 'fire';
    }
    if (this.lastDigest.get(key) === digest) return 'unchanged';
    this.lastDigest.set(key, digest);
    return 'fire';
  }

  /** Forget a deleted hook's state. */
  forget(hookId: string): void {
    const prefix = `${hookId}:`;
    for (const m of [this.lastDigest, this.until] as Map<string, unknown>[]) {
      for (const k of m.keys()) if (k.startsWith(prefix)) m.delete(k);
    }
  }

  /** Drop windows that ended (bounds memory when on_change+snooze sees many digests). */
  prune(nowMs: number): void {
    for (const [k, end] of this.until) if (end <= nowMs) this.until.delete(k);
  }

  get size(): number {
    return this.lastDigest.size + this.until.size;
  }
}
