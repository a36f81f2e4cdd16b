/**
 * The outbox contract, one suite for both stores (SQLite and PostgreSQL):
 * claims lease in due order and never a delivery already in flight; leases
 * expire and another owner sends the same delivery (same id); outcomes,
 * listings, retries, hooks and sweeping behave the same.
 */
import { describe, it, expect } from 'vitest';
import type { EventHook } from '../../host/hooks/types.js';
import type { AttemptRecord, ClaimedDelivery, DeliveryOutcome, EventHookStore, NewEvent } from '../../host/hooks/store.js';
import { usePostgres } from '../helpers/postgres.js';
import { lastOutboxEvent, outboxEvents } from './helpers.js';
import { storeBackends } from './stores.js';

const A = 'http://a.example';
const B = 'http://b.example';
const pgc = usePostgres();
const backends = storeBackends(pgc);

const events = (count: number, origin = A): NewEvent[] => outboxEvents(count, origin);

const ok = (c: ClaimedDelivery, now: number): DeliveryOutcome => ({
  seq: c.seq,
  kind: 'succeeded',
  attempt: { attempt: c.attempt, startedAtMs: now, durationMs: 1, status: 200, error: null, response: 'ok', webhookTimestamp: 1, url: 'u' },
});

function attempt(c: ClaimedDelivery, at: number, status: number | null, error: string | null = null): AttemptRecord {
  return { attempt: c.attempt, startedAtMs: at, durationMs: 7, status, error, response: status === null ? null : `r${status}`, webhookTimestamp: Math.floor(at / 1000), url: 'http://a.example/h' };
}

async function claim(s: EventHookStore, now: number, limit: number, outcomes: DeliveryOutcome[] = [], origin = A, owner = 'me'): Promise<ClaimedDelivery[]> {
  return (await s.cycle(outcomes, [{ origin, limit }], now, now + 60_000, owner)).claimed;
}

const nums = (cs: ClaimedDelivery[]): number[] => cs.map((c) => JSON.parse(c.json).n as number);

function hook(id: string, source = 's'): EventHook {
  return { id, created_at: 1, updated_at: 1, source, event: null, handler: 'log', on_change: null, snooze: null, enabled: true, config: {} as EventHook['config'] };
}

describe.each(backends)('outbox claims: $name', (b) => {
  const store = async () => b.open(await b.fresh());

  it('leases in due order, never a delivery already in flight, across many batches with the same due time', async () => {
    const s = await store();
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
    const s = await store();
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
    const s = await store();
    await s.accept(events(6), [], 5000);
    const a = await claim(s, 6000, 3);
    const [late] = events(1);
    await s.accept([late!], [], 4000); // the clock stepped back
    const c = await claim(s, 6000, 3);
    expect(nums(c)[0]).toBe(JSON.parse(late!.json).n);
    expect(nums(c)).not.toContain(nums(a)[0]);
  });

  it('origins keep separate cursors; a short claim reports the next due time', async () => {
    const s = await store();
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
    const s = await store();
    await s.accept(events(8), [], 1000);
    const a = await claim(s, 2000, 2);
    await claim(s, 2000, 2, a.map((c) => ok(c, 2000)));
    // Due at the cursor's own time, with a smaller seq: only dropping the cursor finds it.
    expect(await s.retryDelivery('h', a[0]!.id, 1000)).toBe('scheduled');
    const c = await claim(s, 2000, 2);
    expect(c[0]!.id).toBe(a[0]!.id);
    expect(c[0]!.attempt).toBe(2);
  });

  it('dueOrigins lists each origin with pending deliveries and its earliest due time', async () => {
    const s = await store();
    await s.accept(events(2, A), [], 1000);
    await s.accept(events(1, B), [], 3000);
    expect(await s.dueOrigins()).toEqual(new Map([[A, 1000], [B, 3000]]));
    expect(await s.counts()).toEqual({ pending: 3 });
  });
});

