/**
 * Schema 2: a delivery's first successful attempt lives in its row; the
 * listing shows it among the attempts exactly as an attempt row would be shown.
 */
import Database from 'better-sqlite3';
import { describe, it, expect, afterEach } from 'vitest';
import { SqliteStore } from '../../host/hooks/sqlite-store.js';
import { EventHooksStoreVersionError } from '../../host/errors.js';
import type { AttemptRecord, ClaimedDelivery, DeliveryOutcome, NewEvent } from '../../host/hooks/store.js';
import { tempDir } from './helpers.js';

const A = 'http://a.example';
let n = 0;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function file(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.db;
}

function open(path: string): SqliteStore {
  const s = new SqliteStore(path);
  cleanups.unshift(() => void s.close());
  return s;
}

function event(): NewEvent {
  n++;
  return {
    id: `evt_${n}`,
    source: 's',
    event: 'e',
    json: `{"n":${n}}`,
    plugin: null,
    occurredAtMs: 0,
    deliveries: [{ id: `msg_${n}`, hookId: 'h', origin: A }],
  };
}

function attempt(c: ClaimedDelivery, at: number, status: number | null, error: string | null = null): AttemptRecord {
  return { attempt: c.attempt, startedAtMs: at, durationMs: 7, status, error, response: status === null ? null : `r${status}`, webhookTimestamp: Math.floor(at / 1000), url: 'http://a.example/h' };
}

async function one(s: SqliteStore, now: number, outcomes: DeliveryOutcome[] = []): Promise<ClaimedDelivery | undefined> {
  return (await s.cycle(outcomes, [{ origin: A, limit: 1 }], now, now + 60_000, 'me')).claimed[0];
}

const view = (s: SqliteStore, id: string, now: number) => s.getDelivery('h', id, now);

