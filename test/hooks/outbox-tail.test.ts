/** Claims served from memory (outbox-tail.ts): only a shortcut, never a change in what is leased. */
import { describe, it, expect, afterEach, vi } from 'vitest';
import { MAX_KEPT, MAX_TAIL, OutboxTails } from '../../host/hooks/outbox-tail.js';
import { SqliteStore } from '../../host/hooks/sqlite-store.js';
import type { ClaimedDelivery, DeliveryOutcome, NewEvent } from '../../host/hooks/store.js';
import { outboxEvents, tempDir } from './helpers.js';

const A = 'http://a.example';
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function stores(count = 1): SqliteStore[] {
  const t = tempDir();
  const list = Array.from({ length: count }, () => new SqliteStore(t.db));
  cleanups.push(() => {
    for (const s of list) void s.close();
    t.cleanup();
  });
  return list;
}

const events = (count: number, origin = A): NewEvent[] => outboxEvents(count, origin);

const nOf = (e: NewEvent): number => JSON.parse(e.json).n as number;
const nums = (cs: ClaimedDelivery[]): number[] => cs.map((c) => JSON.parse(c.json).n as number);
const ok = (c: ClaimedDelivery, now: number): DeliveryOutcome => ({
  seq: c.seq,
  kind: 'succeeded',
  attempt: { attempt: c.attempt, startedAtMs: now, durationMs: 1, status: 200, error: null, response: 'ok', webhookTimestamp: 1, url: 'u' },
});

async function claim(s: SqliteStore, now: number, limit: number, outcomes: DeliveryOutcome[] = []) {
  return s.cycle(outcomes, [{ origin: A, limit }], now, now + 60_000, 'me');
}

/** Leases everything due (a short claim): what is accepted next is served from memory. */
async function drained(s: SqliteStore, now: number): Promise<ClaimedDelivery[]> {
  await s.accept(events(1), [], now);
  const r = await claim(s, now, 10);
  expect(r.claimed.length).toBeLessThan(10);
  return r.claimed;
}