describe.each(backends)('several owners on one outbox (processes, nodes): $name', (b) => {
  it('two owners claiming at once never lease the same delivery', async () => {
    const where = await b.fresh();
    const s1 = await b.open(where);
    const s2 = await b.open(where);
    await s1.accept(events(40), [], 1000);
    const got: ClaimedDelivery[] = [];
    let done1: DeliveryOutcome[] = [];
    let done2: DeliveryOutcome[] = [];
    for (let i = 0; i < 30 && got.length < 40; i++) {
      const [c1, c2] = await Promise.all([claim(s1, 2000, 3, done1, A, 'node-1'), claim(s2, 2000, 3, done2, A, 'node-2')]);
      got.push(...c1, ...c2);
      done1 = c1.map((c) => ok(c, 2000));
      done2 = c2.map((c) => ok(c, 2000));
    }
    await claim(s1, 2000, 3, done1, A, 'node-1');
    await claim(s2, 2000, 3, done2, A, 'node-2');
    const ids = got.map((c) => c.id);
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
    expect(await s1.counts()).toEqual({ pending: 0 });
  });

  it('a dead owner\'s lease expires: another owner sends the same delivery (same id, next attempt number)', async () => {
    const where = await b.fresh();
    const dead = await b.open(where);
    const live = await b.open(where);
    await dead.accept(events(3), [], 1000);
    // The dead owner leases everything until 61_000 and never reports.
    const leased = (await dead.cycle([], [{ origin: A, limit: 10 }], 1000, 61_000, 'dead')).claimed;
    expect(leased).toHaveLength(3);
    const early = await live.cycle([], [{ origin: A, limit: 10 }], 30_000, 90_000, 'live');
    expect(early.claimed).toEqual([]);
    expect(early.nextDue.get(A)).toBe(61_000);
    const after = (await live.cycle([], [{ origin: A, limit: 10 }], 61_001, 121_001, 'live')).claimed;
    expect(after.map((c) => c.id).sort()).toEqual(leased.map((c) => c.id).sort());
    expect(after.every((c) => c.attempt === 1)).toBe(true);
  });
});

describe.each(backends)('outcomes and listings: $name', (b) => {
  const store = async () => b.open(await b.fresh());
  const one = async (s: EventHookStore, now: number, outcomes: DeliveryOutcome[] = []) =>
    (await s.cycle(outcomes, [{ origin: A, limit: 1 }], now, now + 60_000, 'me')).claimed[0];

  it('attempts are listed in order with every field: a failure, then the success kept in the row', async () => {
    const s = await store();
    const [e] = events(1);
    await s.accept([e!], [], 1000);
    const c1 = (await one(s, 1000))!;
    const c2 = (await one(s, 2000, [{ seq: c1.seq, kind: 'retry', nextAttemptAtMs: 1500, attempt: attempt(c1, 1000, 503, 'endpoint answered 503'), error: 'endpoint answered 503' }]))!;
    expect(c2.attempt).toBe(2);
    expect(c2.id).toBe(c1.id);
    await s.cycle([{ seq: c2.seq, kind: 'succeeded', attempt: attempt(c2, 2000, 200) }], [], 2100, 62_100, 'me');
    const d = await s.getDelivery('h', e!.deliveries[0]!.id, 2200);
    expect(d).toMatchObject({ state: 'succeeded', attempt_count: 2, last_status: 200, last_error: null, next_attempt_at_ms: null, event_id: e!.id });
    expect(d!.attempts).toEqual([
      { attempt: 1, started_at_ms: 1000, duration_ms: 7, status: 503, error: 'endpoint answered 503', response: 'r503', webhook_timestamp: 1, url: 'http://a.example/h' },
      { attempt: 2, started_at_ms: 2000, duration_ms: 7, status: 200, error: null, response: 'r200', webhook_timestamp: 2, url: 'http://a.example/h' },
    ]);
  });

  it('a delivery in flight is listed as delivering, and a manual retry of it is refused as in flight', async () => {
    const s = await store();
    const [e] = events(1);
    await s.accept([e!], [], 1000);
    await one(s, 1000);
    const d = await s.getDelivery('h', e!.deliveries[0]!.id, 1001);
    expect(d).toMatchObject({ state: 'delivering', attempt_count: 1, next_attempt_at_ms: null });
    expect(await s.retryDelivery('h', e!.deliveries[0]!.id, 1002)).toBe('in_flight');
    expect(await s.retryDelivery('h', 'msg_absent', 1002)).toBeNull();
  });

  it('a failure is final; a success after a manual retry of a succeeded delivery is listed too', async () => {
    const s = await store();
    const [e, f] = events(2);
    await s.accept([e!, f!], [], 1000);
    const c1 = (await one(s, 1000))!;
    const c2 = (await one(s, 1000, [{ seq: c1.seq, kind: 'succeeded', attempt: attempt(c1, 1000, 200) }]))!;
    await s.cycle([{ seq: c2.seq, kind: 'failed', attempt: attempt(c2, 1000, 400, 'endpoint answered 400'), error: 'endpoint answered 400' }], [], 1100, 61_100, 'me');
    expect(await s.getDelivery('h', f!.deliveries[0]!.id, 1200)).toMatchObject({ state: 'failed', last_status: 400, last_error: 'endpoint answered 400' });
    expect(await s.retryDelivery('h', e!.deliveries[0]!.id, 1200)).toBe('scheduled');
    const c3 = (await one(s, 1300))!;
    expect([c3.id, c3.attempt, c3.cycleStart]).toEqual([e!.deliveries[0]!.id, 2, 1]);
    await s.cycle([{ seq: c3.seq, kind: 'succeeded', attempt: attempt(c3, 1300, 204) }], [], 1400, 61_400, 'me');
    const d = await s.getDelivery('h', e!.deliveries[0]!.id, 1500);
    expect(d!.attempts.map((a) => [a.attempt, a.status])).toEqual([
      [1, 200],
      [2, 204],
    ]);
  });

  it("a dropped delivery (a wasm hook's transform said drop) is finished as dropped, its attempt keeping the reason, and listed by that state", async () => {
    const s = await store();
    const [e] = events(1);
    await s.accept([e!], [], 1000);
    const c = (await one(s, 1000))!;
    const reason = { ...attempt(c, 1000, null), response: 'consumers are not announced' };
    await s.cycle([{ seq: c.seq, kind: 'dropped', attempt: reason }], [], 1100, 61_100, 'me');
    const d = await s.getDelivery('h', e!.deliveries[0]!.id, 1200);
    expect(d).toMatchObject({ state: 'dropped', attempt_count: 1, last_status: null, last_error: null, next_attempt_at_ms: null });
    expect(d!.attempts.map((a) => [a.attempt, a.response])).toEqual([[1, 'consumers are not announced']]);
    expect((await s.listAllDeliveries('dropped', 10, null, 1200)).deliveries.map((x) => x.id)).toEqual([e!.deliveries[0]!.id]);
    expect(await one(s, 1300)).toBeUndefined(); // finished: never leased again
  });

  it('pages of deliveries newest first; the sweep deletes finished ones older than the bound, never pending ones', async () => {
    const s = await store();
    await s.accept(events(5), [], 1000);
    const page1 = await s.listDeliveries('h', 2, null, 1000);
    const page2 = await s.listDeliveries('h', 2, page1.next, 1000);
    const page3 = await s.listDeliveries('h', 2, page2.next, 1000);
    const ids = [...page1.deliveries, ...page2.deliveries, ...page3.deliveries].map((d) => d.id);
    expect(ids).toHaveLength(5);
    expect([...ids].sort().reverse()).toEqual(ids);
    expect(page3.next).toBeNull();
    const got = await claim(s, 1000, 2);
    await s.cycle(got.map((c) => ok(c, 1000)), [], 1000, 61_000, 'me');
    expect(await s.sweep(500)).toBe(0);
    expect(await s.sweep(5000)).toBeGreaterThanOrEqual(2);
    expect((await s.listDeliveries('h', 10, null, 6000)).deliveries).toHaveLength(3);
    expect(await s.counts()).toEqual({ pending: 3 });
  });
});