describe('first successful attempt in the delivery row', () => {
  it('is listed with the attempts before it, in order, with every field; it writes no attempt row', async () => {
    const s = open(file());
    const e = event();
    await s.accept([e], [], 1000);
    const c1 = (await one(s, 1000))!;
    const c2 = (await one(s, 2000, [{ seq: c1.seq, kind: 'retry', nextAttemptAtMs: 1500, attempt: attempt(c1, 1000, 503, 'endpoint answered 503'), error: 'endpoint answered 503' }]))!;
    expect(c2.attempt).toBe(2);
    await s.cycle([{ seq: c2.seq, kind: 'succeeded', attempt: attempt(c2, 2000, 200) }], [], 2100, 62_100, 'me');
    const d = await view(s, e.deliveries[0]!.id, 2200);
    expect(d!.state).toBe('succeeded');
    expect(d!.attempt_count).toBe(2);
    expect(d!.last_status).toBe(200);
    expect(d!.attempts).toEqual([
      { attempt: 1, started_at_ms: 1000, duration_ms: 7, status: 503, error: 'endpoint answered 503', response: 'r503', webhook_timestamp: 1, url: 'http://a.example/h' },
      { attempt: 2, started_at_ms: 2000, duration_ms: 7, status: 200, error: null, response: 'r200', webhook_timestamp: 2, url: 'http://a.example/h' },
    ]);
    expect(s.db.prepare('SELECT COUNT(*) AS c FROM attempts').get()).toEqual({ c: 1 });
  });

  it('a success after a manual retry of a succeeded delivery goes to the attempts table; both are listed', async () => {
    const s = open(file());
    const e = event();
    await s.accept([e], [], 1000);
    const c1 = (await one(s, 1000))!;
    await s.cycle([{ seq: c1.seq, kind: 'succeeded', attempt: attempt(c1, 1000, 200) }], [], 1100, 61_100, 'me');
    expect(await s.retryDelivery('h', e.deliveries[0]!.id, 1200)).toBe('scheduled');
    const c2 = (await one(s, 1300))!;
    expect(c2.attempt).toBe(2);
    await s.cycle([{ seq: c2.seq, kind: 'succeeded', attempt: attempt(c2, 1300, 204) }], [], 1400, 61_400, 'me');
    const d = await view(s, e.deliveries[0]!.id, 1500);
    expect(d!.attempts.map((a) => [a.attempt, a.status])).toEqual([
      [1, 200],
      [2, 204],
    ]);
    expect(d!.last_status).toBe(204);
  });

  it('the log handler (no status, no URL) round-trips too', async () => {
    const s = open(file());
    const e = event();
    await s.accept([e], [], 1000);
    const c = (await one(s, 1000))!;
    const log: AttemptRecord = { attempt: 1, startedAtMs: 1000, durationMs: 0, status: null, error: null, response: null, webhookTimestamp: null, url: null };
    await s.cycle([{ seq: c.seq, kind: 'succeeded', attempt: log }], [], 1100, 61_100, 'me');
    expect((await view(s, e.deliveries[0]!.id, 1200))!.attempts).toEqual([
      { attempt: 1, started_at_ms: 1000, duration_ms: 0, status: null, error: null, response: null, webhook_timestamp: null, url: null },
    ]);
  });

  it('a schema 1 file is migrated: its deliveries and attempts stay listed, new successes go inline', async () => {
    const path = file();
    // Schema 1 as the previous release created it (the tables this change touches).
    const v1 = new Database(path);
    v1.exec(`
      CREATE TABLE deliveries (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, hook_id TEXT NOT NULL, event_id TEXT NOT NULL, source TEXT NOT NULL,
        event TEXT NOT NULL, data TEXT NOT NULL, plugin TEXT, occurred_at INTEGER NOT NULL, origin TEXT NOT NULL, state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, cycle_start INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER, last_status INTEGER,
        last_error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE attempts (delivery_seq INTEGER NOT NULL, attempt INTEGER NOT NULL, started_at INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL, status INTEGER, error TEXT, response TEXT, webhook_timestamp INTEGER, url TEXT,
        PRIMARY KEY (delivery_seq, attempt)) WITHOUT ROWID;
      INSERT INTO deliveries (seq, id, hook_id, event_id, source, event, data, origin, state, attempts, occurred_at, created_at, updated_at, last_status)
        VALUES (1, 'msg_old', 'h', 'evt_old', 's', 'e', '{}', '${A}', 'succeeded', 1, 0, 500, 600, 200);
      INSERT INTO attempts VALUES (1, 1, 500, 3, 200, NULL, 'ok', 0, 'http://a.example/h');
      INSERT INTO deliveries (seq, id, hook_id, event_id, source, event, data, origin, state, next_attempt_at, occurred_at, created_at, updated_at)
        VALUES (2, 'msg_pending', 'h', 'evt_p', 's', 'e', '{}', '${A}', 'pending', 900, 0, 900, 900);
    `);
    v1.pragma('user_version = 1');
    v1.close();

    const s = open(path);
    expect(s.db.pragma('user_version', { simple: true })).toBe(2);
    expect((await view(s, 'msg_old', 1000))!.attempts).toEqual([
      { attempt: 1, started_at_ms: 500, duration_ms: 3, status: 200, error: null, response: 'ok', webhook_timestamp: 0, url: 'http://a.example/h' },
    ]);
    const c = (await one(s, 1000))!;
    expect(c.id).toBe('msg_pending');
    await s.cycle([{ seq: c.seq, kind: 'succeeded', attempt: attempt(c, 1000, 200) }], [], 1100, 61_100, 'me');
    expect((await view(s, 'msg_pending', 1200))!.attempts.map((a) => a.status)).toEqual([200]);
    expect(s.db.prepare('SELECT COUNT(*) AS c FROM attempts').get()).toEqual({ c: 1 });
  });

  it('refuses a file written by a newer hookwire, with a typed error naming the file, and leaves it as it was', () => {
    const path = file();
    const newer = new Database(path);
    newer.exec('CREATE TABLE marker (x INTEGER)');
    newer.pragma('user_version = 99');
    newer.close();
    let caught: unknown;
    try {
      open(path);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EventHooksStoreVersionError);
    expect(caught).toMatchObject({ code: 'HW_ERR_EVENT_HOOKS_STORE_VERSION', file: path });
    expect((caught as Error).message).toContain('schema version 99');
    const after = new Database(path);
    expect(after.pragma('user_version', { simple: true })).toBe(99);
    after.close();
  });

  it('records no attempt for a delivery whose hook was deleted while it was in flight', async () => {
    const s = open(file());
    await s.accept([event(), event()], [], 1000);
    const c1 = (await one(s, 1000))!;
    const c2 = (await one(s, 1000))!;
    s.db.prepare("DELETE FROM deliveries WHERE hook_id = 'h'").run(); // what deleting the hook does to its deliveries
    await s.cycle(
      [
        { seq: c1.seq, kind: 'succeeded', attempt: attempt(c1, 1000, 200, 'late') }, // not inline (an error text): an attempt row
        { seq: c2.seq, kind: 'retry', nextAttemptAtMs: 5000, attempt: attempt(c2, 1000, 503, 'endpoint answered 503'), error: 'endpoint answered 503' },
      ],
      [],
      1100,
      61_100,
      'me',
    );
    expect(s.db.prepare('SELECT COUNT(*) AS c FROM attempts').get()).toEqual({ c: 0 });
  });
});
