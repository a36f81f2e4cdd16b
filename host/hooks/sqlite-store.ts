/**
 * The embedded store: one SQLite file (better-sqlite3, WAL). Every method
 * runs synchronously inside one transaction and returns a settled promise, so
 * "resolved" means "committed".
 *
 * Durability: WAL with `synchronous = NORMAL` (default) survives a process
 * crash (kill -9) with every committed transaction; a power loss may lose
 * the last ones. `synchronous: 'full'` fsyncs every commit and survives
 * power loss too, at a throughput cost.
 *
 * Leases: one dispatcher process owns the file's outbox at a time, through a
 * renewable lease row (`dispatch_lease`), and keeps the deliveries it has in
 * flight in memory. So a claim writes nothing per delivery; if the process
 * dies, its lease expires `leaseMs` after its last renewal and the next owner
 * finds the deliveries that were in flight still pending, and sends them
 * again with the same webhook-id. A second process on the same file waits
 * for the lease (it still accepts events; they wait in the outbox).
 *
 * Write cost per delivery: one row and three index entries at accept; at
 * completion one row update (leaving the due index), which for a first
 * success also holds the attempt (schema 2); other attempts are rows of
 * `attempts`. Delivery ids are monotonic ULIDs, so index inserts append.
 * Claims of deliveries this process accepted come from memory once the query
 * has caught up with them (outbox-tail.ts); otherwise a claim seeks past a
 * per-origin cursor instead of skipping the rows in flight (claimRows).
 */
import Database from 'better-sqlite3';
import { EventHooksStoreVersionError } from '../errors.js';
import { inputCopy } from '../input.js';
import { OutboxTails } from './outbox-tail.js';
import type { AttemptView, DeliveryView, EventHook, EventSpec } from './types.js';
import { attemptOf, deliveryViewOf, inlineAttemptOf, type AttemptRow, type DeliveryRow } from './rows.js';
import type {
  ClaimedDelivery,
  ClaimRequest,
  CycleResult,
  DeliveryOutcome,
  DeliveryPage,
  EventHookStore,
  HookPage,
  NewEvent,
  PublishedSource,
  StoredDeliveryState,
} from './store.js';

export interface SqliteStoreOptions {
  /** `normal` (default: crash-safe) or `full` (also power-loss-safe). */
  synchronous?: 'normal' | 'full';
}

/**
 * WAL pages between automatic checkpoints (SQLite's default: 1000). A
 * checkpoint runs inside the commit that crosses the mark, on the event loop:
 * it copies the pages back to the database file and fsyncs both files. The
 * outbox rewrites the same few pages over and over, so a larger WAL copies
 * far fewer pages per delivery and fsyncs ten times less often (at 1000,
 * checkpoints cost about a quarter of the delivery rate: docs/event-hooks.md
 * §9). The WAL file grows to about 40 MB.
 */
const WAL_AUTOCHECKPOINT_PAGES = 10_000;

/**
 * 1: the first schema. 2: a delivery row also holds its first successful
 * attempt (`ok_*`), so a delivery that succeeds costs one row update instead
 * of an attempt row and an update; later attempts stay in `attempts`.
 */
const SCHEMA_VERSION = 2;