describe.each(backends)('every hook\'s deliveries: $name', (b) => {
  it('pages newest first across hooks, optionally in one stored state (a delivery in flight is stored as pending)', async () => {
    const s = await b.open(await b.fresh());
    const [e1, e2, e3] = events(3);
    e3!.deliveries[0]!.hookId = 'other';
    await s.accept([e1!, e2!, e3!], [], 1000);
    const [c1] = await claim(s, 1000, 1);
    await s.cycle([ok(c1!, 1000)], [], 1000, 61_000, 'me');
    await claim(s, 1000, 1); // e2 in flight
    const all = await s.listAllDeliveries(null, 2, null, 1001);
    const rest = await s.listAllDeliveries(null, 2, all.next, 1001);
    expect([...all.deliveries, ...rest.deliveries].map((d) => d.id)).toEqual([e3, e2, e1].map((e) => e!.deliveries[0]!.id));
    expect(rest.next).toBeNull();
    expect((await s.listAllDeliveries('succeeded', 10, null, 1001)).deliveries.map((d) => d.id)).toEqual([e1!.deliveries[0]!.id]);
    const pending = (await s.listAllDeliveries('pending', 10, null, 1001)).deliveries;
    expect(pending.map((d) => [d.id, d.state])).toEqual([
      [e3!.deliveries[0]!.id, 'pending'],
      [e2!.deliveries[0]!.id, 'delivering'],
    ]);
  });
});