describe('claims from the outbox tail', () => {
  it('deliveries accepted after a short claim are leased from memory, in order, as the query would, without a transaction', async () => {
    const [s] = stores();
    await drained(s!, 1000);
    const batch = events(5);
    await s!.accept(batch, [], 1100);
    const tx = vi.spyOn(s!.db, 'transaction');
    const first = await claim(s!, 1200, 3);
    const rest = await claim(s!, 1200, 4);
    expect(tx).not.toHaveBeenCalled();
    expect([...nums(first.claimed), ...nums(rest.claimed)]).toEqual(batch.map(nOf));
    expect(first.claimed[0]).toMatchObject({ id: batch[0]!.deliveries[0]!.id, hookId: 'h', origin: A, attempt: 1, cycleStart: 0, eventId: batch[0]!.id, source: 's', event: 'e', createdAtMs: 1100 });
    expect(rest.nextDue.get(A)).toBeNull();
    // What memory handed out is in flight: the listing says so, and recording the outcomes lands them.
    expect((await s!.getDelivery('h', batch[0]!.deliveries[0]!.id, 1200))!.state).toBe('delivering');
    await claim(s!, 1300, 1, [...first.claimed, ...rest.claimed].map((c) => ok(c, 1300)));
    expect((await s!.getDelivery('h', batch[0]!.deliveries[0]!.id, 1300))!.state).toBe('succeeded');
  });

  it('under a steady backlog, claims switch to memory once the query reaches what was accepted after it started', async () => {
    const [s] = stores();
    const backlog = events(10);
    await s!.accept(backlog, [], 1000);
    const got: ClaimedDelivery[] = [];
    got.push(...(await claim(s!, 1100, 4)).claimed); // the query; from here on accepted deliveries are kept
    const more = events(5);
    await s!.accept(more, [], 1150);
    got.push(...(await claim(s!, 1200, 4)).claimed);
    got.push(...(await claim(s!, 1200, 4)).claimed); // reaches the kept ones
    const tx = vi.spyOn(s!.db, 'transaction');
    got.push(...(await claim(s!, 1200, 4)).claimed);
    expect(tx).not.toHaveBeenCalled();
    expect(nums(got)).toEqual([...backlog, ...more].map(nOf));
  });

  it('a delivery queued earlier for later is not overtaken once due', async () => {
    const [s] = stores();
    await s!.accept(events(2), [], 1000);
    const early = (await claim(s!, 1000, 2)).claimed;
    const later: DeliveryOutcome = { seq: early[0]!.seq, kind: 'retry', nextAttemptAtMs: 1500, attempt: null, error: null };
    const first = events(3);
    await s!.accept(first, [], 1100);
    // The query reaches the kept deliveries while the retry (due 1500) waits.
    expect(nums((await claim(s!, 1200, 2, [later])).claimed)).toEqual(first.slice(0, 2).map(nOf));
    const after = events(2);
    await s!.accept(after, [], 1550);
    const at1600 = (await claim(s!, 1600, 10)).claimed;
    expect(nums(at1600)).toEqual([nOf(first[2]!), nums(early)[0], ...after.map(nOf)]);
  });

  it('a retry is leased once due, in due order with the rest of the tail', async () => {
    const [s] = stores();
    await drained(s!, 1000);
    await s!.accept(events(6), [], 1100);
    const a = (await claim(s!, 1200, 2)).claimed;
    const later: DeliveryOutcome = { seq: a[0]!.seq, kind: 'retry', nextAttemptAtMs: 1250, attempt: null, error: null };
    const sooner: DeliveryOutcome = { seq: a[1]!.seq, kind: 'retry', nextAttemptAtMs: 1050, attempt: null, error: null };
    const b = (await claim(s!, 1200, 2, [later, sooner])).claimed;
    expect(nums(b)[0]).toBe(nums(a)[1]); // due before everything else
    expect(nums(b)).not.toContain(nums(a)[0]); // not due yet
    const c = (await claim(s!, 1300, 10)).claimed;
    expect(nums(c)).toHaveLength(4);
    expect(nums(c).at(-1)).toBe(nums(a)[0]);
  });

  it('deliveries another process wrote to the file are leased too', async () => {
    const [s, other] = stores(2);
    await drained(s!, 1000);
    const theirs = events(2);
    await other!.accept(theirs, [], 1050);
    const mine = events(2);
    await s!.accept(mine, [], 1100);
    const got = (await claim(s!, 1200, 10)).claimed;
    expect(nums(got)).toEqual([...theirs, ...mine].map(nOf));
  });

  it('a manual retry of a finished delivery is leased while the tail is active', async () => {
    const [s] = stores();
    await drained(s!, 1000);
    await s!.accept(events(3), [], 1100);
    const a = (await claim(s!, 1200, 3)).claimed;
    await claim(s!, 1300, 1, a.map((c) => ok(c, 1300)));
    await s!.accept(events(2), [], 1350);
    expect(await s!.retryDelivery('h', a[1]!.id, 1400)).toBe('scheduled');
    const b = (await claim(s!, 1500, 10)).claimed;
    expect(b.map((c) => c.id)).toContain(a[1]!.id);
    expect(b).toHaveLength(3);
  });

  it('an origin that does not drain gives its memory back; its deliveries are leased from disk', async () => {
    const [s] = stores();
    await drained(s!, 1000);
    const many = events(MAX_TAIL + 10);
    await s!.accept(many, [], 1100);
    const tx = vi.spyOn(s!.db, 'transaction');
    const got: ClaimedDelivery[] = [];
    for (let i = 0; i < 10 && got.length < many.length; i++) got.push(...(await claim(s!, 1200, 1000)).claimed);
    expect(tx).toHaveBeenCalled();
    expect(nums(got)).toEqual(many.map(nOf));
  });
});

describe('OutboxTails memory bounds', () => {
  const row = (seq: number, origin: string): ClaimedDelivery => ({
    seq,
    id: `msg_${seq}`,
    hookId: 'h',
    origin,
    attempt: 1,
    cycleStart: 0,
    eventId: `evt_${seq}`,
    source: 's',
    event: 'e',
    json: '{}',
    createdAtMs: 0,
  });

  it('counts what it keeps, and gives an origin\'s memory back once all tails together hold MAX_KEPT', () => {
    const t = new OutboxTails();
    const origins = Array.from({ length: Math.ceil(MAX_KEPT / MAX_TAIL) + 1 }, (_, i) => `http://o${i}.example`);
    let seq = 0;
    for (const o of origins) {
      t.track(o);
      t.ready(o, Infinity);
      for (let i = 0; i < MAX_TAIL && t.has(o); i++) t.append(row(++seq, o), 0);
    }
    expect(t.keptCount).toBe(MAX_KEPT);
    // The origin that hit the bound was dropped (its rows wait on disk); the others still serve.
    expect(t.has(origins.at(-1)!)).toBe(false);
    expect(t.serves(origins[0]!, 1)).toBe(true);
    expect(t.take(origins[0]!, 1, 10)!.rows).toHaveLength(10);
    expect(t.keptCount).toBe(MAX_KEPT - 10);
    expect(t.leasedByQuery(origins[1]!, (s) => s <= MAX_TAIL + 5)).toBe(true);
    expect(t.keptCount).toBe(MAX_KEPT - 15);
    t.drop(origins[0]!);
    expect(t.keptCount).toBe(MAX_KEPT - 15 - (MAX_TAIL - 10));
    t.clear();
    expect(t.keptCount).toBe(0);
  });
});
