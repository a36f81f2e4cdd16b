/** The SQLite outbox's claim path: the per-origin cursor is only a shortcut, never a change in what is leased. */
import { describe, it, expect, afterEach } from 'vitest';
import { SqliteStore } from '../../host/hooks/sqlite-store.js';
import type { ClaimedDelivery, DeliveryOutcome, NewEvent } from '../../host/hooks/store.js';
import { lastOutboxEvent, outboxEvents, tempDir } from './helpers.js';

const A = 'http://a.example';
const B = 'http://b.example';
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function store(): SqliteStore {
  const t = tempDir();
  const s = new SqliteStore(t.db);
  cleanups.push(() => {
    void s.close();
    t.cleanup();
  });
  return s;
}

const events = (count: number, origin = A): NewEvent[] => outboxEvents(count, origin);

const ok = (c: ClaimedDelivery, now: number): DeliveryOutcome => ({
  seq: c.seq,
  kind: 'succeeded',
  attempt: { attempt: c.attempt, startedAtMs: now, durationMs: 1, status: 200, error: null, response: 'ok', webhookTimestamp: 1, url: 'u' },
});

async function claim(s: SqliteStore, now: number, limit: number, outcomes: DeliveryOutcome[] = [], origin = A): Promise<ClaimedDelivery[]> {
  return (await s.cycle(outcomes, [{ origin, limit }], now, now + 60_000, 'me')).claimed;
}

const nums = (cs: ClaimedDelivery[]): number[] => cs.map((c) => JSON.parse(c.json).n as number);

describe('SqliteStore claims', () => {
  it('leases in due order, never a delivery already in flight, across many batches with the same due time', async () => {
    const s = store();
    const base = lastOutboxEvent();
    await s.accept(events(50), [], 1000);
    const seen: number[] = [];
    let inFlight: ClaimedDelivery[] = [];
    for (let i = 0; i < 20 && seen.length < 50; i++) {
      // Finish only the older half: the rest stays in flight across the next claim.
      const done = inFlight.slice(0, Math.ceil(inFlight.length / 2));
      inFlight = inFlight.slice(done.length);
      const got = await claim(s, 2000, 4, done.map((c) => ok(c, 2000)));
      inFlight.push(...got);
      seen.push(...nums(got));
    }
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => base + i + 1));
  });

  it('a delivery handed back (or retried sooner) lands before the cursor and is leased again, first', async () => {
    const s = store();
    await s.accept(events(10), [], 1000);
    const first = await claim(s, 2000, 3);
    // Hand the second one back unattempted, due at 1000: before everything else.
    const back: DeliveryOutcome = { seq: first[1]!.seq, kind: 'retry', nextAttemptAtMs: 1000, attempt: null, error: null };
    const next = await claim(s, 2000, 3, [back]);
    expect(nums(next)[0]).toBe(nums(first)[1]);
    expect(new Set(nums(next)).size).toBe(3);
    expect(nums(next).filter((x) => x === nums(first)[0] || x === nums(first)[2])).toEqual([]);
  });

  it('rows accepted with an earlier clock reading than the cursor are not skipped', async () => {
    const s = store();
    await s.accept(events(6), [], 5000);
    const a = await claim(s, 6000, 3);
    const [late] = events(1);
    await s.accept([late!], [], 4000); // the clock stepped back
    const b = await claim(s, 6000, 3);
    expect(nums(b)[0]).toBe(JSON.parse(late!.json).n);
    expect(nums(b)).not.toContain(nums(a)[0]);
  });

  it('origins keep separate cursors; a short claim reports the next due time', async () => {
    const s = store();
    await s.accept([...events(4, A), ...events(4, B)], [], 1000);
    const a1 = await claim(s, 2000, 2, [], A);
    const b1 = await claim(s, 2000, 3, [], B);
    const a2 = await claim(s, 2000, 2, [], A);
    expect(new Set([...nums(a1), ...nums(a2)]).size).toBe(4);
    const r = await s.cycle([], [{ origin: B, limit: 5 }], 2000, 62_000, 'me');
    expect(r.claimed).toHaveLength(1);
    expect(nums(r.claimed)).not.toContain(nums(b1)[0]);
    expect(r.nextDue.get(B)).toBeNull(); // the rest of B is in flight
  });

  it('a manual retry of a finished delivery is leased again while a backlog is being drained', async () => {
    const s = store();
    await s.accept(events(8), [], 1000);
    const a = await claim(s, 2000, 2);
    await claim(s, 2000, 2, a.map((c) => ok(c, 2000)));
    // Due at the cursor's own time, with a smaller seq: only dropping the cursor finds it.
    expect(await s.retryDelivery('h', a[0]!.id, 1000)).toBe('scheduled');
    const b = await claim(s, 2000, 2);
    expect(b[0]!.id).toBe(a[0]!.id);
    expect(b[0]!.attempt).toBe(2);
  });
});