describe.each(backends)('hooks and sources: $name', (b) => {
  it('hooks round-trip, page in creation order, update in place; deleting one takes its deliveries', async () => {
    const s = await b.open(await b.fresh());
    for (const id of ['h1', 'h2', 'h3']) await s.insertHook(hook(id));
    await s.updateHook({ ...hook('h2'), enabled: false, on_change: true, snooze: 5, config: { url: 'http://x' } as unknown as EventHook['config'] });
    const all = await s.loadHooks();
    expect(all.map((h) => h.id)).toEqual(['h1', 'h2', 'h3']);
    expect(all[1]).toMatchObject({ enabled: false, on_change: true, snooze: 5, config: { url: 'http://x' } });
    expect(all[0]).toMatchObject({ enabled: true, on_change: null, snooze: null });
    const p1 = await s.listHooks(2, null);
    expect(p1.hooks.map((h) => h.id)).toEqual(['h1', 'h2']);
    expect((await s.listHooks(2, p1.next)).hooks.map((h) => h.id)).toEqual(['h3']);
    const ev: NewEvent = { ...events(1)[0]!, deliveries: [{ id: 'msg_h3', hookId: 'h3', origin: A }] };
    await s.accept([ev], [{ source: 'p', event: 'e', spec: { fields: ['a'] }, plugin: 'plug' }], 1000);
    expect(await s.loadSources()).toEqual([{ source: 'p', event: 'e', spec: { fields: ['a'] }, plugin: 'plug' }]);
    expect(await s.deleteHook('h3')).toBe(true);
    expect(await s.deleteHook('h3')).toBe(false);
    expect(await s.getDelivery('h3', 'msg_h3', 1000)).toBeNull();
    expect(await s.counts()).toEqual({ pending: 0 });
  });

  it('reassignOrigins moves a hook\'s pending deliveries to the new origin', async () => {
    const s = await b.open(await b.fresh());
    await s.accept(events(3, A), [], 1000);
    await s.reassignOrigins('h', () => B);
    expect(await s.dueOrigins()).toEqual(new Map([[B, 1000]]));
  });
});

describe('postgres event-hooks schema', () => {
  const pgBackend = backends.find((x) => x.name === 'postgres')!;
  const sql = async (url: string, text: string, params: unknown[] = []) => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(text, params)).rows;
    } finally {
      await c.end();
    }
  };

  it('every migration runs: from an empty database, and from version 1 with its rows kept', async () => {
    const { PG_EVENT_HOOKS_MIGRATIONS } = await import('../../host/hooks/pg-store.js');
    expect(PG_EVENT_HOOKS_MIGRATIONS.length).toBeGreaterThanOrEqual(2);
    const fresh = await pgBackend.fresh();
    await pgBackend.open(fresh);
    expect(await sql(fresh, `SELECT version FROM hookwire_schema WHERE component = 'event_hooks'`)).toEqual([{ version: PG_EVENT_HOOKS_MIGRATIONS.length }]);

    // A database as version 1 left it, with a pending delivery.
    const old = await pgBackend.fresh();
    await sql(old, 'CREATE TABLE hookwire_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    await sql(old, PG_EVENT_HOOKS_MIGRATIONS[0]!);
    await sql(old, `INSERT INTO hookwire_schema VALUES ('event_hooks', 1)`);
    await sql(
      old,
      `INSERT INTO hookwire_deliveries (id, hook_id, event_id, source, event, data, occurred_at, origin, state, next_attempt_at, created_at, updated_at)
       VALUES ('msg_old', 'h', 'evt_old', 's', 'e', '{"n":0}', 0, $1, 'pending', 900, 900, 900)`,
      [A],
    );
    const s = await pgBackend.open(old);
    expect(await sql(old, `SELECT version FROM hookwire_schema WHERE component = 'event_hooks'`)).toEqual([{ version: PG_EVENT_HOOKS_MIGRATIONS.length }]);
    expect((await claim(s, 1000, 5)).map((c) => c.id)).toEqual(['msg_old']);
    expect(await sql(old, `SELECT to_regclass('hookwire_throttle') AS t`)).toEqual([{ t: 'hookwire_throttle' }]);
  });

  it('a database migrated by a newer hookwire is refused with a typed error, untouched', async () => {
    const url = await pgBackend.fresh();
    await pgBackend.open(url);
    await sql(url, `UPDATE hookwire_schema SET version = 99 WHERE component = 'event_hooks'`);
    const err = await pgBackend.open(url).then(
      () => null,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err).toMatchObject({ code: 'HW_ERR_POSTGRES_STORE_VERSION' });
    expect(err!.message).toContain('event_hooks schema version 99; this hookwire knows up to');
    expect(await sql(url, `SELECT version FROM hookwire_schema WHERE component = 'event_hooks'`)).toEqual([{ version: 99 }]);
  });
});