/** The columns version 2 added to `deliveries` (the migration from 1 adds them). */
const INLINE_SUCCESS_COLUMNS = [
  ['ok_attempt', 'INTEGER'],
  ['ok_started_at', 'INTEGER'],
  ['ok_duration_ms', 'INTEGER'],
  ['ok_status', 'INTEGER'],
  ['ok_response', 'TEXT'],
  ['ok_webhook_timestamp', 'INTEGER'],
  ['ok_url', 'TEXT'],
] as const;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS event_hooks (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  source     TEXT NOT NULL,
  event      TEXT,
  handler    TEXT NOT NULL,
  on_change  INTEGER,
  snooze     INTEGER,
  enabled    INTEGER NOT NULL,
  config     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_sources (
  source     TEXT NOT NULL,
  event      TEXT NOT NULL,
  spec       TEXT NOT NULL,
  plugin     TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (source, event)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries (
  seq             INTEGER PRIMARY KEY,
  id              TEXT NOT NULL UNIQUE,
  hook_id         TEXT NOT NULL,
  event_id        TEXT NOT NULL,
  source          TEXT NOT NULL,
  event           TEXT NOT NULL,
  data            TEXT NOT NULL,
  plugin          TEXT,
  occurred_at     INTEGER NOT NULL,
  origin          TEXT NOT NULL,
  state           TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  cycle_start     INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  last_status     INTEGER,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
${INLINE_SUCCESS_COLUMNS.map(([name, type]) => `  ${name} ${type}`).join(',\n')}
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (origin, next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_hook ON deliveries (hook_id, seq);
CREATE TABLE IF NOT EXISTS attempts (
  delivery_seq      INTEGER NOT NULL,
  attempt           INTEGER NOT NULL,
  started_at        INTEGER NOT NULL,
  duration_ms       INTEGER NOT NULL,
  status            INTEGER,
  error             TEXT,
  response          TEXT,
  webhook_timestamp INTEGER,
  url               TEXT,
  PRIMARY KEY (delivery_seq, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dispatch_lease (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  owner      TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
`;

interface HookRow {
  seq: number;
  id: string;
  created_at: number;
  updated_at: number;
  source: string;
  event: string | null;
  handler: string;
  on_change: number | null;
  snooze: number | null;
  enabled: number;
  config: string;
}

const SWEEP_BATCH = 5_000;

function hookOf(r: HookRow): EventHook {
  return {
    id: r.id,
    created_at: r.created_at,
    updated_at: r.updated_at,
    source: r.source,
    event: r.event,
    handler: r.handler as EventHook['handler'],
    on_change: r.on_change === null ? null : r.on_change === 1,
    snooze: r.snooze,
    enabled: r.enabled === 1,
    // Null-prototype objects, as every value built from user input (host/input.ts).
    config: inputCopy(JSON.parse(r.config)) as EventHook['config'],
  };
}

function hookParams(h: EventHook): unknown[] {
  return [
    h.id,
    h.created_at,
    h.updated_at,
    h.source,
    h.event,
    h.handler,
    h.on_change === null ? null : h.on_change ? 1 : 0,
    h.snooze,
    h.enabled ? 1 : 0,
    JSON.stringify(h.config),
  ];
}

const DELIVERY_COLUMNS = `seq, id, hook_id, origin, state, attempts, cycle_start, next_attempt_at,
  last_status, last_error, created_at, updated_at, event_id, source, event, data,
  ${INLINE_SUCCESS_COLUMNS.map(([name]) => name).join(', ')}`;

/** Columns a claim reads, in this order (raw rows: arrays, cheaper than objects). */
const CLAIM_COLUMNS = 'seq, id, hook_id, origin, attempts, cycle_start, event_id, source, event, data, created_at, next_attempt_at';
type ClaimRow = [number, string, string, string, number, number, string, string, string, string, number, number];

/** A position in an origin's due index: (due time, seq). */
interface Cursor {
  at: number;
  seq: number;
  /** When the chain of cursor claims started (a full scan). */
  since: number;
}

/**
 * A cursor is a hint: at least this often an origin's claim scans from the
 * start, so a row that landed before the cursor unnoticed (e.g. accepted by
 * another process with an earlier clock reading) waits at most this long.
 */
const CURSOR_MAX_AGE_MS = 1000;

/** How often claims check whether another connection wrote to the file (SQLite's data_version). */
const FOREIGN_CHECK_MS = 10;

export class SqliteStore implements EventHookStore {
  readonly db: Database.Database;
  private readonly st: ReturnType<SqliteStore['prepare']>;
  private closed = false;
  /** Deliveries this process leased and has not completed (seq → origin). */
  private readonly inFlight = new Map<number, string>();
  private readonly inFlightByOrigin = new Map<string, number>();
  /** When this process's dispatch lease ends (0: not held). */
  private leaseEnds = 0;
  /**
   * Per origin: the due-index position of the last delivery leased here.
   * While set, every pending row before it is in flight here, so the next
   * claim seeks past it instead of skipping the rows in flight one by one.
   * Dropped whenever a row may land before it (hand-back, earlier due time,
   * manual retry, re-partitioning, deleted rows, lost lease) and whenever a
   * claim comes back short; a claim without a cursor scans from the start.
   */
  private readonly cursors = new Map<string, Cursor>();
  /** Deliveries accepted here that the next claims of their origin can take from memory (outbox-tail.ts). */
  private readonly tails = new OutboxTails();
  /** SQLite's data_version as last seen: it changes when another connection commits to the file. */
  private dataVersion: number;
  private foreignCheckedAt = -Infinity;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('temp_store = MEMORY');
    this.db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    try {
      this.migrate();
    } catch (err) {
      this.db.close(); // refused (a newer file) or failed: do not keep it open
      throw err;
    }
    this.st = this.prepare();
    this.dataVersion = this.st.dataVersion.get() as number;
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new EventHooksStoreVersionError(this.db.name, version, SCHEMA_VERSION);
    }
    this.db.transaction(() => {
      if (version === 1) {
        for (const [name, type] of INLINE_SUCCESS_COLUMNS) this.db.exec(`ALTER TABLE deliveries ADD COLUMN ${name} ${type}`);
      }
      this.db.exec(SCHEMA);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }

  private prepare() {
    const db = this.db;
    return {
      allHooks: db.prepare<[], HookRow>('SELECT * FROM event_hooks ORDER BY seq'),
      insertHook: db.prepare(
        `INSERT INTO event_hooks (id, created_at, updated_at, source, event, handler, on_change, snooze, enabled, config)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateHook: db.prepare(
        `UPDATE event_hooks SET created_at = ?, updated_at = ?, source = ?, event = ?, handler = ?, on_change = ?,
         snooze = ?, enabled = ?, config = ? WHERE id = ?`,
      ),
      deleteHookAttempts: db.prepare('DELETE FROM attempts WHERE delivery_seq IN (SELECT seq FROM deliveries WHERE hook_id = ?)'),
      deleteHookDeliveries: db.prepare('DELETE FROM deliveries WHERE hook_id = ?'),
      deleteHook: db.prepare('DELETE FROM event_hooks WHERE id = ?'),
      pageHooks: db.prepare<[number, number], HookRow>('SELECT * FROM event_hooks WHERE seq > ? ORDER BY seq LIMIT ?'),

      allSources: db.prepare<[], { source: string; event: string; spec: string; plugin: string | null }>(
        'SELECT source, event, spec, plugin FROM event_sources',
      ),
      upsertSource: db.prepare(
        `INSERT INTO event_sources (source, event, spec, plugin, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (source, event) DO UPDATE SET spec = excluded.spec, plugin = excluded.plugin, updated_at = excluded.updated_at`,
      ),

      insertDelivery: db.prepare(
        `INSERT INTO deliveries (id, hook_id, event_id, source, event, data, plugin, occurred_at, origin, state, next_attempt_at,
         created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
      ),
      dueOrigins: db.prepare<[], { origin: string; due: number }>(
        `SELECT origin, MIN(next_attempt_at) AS due FROM deliveries WHERE state = 'pending' GROUP BY origin`,
      ),
      nextDue: db.prepare<[string, string], { due: number | null }>(
        `SELECT MIN(next_attempt_at) AS due FROM deliveries WHERE state = 'pending' AND origin = ?
         AND seq NOT IN (SELECT value FROM json_each(?))`,
      ),
      nextDueBefore: db.prepare<[string, number, string], { due: number | null }>(
        `SELECT MIN(next_attempt_at) AS due FROM deliveries WHERE state = 'pending' AND origin = ? AND seq < ?
         AND seq NOT IN (SELECT value FROM json_each(?))`,
      ),
      due: db
        .prepare<[string, number, string, number], ClaimRow>(
          `SELECT ${CLAIM_COLUMNS} FROM deliveries
           WHERE state = 'pending' AND origin = ? AND next_attempt_at <= ? AND seq NOT IN (SELECT value FROM json_each(?))
           ORDER BY next_attempt_at LIMIT ?`,
        )
        .raw(true),
      // The cursor claim: rows due at the cursor's time after its seq, then rows due later (both index seeks).
      dueSame: db
        .prepare<[string, number, number, number], ClaimRow>(
          `SELECT ${CLAIM_COLUMNS} FROM deliveries
           WHERE state = 'pending' AND origin = ? AND next_attempt_at = ? AND seq > ? ORDER BY seq LIMIT ?`,
        )
        .raw(true),
      dueAfter: db
        .prepare<[string, number, number, number], ClaimRow>(
          `SELECT ${CLAIM_COLUMNS} FROM deliveries
           WHERE state = 'pending' AND origin = ? AND next_attempt_at > ? AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`,
        )
        .raw(true),
      insertAttempt: db.prepare(
        `INSERT OR REPLACE INTO attempts (delivery_seq, attempt, started_at, duration_ms, status, error, response, webhook_timestamp, url)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      succeedInline: db.prepare(
        `UPDATE deliveries SET state = 'succeeded', attempts = ?, next_attempt_at = NULL, last_status = ?, last_error = NULL,
         updated_at = ?, ok_attempt = ?, ok_started_at = ?, ok_duration_ms = ?, ok_status = ?, ok_response = ?,
         ok_webhook_timestamp = ?, ok_url = ? WHERE seq = ? AND ok_attempt IS NULL`,
      ),
      succeed: db.prepare(
        `UPDATE deliveries SET state = 'succeeded', attempts = ?, next_attempt_at = NULL, last_status = ?, last_error = NULL,
         updated_at = ? WHERE seq = ?`,
      ),
      drop: db.prepare(
        `UPDATE deliveries SET state = 'dropped', attempts = ?, next_attempt_at = NULL, last_status = NULL, last_error = NULL,
         updated_at = ? WHERE seq = ?`,
      ),
      retry: db.prepare(
        `UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, updated_at = ?
         WHERE seq = ? AND state = 'pending'`,
      ),
      fail: db.prepare(
        `UPDATE deliveries SET state = 'failed', attempts = ?, next_attempt_at = NULL, last_status = ?, last_error = ?,
         updated_at = ? WHERE seq = ?`,
      ),
      release: db.prepare(`UPDATE deliveries SET next_attempt_at = ? WHERE seq = ? AND state = 'pending'`),
      failUnattempted: db.prepare(
        `UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, last_error = ?, updated_at = ? WHERE seq = ?`,
      ),
      pendingOfHook: db.prepare<[string], { seq: number; data: string; source: string; event: string }>(
        `SELECT seq, data, source, event FROM deliveries WHERE hook_id = ? AND state = 'pending'`,
      ),
      setOrigin: db.prepare('UPDATE deliveries SET origin = ? WHERE seq = ?'),

      pageDeliveries: db.prepare<[string, number, number], DeliveryRow>(
        `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE hook_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
      ),
      pageAllDeliveries: db.prepare<[number, number], DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE seq < ? ORDER BY seq DESC LIMIT ?`),
      pageDeliveriesInState: db.prepare<[string, number, number], DeliveryRow>(
        `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE state = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
      ),
      oneDelivery: db.prepare<[string, string], DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE id = ? AND hook_id = ?`),
      attemptsOf: db.prepare<[string], AttemptRow>(
        `SELECT delivery_seq, attempt, started_at, duration_ms, status, error, response, webhook_timestamp, url FROM attempts
         WHERE delivery_seq IN (SELECT value FROM json_each(?)) ORDER BY delivery_seq, attempt`,
      ),
      rescheduleNow: db.prepare(`UPDATE deliveries SET next_attempt_at = @now, updated_at = @now WHERE seq = @seq`),
      restart: db.prepare(
        `UPDATE deliveries SET state = 'pending', cycle_start = attempts, next_attempt_at = @now, updated_at = @now WHERE seq = @seq`,
      ),

      lease: db.prepare<[], { owner: string; expires_at: number }>('SELECT owner, expires_at FROM dispatch_lease WHERE id = 1'),
      takeLease: db.prepare(
        `INSERT INTO dispatch_lease (id, owner, expires_at) VALUES (1, ?, ?)
         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`,
      ),

      firstSeq: db.prepare<[], { seq: number | null }>('SELECT MIN(seq) AS seq FROM deliveries'),
      lastSeq: db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM deliveries'),
      createdAtOrAfter: db.prepare<[number], { seq: number; created_at: number }>(
        'SELECT seq, created_at FROM deliveries WHERE seq >= ? ORDER BY seq LIMIT 1',
      ),
      oldFinished: db.prepare<[number, number], { seq: number }>(
        `SELECT seq FROM deliveries WHERE seq < ? AND state <> 'pending' AND updated_at < ? ORDER BY seq LIMIT ${SWEEP_BATCH}`,
      ),
      deleteAttemptsOf: db.prepare('DELETE FROM attempts WHERE delivery_seq = ?'),
      deleteDelivery: db.prepare('DELETE FROM deliveries WHERE seq = ?'),
      countPending: db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'`),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
    };
  }

  async init(): Promise<void> {
    // The constructor already created or migrated the schema.
  }

  async loadHooks(): Promise<EventHook[]> {
    return this.st.allHooks.all().map(hookOf);
  }

  async insertHook(hook: EventHook): Promise<void> {
    this.st.insertHook.run(...hookParams(hook));
  }

  async updateHook(hook: EventHook): Promise<void> {
    const [id, ...rest] = hookParams(hook);
    this.st.updateHook.run(...rest, id);
  }

  private readonly deleteHookTx = (id: string): boolean => {
    // A deleted last row frees its seq for reuse: positions are no longer reliable.
    this.cursors.clear();
    this.tails.clear();
    this.st.deleteHookAttempts.run(id);
    this.st.deleteHookDeliveries.run(id);
    return this.st.deleteHook.run(id).changes > 0;
  };

  async deleteHook(id: string): Promise<boolean> {
    return this.db.transaction(this.deleteHookTx)(id);
  }

  async listHooks(size: number, after: number | null): Promise<HookPage> {
    const rows = this.st.pageHooks.all(after ?? 0, size + 1);
    const more = rows.length > size;
    const page = more ? rows.slice(0, size) : rows;
    return { hooks: page.map(hookOf), next: more ? page[page.length - 1]!.seq : null };
  }

  async loadSources(): Promise<PublishedSource[]> {
    return this.st.allSources.all().map((r) => ({
      source: r.source,
      event: r.event,
      spec: JSON.parse(r.spec) as EventSpec,
      plugin: r.plugin,
    }));
  }

  private readonly acceptTx = (events: readonly NewEvent[], published: readonly PublishedSource[], now: number): ClaimedDelivery[] | null => {
    for (const p of published) this.st.upsertSource.run(p.source, p.event, JSON.stringify(p.spec), p.plugin, now);
    // Deliveries for origins whose claims are served from memory (appended once committed).
    let tailed: ClaimedDelivery[] | null = null;
    for (const e of events) {
      for (const d of e.deliveries) {
        const seq = Number(
          this.st.insertDelivery.run(d.id, d.hookId, e.id, e.source, e.event, e.json, e.plugin, e.occurredAtMs, d.origin, now, now, now)
            .lastInsertRowid,
        );
        // Due now: after any cursor, unless the clock stepped back.
        if (this.cursors.size > 0) this.behind(d.origin, now);
        if (this.tails.size > 0 && this.tails.has(d.origin)) {
          (tailed ??= []).push({
            seq,
            id: d.id,
            hookId: d.hookId,
            origin: d.origin,
            attempt: 1,
            cycleStart: 0,
            eventId: e.id,
            source: e.source,
            event: e.event,
            json: e.json,
            createdAtMs: now,
          });
        }
      }
    }
    return tailed;
  };

  async accept(events: readonly NewEvent[], published: readonly PublishedSource[], nowMs: number): Promise<void> {
    const tailed = this.db.transaction(this.acceptTx)(events, published, nowMs);
    if (tailed !== null) for (const d of tailed) this.tails.append(d, nowMs);
  }

  async dueOrigins(): Promise<Map<string, number>> {
    return new Map(this.st.dueOrigins.all().map((r) => [r.origin, r.due]));
  }

  /** Takes or renews the dispatch lease: null when held, else when the other owner's lease ends. */
  private holdLease(now: number, leaseUntil: number, owner: string): number | null {
    if (this.leaseFresh(now, leaseUntil)) return null;
    const cur = this.st.lease.get();
    if (cur && cur.owner !== owner && cur.expires_at > now) {
      // Another process dispatches from this file (or died less than a lease ago).
      if (this.leaseEnds > 0) this.dropInFlight();
      this.leaseEnds = 0;
      return cur.expires_at;
    }
    this.st.takeLease.run(owner, leaseUntil);
    this.leaseEnds = leaseUntil;
    return null;
  }

  /** Held, and less than a third of it gone: renewing it would be one write every few seconds, not per cycle. */
  private leaseFresh(now: number, leaseUntil: number): boolean {
    return this.leaseEnds - now > (2 * (leaseUntil - now)) / 3;
  }

  /** Losing the lease: whatever this process had in flight may now be sent by the new owner. */
  private dropInFlight(): void {
    this.inFlight.clear();
    this.inFlightByOrigin.clear();
    this.cursors.clear();
    this.tails.clear();
  }

  /** Another connection (another process) committed to the file: what is in memory may no longer be all there is. */
  private checkForeignWrites(now: number): void {
    // At most every FOREIGN_CHECK_MS: a delivery written by another process waits at most that long to be noticed.
    if (now - this.foreignCheckedAt < FOREIGN_CHECK_MS && now >= this.foreignCheckedAt) return;
    this.foreignCheckedAt = now;
    const v = this.st.dataVersion.get() as number;
    if (v === this.dataVersion) return;
    this.dataVersion = v;
    this.tails.clear();
  }

  /** A pending row of `origin` is now due at `at`: the origin's cursor goes if the row may sit before it. */
  private behind(origin: string, at: number): void {
    const c = this.cursors.get(origin);
    if (c !== undefined && at <= c.at) this.cursors.delete(origin);
  }

  /** Up to `limit` due rows of `origin` not in flight here, oldest due first. */
  private claimRows(origin: string, now: number, limit: number): ClaimRow[] {
    const cur = this.cursors.get(origin);
    if (cur !== undefined && now >= cur.at && now - cur.since < CURSOR_MAX_AGE_MS) {
      let rows = this.st.dueSame.all(origin, cur.at, cur.seq, limit);
      if (rows.length < limit) {
        const more = this.st.dueAfter.all(origin, cur.at, now, limit - rows.length);
        rows = rows.length === 0 ? more : rows.concat(more);
      }
      // A full batch with nothing in flight: the common case under a backlog. Otherwise scan from the start.
      if (rows.length === limit && !rows.some((r) => this.inFlight.has(r[0]))) return rows;
    }
    // Rows in flight here are still pending in the table: the query skips them (by rowid, in the index).
    this.cursors.delete(origin);
    return this.st.due.all(origin, now, this.busyList(origin), limit);
  }

  private landed(seq: number): void {
    const origin = this.inFlight.get(seq);
    if (origin === undefined) return;
    this.inFlight.delete(seq);
    const n = (this.inFlightByOrigin.get(origin) ?? 1) - 1;
    if (n > 0) this.inFlightByOrigin.set(origin, n);
    else this.inFlightByOrigin.delete(origin);
  }

  private readonly cycleTx = (
    outcomes: readonly DeliveryOutcome[],
    requests: readonly ClaimRequest[],
    now: number,
    leaseUntil: number,
    owner: string,
  ): CycleResult => {
    for (const o of outcomes) {
      if (o.kind === 'retry') {
        const origin = this.inFlight.get(o.seq);
        if (origin === undefined) {
          this.cursors.clear();
          this.tails.clear();
        } else {
          if (this.cursors.size > 0) this.behind(origin, o.nextAttemptAtMs);
          this.tails.blockAt(origin, o.nextAttemptAtMs);
        }
      }
      this.landed(o.seq);
      const status = o.attempt?.status ?? null;
      if (o.kind === 'retry' && !o.attempt) {
        // Handed back unattempted.
        this.st.release.run(o.nextAttemptAtMs, o.seq);
        continue;
      }
      const a = o.attempt;
      // A first success lives in the delivery row: one update (when the row already has one, as below).
      if (o.kind === 'succeeded' && o.attempt.error === null) {
        const ok = o.attempt;
        const inline = this.st.succeedInline.run(
          ok.attempt,
          status,
          now,
          ok.attempt,
          ok.startedAtMs,
          ok.durationMs,
          ok.status,
          ok.response,
          ok.webhookTimestamp,
          ok.url,
          o.seq,
        );
        if (inline.changes > 0) continue;
      }
      const attempts = a ? a.attempt : 0;
      let changed: number;
      if (o.kind === 'succeeded') changed = this.st.succeed.run(attempts, status, now, o.seq).changes;
      else if (o.kind === 'dropped') changed = this.st.drop.run(attempts, now, o.seq).changes;
      else if (o.kind === 'retry') changed = this.st.retry.run(attempts, o.nextAttemptAtMs, status, o.error, now, o.seq).changes;
      else if (a) changed = this.st.fail.run(attempts, status, o.error, now, o.seq).changes;
      else changed = this.st.failUnattempted.run(o.error, now, o.seq).changes;
      // The delivery may be gone (its hook was deleted while the attempt ran): no orphan attempt row then.
      if (a && changed > 0) this.st.insertAttempt.run(o.seq, a.attempt, a.startedAtMs, a.durationMs, a.status, a.error, a.response, a.webhookTimestamp, a.url);
    }
    const claimed: ClaimedDelivery[] = [];
    const nextDue = new Map<string, number | null>();
    if (requests.length === 0) return { claimed, nextDue };
    const blockedUntil = this.holdLease(now, leaseUntil, owner);
    if (blockedUntil !== null) {
      // Another owner holds the outbox: try again when its lease ends.
      for (const req of requests) nextDue.set(req.origin, blockedUntil);
      return { claimed, nextDue };
    }
    for (const req of requests) {
      if (this.takeFromTail(req, now, claimed, nextDue)) continue;
      const rows = this.claimRows(req.origin, now, req.limit);
      for (const [seq, id, hookId, origin, attempts, cycleStart, eventId, source, event, json, createdAtMs] of rows) {
        this.inFlight.set(seq, origin);
        claimed.push({ seq, id, hookId, origin, attempt: attempts + 1, cycleStart, eventId, source, event, json, createdAtMs });
      }
      if (rows.length > 0) this.inFlightByOrigin.set(req.origin, (this.inFlightByOrigin.get(req.origin) ?? 0) + rows.length);
      // From now on keep what this process accepts for the origin; once the query reaches it, claims come from memory.
      this.tails.track(req.origin);
      const reachedTail = this.tails.leasedByQuery(req.origin, (seq) => this.inFlight.has(seq));
      if (rows.length < req.limit) {
        this.cursors.delete(req.origin);
        const due = this.st.nextDue.get(req.origin, this.busyList(req.origin))?.due ?? null;
        nextDue.set(req.origin, due);
        // Everything due is in flight here.
        this.tails.ready(req.origin, due ?? Infinity);
      } else {
        if (reachedTail) {
          // Everything queued before the kept deliveries is in flight here, except what is due later.
          const first = this.tails.firstSeq(req.origin);
          const busy = this.busyList(req.origin);
          const other = first === null ? this.st.nextDue.get(req.origin, busy) : this.st.nextDueBefore.get(req.origin, first, busy);
          this.tails.ready(req.origin, other?.due ?? Infinity);
        }
        const last = rows[rows.length - 1]!;
        const cur = this.cursors.get(req.origin);
        if (cur) {
          cur.at = last[11];
          cur.seq = last[0];
        } else this.cursors.set(req.origin, { at: last[11], seq: last[0], since: now });
      }
    }
    return { claimed, nextDue };
  };

  /** Serves a claim from the origin's tail in memory; false when it cannot (the claim must query). */
  private takeFromTail(req: ClaimRequest, now: number, claimed: ClaimedDelivery[], nextDue: Map<string, number | null>): boolean {
    const got = this.tails.take(req.origin, now, req.limit);
    if (got === null) return false;
    // The tail moves past the cursor's position: claims that query again scan from the start.
    this.cursors.delete(req.origin);
    for (const d of got.rows) {
      this.inFlight.set(d.seq, d.origin);
      claimed.push(d);
    }
    if (got.rows.length > 0) this.inFlightByOrigin.set(req.origin, (this.inFlightByOrigin.get(req.origin) ?? 0) + got.rows.length);
    if (got.rows.length < req.limit) nextDue.set(req.origin, got.nextDue);
    return true;
  }

  /** The seqs in flight here for `origin`, as a JSON list (for json_each). */
  private busyList(origin: string): string {
    if (!this.inFlightByOrigin.has(origin)) return '[]';
    const seqs: number[] = [];
    for (const [seq, o] of this.inFlight) if (o === origin) seqs.push(seq);
    return JSON.stringify(seqs);
  }

  async cycle(
    outcomes: readonly DeliveryOutcome[],
    requests: readonly ClaimRequest[],
    nowMs: number,
    leaseUntilMs: number,
    owner: string,
  ): Promise<CycleResult> {
    if (outcomes.length === 0 && requests.length === 0) return { claimed: [], nextDue: new Map() };
    this.checkForeignWrites(nowMs);
    if (outcomes.length === 0 && this.leaseFresh(nowMs, leaseUntilMs) && requests.every((r) => this.tails.serves(r.origin, nowMs))) {
      // Nothing to write and every claim answered from memory: no transaction at all.
      const claimed: ClaimedDelivery[] = [];
      const nextDue = new Map<string, number | null>();
      for (const req of requests) this.takeFromTail(req, nowMs, claimed, nextDue);
      return { claimed, nextDue };
    }
    return this.db.transaction(this.cycleTx).immediate(outcomes, requests, nowMs, leaseUntilMs, owner);
  }

  async reassignOrigins(hookId: string, originOf: (json: string, source: string, event: string) => string): Promise<void> {
    this.cursors.clear();
    this.tails.clear();
    this.db.transaction(() => {
      for (const r of this.st.pendingOfHook.all(hookId)) {
        if (!this.inFlight.has(r.seq)) this.st.setOrigin.run(originOf(r.data, r.source, r.event), r.seq);
      }
    })();
  }

  private views(rows: DeliveryRow[], now: number): DeliveryView[] {
    if (rows.length === 0) return [];
    const attempts = new Map<number, AttemptView[]>();
    for (const a of this.st.attemptsOf.all(JSON.stringify(rows.map((r) => r.seq)))) {
      let list = attempts.get(a.delivery_seq);
      if (!list) attempts.set(a.delivery_seq, (list = []));
      list.push(attemptOf(a));
    }
    for (const r of rows) {
      const inline = inlineAttemptOf(r);
      if (inline === null) continue;
      let list = attempts.get(r.seq);
      if (!list) attempts.set(r.seq, (list = []));
      list.push(inline);
      list.sort((x, y) => x.attempt - y.attempt);
    }
    return rows.map((r) => {
      const leased = r.state === 'pending' && this.inFlight.has(r.seq);
      return deliveryViewOf(r, leased, attempts.get(r.seq) ?? []);
    });
  }

  async listDeliveries(hookId: string, size: number, before: number | null, nowMs: number): Promise<DeliveryPage> {
    const rows = this.st.pageDeliveries.all(hookId, before ?? Number.MAX_SAFE_INTEGER, size + 1);
    const more = rows.length > size;
    const page = more ? rows.slice(0, size) : rows;
    return { deliveries: this.views(page, nowMs), next: more ? page[page.length - 1]!.seq : null };
  }

  async listAllDeliveries(state: StoredDeliveryState | null, size: number, before: number | null, nowMs: number): Promise<DeliveryPage> {
    const below = before ?? Number.MAX_SAFE_INTEGER;
    const rows = state === null ? this.st.pageAllDeliveries.all(below, size + 1) : this.st.pageDeliveriesInState.all(state, below, size + 1);
    const more = rows.length > size;
    const page = more ? rows.slice(0, size) : rows;
    return { deliveries: this.views(page, nowMs), next: more ? page[page.length - 1]!.seq : null };
  }

  async getDelivery(hookId: string, deliveryId: string, nowMs: number): Promise<DeliveryView | null> {
    const row = this.st.oneDelivery.get(deliveryId, hookId);
    return row ? this.views([row], nowMs)[0]! : null;
  }

  async retryDelivery(hookId: string, deliveryId: string, nowMs: number): Promise<'scheduled' | 'in_flight' | null> {
    return this.db.transaction((): 'scheduled' | 'in_flight' | null => {
      const row = this.st.oneDelivery.get(deliveryId, hookId);
      if (!row) return null;
      if (row.state === 'pending') {
        if (this.inFlight.has(row.seq)) return 'in_flight';
        this.st.rescheduleNow.run({ now: nowMs, seq: row.seq });
      } else {
        this.st.restart.run({ now: nowMs, seq: row.seq });
      }
      this.cursors.delete(row.origin);
      this.tails.drop(row.origin);
      return 'scheduled';
    }).immediate();
  }

  /**
   * The first seq created at or after `beforeMs` (rows are created in seq
   * order, so everything below it is older): a binary search over the rowid,
   * no index on time needed.
   */
  private boundary(beforeMs: number): number {
    let lo = this.st.firstSeq.get()?.seq ?? null;
    const last = this.st.lastSeq.get()?.seq ?? null;
    if (lo === null || last === null) return 0;
    let hi = last + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const r = this.st.createdAtOrAfter.get(mid);
      if (!r || r.created_at >= beforeMs) hi = mid;
      else lo = r.seq + 1;
    }
    return lo;
  }

  /**
   * Deletes finished deliveries (and their attempts) not updated since
   * `beforeMs`. The attempts of a delivery still pending stay with it until
   * it finishes.
   */
  async sweep(beforeMs: number): Promise<number> {
    let total = 0;
    while (!this.closed) {
      const n = this.db.transaction(() => {
        const rows = this.st.oldFinished.all(this.boundary(beforeMs), beforeMs);
        let c = 0;
        for (const r of rows) c += this.st.deleteAttemptsOf.run(r.seq).changes + this.st.deleteDelivery.run(r.seq).changes;
        return rows.length === 0 ? -1 : c;
      })();
      if (n < 0) break;
      total += n;
      // Give the event loop a turn between batches.
      await new Promise((r) => setImmediate(r));
    }
    return total;
  }

  async counts(): Promise<{ pending: number }> {
    return { pending: this.st.countPending.get()?.n ?? 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Hand the lease back so a successor does not wait for it to expire.
    if (this.leaseEnds > 0 && this.inFlight.size === 0) this.db.prepare('DELETE FROM dispatch_lease WHERE expires_at = ?').run(this.leaseEnds);
    this.db.close();
  }
}
