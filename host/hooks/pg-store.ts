/**
 * The event-hooks store on PostgreSQL (`storage.kind: postgres`): hooks,
 * published sources, the outbox of deliveries and their attempts, shared by
 * every node of a cluster.
 *
 * Claims: every node's dispatcher leases due deliveries with
 * `FOR UPDATE SKIP LOCKED` (two nodes never lease the same row at once) by
 * pushing the row's due time to the end of the lease and naming itself in
 * `lease_owner`. An outcome clears the lease. If a node dies mid-attempt,
 * its rows become due again when their lease runs out and another node
 * sends them, with the same delivery id (`webhook-id`): at least once,
 * never lost. Unlike the SQLite store (one dispatcher per file, claims from
 * memory), nothing about leases is kept in memory: the table is the truth.
 *
 * Changes of hooks and published sources notify CHANGE_CHANNEL (payload
 * `hooks`), so every node's service reloads its hook list (`watch`).
 *
 * on_change / snooze: `admitThrottled` keeps the last digest and firing time
 * per (hook, source, event) in `hookwire_throttle`, so the verdict holds
 * across nodes (one row lock per decision).
 */
import pg from 'pg';
import { redactUrl } from '../errors.js';
import { inputCopy } from '../input.js';
import { ChangeWatch, CHANGE_CHANNEL, createPool, DEFAULT_POOL, migrate, transaction, type PgPoolSettings } from '../postgres.js';
import type { AttemptView, DeliveryView, EventHook, EventSpec } from './types.js';
import { attemptOf, deliveryViewOf, inlineAttemptOf, type AttemptRow, type DeliveryRow as SharedDeliveryRow } from './rows.js';
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
  ThrottleDecision,
} from './store.js';

/** Forward-only migrations of component `event_hooks`; index + 1 is the version each leads to. */
export const PG_EVENT_HOOKS_MIGRATIONS: readonly string[] = [
  `CREATE TABLE hookwire_event_hooks (
     seq        BIGSERIAL PRIMARY KEY,
     id         TEXT NOT NULL UNIQUE,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     source     TEXT NOT NULL,
     event      TEXT,
     handler    TEXT NOT NULL,
     on_change  BOOLEAN,
     snooze     INTEGER,
     enabled    BOOLEAN NOT NULL,
     config     TEXT NOT NULL
   );
   CREATE TABLE hookwire_event_sources (
     source     TEXT NOT NULL,
     event      TEXT NOT NULL,
     spec       TEXT NOT NULL,
     plugin     TEXT,
     updated_at BIGINT NOT NULL,
     PRIMARY KEY (source, event)
   );
   CREATE TABLE hookwire_deliveries (
     seq                  BIGSERIAL PRIMARY KEY,
     id                   TEXT NOT NULL UNIQUE,
     hook_id              TEXT NOT NULL,
     event_id             TEXT NOT NULL,
     source               TEXT NOT NULL,
     event                TEXT NOT NULL,
     data                 TEXT NOT NULL,
     plugin               TEXT,
     occurred_at          BIGINT NOT NULL,
     origin               TEXT NOT NULL,
     state                TEXT NOT NULL,
     attempts             INTEGER NOT NULL DEFAULT 0,
     cycle_start          INTEGER NOT NULL DEFAULT 0,
     next_attempt_at      BIGINT,
     lease_owner          TEXT,
     last_status          INTEGER,
     last_error           TEXT,
     created_at           BIGINT NOT NULL,
     updated_at           BIGINT NOT NULL,
     ok_attempt           INTEGER,
     ok_started_at        BIGINT,
     ok_duration_ms       BIGINT,
     ok_status            INTEGER,
     ok_response          TEXT,
     ok_webhook_timestamp BIGINT,
     ok_url               TEXT
   );
   CREATE INDEX hookwire_deliveries_due ON hookwire_deliveries (origin, next_attempt_at, seq) WHERE state = 'pending';
   CREATE INDEX hookwire_deliveries_hook ON hookwire_deliveries (hook_id, seq);
   CREATE TABLE hookwire_attempts (
     delivery_seq      BIGINT NOT NULL,
     attempt           INTEGER NOT NULL,
     started_at        BIGINT NOT NULL,
     duration_ms       BIGINT NOT NULL,
     status            INTEGER,
     error             TEXT,
     response          TEXT,
     webhook_timestamp BIGINT,
     url               TEXT,
     PRIMARY KEY (delivery_seq, attempt)
   )`,
  // 2: on_change / snooze verdicts shared by every node.
  `CREATE TABLE hookwire_throttle (
     hook_id  TEXT NOT NULL,
     key      TEXT NOT NULL,
     digest   TEXT NOT NULL,
     fired_at BIGINT NOT NULL,
     PRIMARY KEY (hook_id, key)
   )`,
];

/** The NOTIFY payload of a change of hooks or published sources. */
export const HOOKS_CHANGED = 'hooks';

const SWEEP_BATCH = 5_000;

export interface PgEventHookStoreOptions {
  pool?: PgPoolSettings;
  /** How often `watch` checks for hook changes when no notification came (ms). */
  pollIntervalMs?: number;
}

interface HookRow {
  seq: number;
  id: string;
  created_at: number;
  updated_at: number;
  source: string;
  event: string | null;
  handler: string;
  on_change: boolean | null;
  snooze: number | null;
  enabled: boolean;
  config: string;
}

interface DeliveryRow extends SharedDeliveryRow {
  lease_owner: string | null;
}

function hookOf(r: HookRow): EventHook {
  return {
    id: r.id,
    created_at: r.created_at,
    updated_at: r.updated_at,
    source: r.source,
    event: r.event,
    handler: r.handler as EventHook['handler'],
    on_change: r.on_change,
    snooze: r.snooze,
    enabled: r.enabled,
    // Null-prototype objects, as every value built from user input (host/input.ts).
    config: inputCopy(JSON.parse(r.config)) as EventHook['config'],
  };
}

function hookParams(h: EventHook): unknown[] {
  return [h.id, h.created_at, h.updated_at, h.source, h.event, h.handler, h.on_change, h.snooze, h.enabled, JSON.stringify(h.config)];
}

const DELIVERY_COLUMNS = `seq, id, hook_id, origin, state, attempts, cycle_start, next_attempt_at, lease_owner,
  last_status, last_error, created_at, updated_at, event_id, source, event, data,
  ok_attempt, ok_started_at, ok_duration_ms, ok_status, ok_response, ok_webhook_timestamp, ok_url`;

const HOOK_COLUMNS = 'seq, id, created_at, updated_at, source, event, handler, on_change, snooze, enabled, config';

export class PgEventHookStore implements EventHookStore {
  /** The connection URL without its password (messages). */
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly pollIntervalMs: number;
  private watcher: ChangeWatch | null = null;
  private initialized: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly url: string,
    options: PgEventHookStoreOptions = {},
  ) {
    this.location = redactUrl(url);
    this.pool = createPool(url, options.pool ?? DEFAULT_POOL);
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
  }

  /** Creates or migrates the schema (a newer one is refused: HW_ERR_POSTGRES_STORE_VERSION). */
  init(): Promise<void> {
    this.initialized ??= migrate(this.pool, this.url, 'event_hooks', PG_EVENT_HOOKS_MIGRATIONS);
    return this.initialized;
  }

  private tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return transaction(this.pool, this.url, fn);
  }

  // ---- hooks ----

  async loadHooks(): Promise<EventHook[]> {
    const r = await this.pool.query<HookRow>(`SELECT ${HOOK_COLUMNS} FROM hookwire_event_hooks ORDER BY seq`);
    return r.rows.map(hookOf);
  }

  async insertHook(hook: EventHook): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        `INSERT INTO hookwire_event_hooks (id, created_at, updated_at, source, event, handler, on_change, snooze, enabled, config)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        hookParams(hook),
      );
      await this.notifyHooks(c);
    });
  }

  async updateHook(hook: EventHook): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        `UPDATE hookwire_event_hooks SET created_at = $2, updated_at = $3, source = $4, event = $5, handler = $6, on_change = $7,
         snooze = $8, enabled = $9, config = $10 WHERE id = $1`,
        hookParams(hook),
      );
      await this.notifyHooks(c);
    });
  }

  async deleteHook(id: string): Promise<boolean> {
    return this.tx(async (c) => {
      await c.query('DELETE FROM hookwire_attempts WHERE delivery_seq IN (SELECT seq FROM hookwire_deliveries WHERE hook_id = $1)', [id]);
      await c.query('DELETE FROM hookwire_deliveries WHERE hook_id = $1', [id]);
      await c.query('DELETE FROM hookwire_throttle WHERE hook_id = $1', [id]);
      const r = await c.query('DELETE FROM hookwire_event_hooks WHERE id = $1', [id]);
      await this.notifyHooks(c);
      return (r.rowCount ?? 0) > 0;
    });
  }

  private async notifyHooks(c: pg.PoolClient): Promise<void> {
    await c.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, HOOKS_CHANGED]);
  }

  async listHooks(size: number, after: number | null): Promise<HookPage> {
    const r = await this.pool.query<HookRow>(`SELECT ${HOOK_COLUMNS} FROM hookwire_event_hooks WHERE seq > $1 ORDER BY seq LIMIT $2`, [
      after ?? 0,
      size + 1,
    ]);
    const more = r.rows.length > size;
    const page = more ? r.rows.slice(0, size) : r.rows;
    return { hooks: page.map(hookOf), next: more ? page[page.length - 1]!.seq : null };
  }

  async loadSources(): Promise<PublishedSource[]> {
    const r = await this.pool.query<{ source: string; event: string; spec: string; plugin: string | null }>(
      'SELECT source, event, spec, plugin FROM hookwire_event_sources',
    );
    return r.rows.map((row) => ({ source: row.source, event: row.event, spec: JSON.parse(row.spec) as EventSpec, plugin: row.plugin }));
  }

  /**
   * Calls `changed` when another node changed the hooks or published sources
   * (NOTIFY, and a poll of a fingerprint of both tables as a fallback).
   */
  async watch(changed: () => void): Promise<void> {
    if (this.watcher || this.closed) return;
    const watcher = await ChangeWatch.start(this.url, HOOKS_CHANGED, () => this.fingerprint(), this.pollIntervalMs, changed);
    // Closed while the feed was starting: stop it now rather than leak its connection.
    if (this.closed || this.watcher) await watcher.close();
    else this.watcher = watcher;
  }

  /** What changes when a hook or a published source does: counts and the newest update times. */
  private async fingerprint(): Promise<string> {
    const r = await this.pool.query<{ f: string }>(
      `SELECT concat_ws(':', (SELECT count(*) FROM hookwire_event_hooks), (SELECT max(updated_at) FROM hookwire_event_hooks),
         (SELECT max(seq) FROM hookwire_event_hooks), (SELECT count(*) FROM hookwire_event_sources),
         (SELECT max(updated_at) FROM hookwire_event_sources)) AS f`,
    );
    return r.rows[0]!.f;
  }

  // ---- the outbox ----

  async accept(events: readonly NewEvent[], published: readonly PublishedSource[], nowMs: number): Promise<void> {
    const cols = {
      id: [] as string[],
      hook: [] as string[],
      eventId: [] as string[],
      source: [] as string[],
      event: [] as string[],
      data: [] as string[],
      plugin: [] as (string | null)[],
      occurred: [] as number[],
      origin: [] as string[],
    };
    for (const e of events) {
      for (const d of e.deliveries) {
        cols.id.push(d.id);
        cols.hook.push(d.hookId);
        cols.eventId.push(e.id);
        cols.source.push(e.source);
        cols.event.push(e.event);
        cols.data.push(e.json);
        cols.plugin.push(e.plugin);
        cols.occurred.push(e.occurredAtMs);
        cols.origin.push(d.origin);
      }
    }
    await this.tx(async (c) => {
      for (const p of published) {
        await c.query(
          `INSERT INTO hookwire_event_sources (source, event, spec, plugin, updated_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (source, event) DO UPDATE SET spec = excluded.spec, plugin = excluded.plugin, updated_at = excluded.updated_at`,
          [p.source, p.event, JSON.stringify(p.spec), p.plugin, nowMs],
        );
      }
      if (published.length > 0) await this.notifyHooks(c);
      if (cols.id.length === 0) return;
      // One statement for the whole batch; WITH ORDINALITY keeps the batch's order in the seqs.
      await c.query(
        `INSERT INTO hookwire_deliveries (id, hook_id, event_id, source, event, data, plugin, occurred_at, origin, state,
           next_attempt_at, created_at, updated_at)
         SELECT id, hook_id, event_id, source, event, data, plugin, occurred_at, origin, 'pending', $10, $10, $10
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])
           WITH ORDINALITY AS u(id, hook_id, event_id, source, event, data, plugin, occurred_at, origin, n)
         ORDER BY n`,
        [cols.id, cols.hook, cols.eventId, cols.source, cols.event, cols.data, cols.plugin, cols.occurred, cols.origin, nowMs],
      );
    });
  }

  async dueOrigins(): Promise<Map<string, number>> {
    const r = await this.pool.query<{ origin: string; due: number }>(
      `SELECT origin, MIN(next_attempt_at) AS due FROM hookwire_deliveries WHERE state = 'pending' GROUP BY origin`,
    );
    return new Map(r.rows.map((row) => [row.origin, row.due]));
  }

  async cycle(
    outcomes: readonly DeliveryOutcome[],
    requests: readonly ClaimRequest[],
    nowMs: number,
    leaseUntilMs: number,
    owner: string,
  ): Promise<CycleResult> {
    const claimed: ClaimedDelivery[] = [];
    const nextDue = new Map<string, number | null>();
    if (outcomes.length === 0 && requests.length === 0) return { claimed, nextDue };
    await this.tx(async (c) => {
      await this.record(c, outcomes, nowMs);
      for (const req of requests) {
        // SKIP LOCKED: a row another node is leasing right now is passed over, never waited for.
        const r = await c.query<{
          seq: number;
          id: string;
          hook_id: string;
          origin: string;
          attempts: number;
          cycle_start: number;
          event_id: string;
          source: string;
          event: string;
          data: string;
          created_at: number;
          due: number;
        }>(
          `UPDATE hookwire_deliveries d SET next_attempt_at = $4, lease_owner = $5
           FROM (SELECT seq, next_attempt_at AS due FROM hookwire_deliveries
                 WHERE state = 'pending' AND origin = $1 AND next_attempt_at <= $2
                 ORDER BY next_attempt_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED) c
           WHERE d.seq = c.seq
           RETURNING d.seq, d.id, d.hook_id, d.origin, d.attempts, d.cycle_start, d.event_id, d.source, d.event, d.data, d.created_at, c.due`,
          [req.origin, nowMs, req.limit, leaseUntilMs, owner],
        );
        const rows = r.rows.sort((a, b) => a.due - b.due || a.seq - b.seq);
        for (const row of rows) {
          claimed.push({
            seq: row.seq,
            id: row.id,
            hookId: row.hook_id,
            origin: row.origin,
            attempt: row.attempts + 1,
            cycleStart: row.cycle_start,
            eventId: row.event_id,
            source: row.source,
            event: row.event,
            json: row.data,
            createdAtMs: row.created_at,
          });
        }
        if (rows.length < req.limit) {
          // This node's own running leases are not "due": it reports their outcomes itself. Other nodes' count (they may die).
          const n = await c.query<{ due: number | null }>(
            `SELECT MIN(next_attempt_at) AS due FROM hookwire_deliveries WHERE state = 'pending' AND origin = $1
             AND NOT (COALESCE(lease_owner = $2, false) AND next_attempt_at > $3)`,
            [req.origin, owner, nowMs],
          );
          nextDue.set(req.origin, n.rows[0]?.due ?? null);
        }
      }
    });
    return { claimed, nextDue };
  }

  /** Records attempt outcomes: first successes in one statement, the rest row by row. */
  private async record(c: pg.PoolClient, outcomes: readonly DeliveryOutcome[], now: number): Promise<void> {
    const inline = outcomes.filter((o): o is Extract<DeliveryOutcome, { kind: 'succeeded' }> => o.kind === 'succeeded' && o.attempt.error === null);
    const done = new Set<number>();
    if (inline.length > 0) {
      // A first success lives in the delivery row (as in SQLite schema 2): one row update, no attempt row.
      const r = await c.query<{ seq: number }>(
        `UPDATE hookwire_deliveries d SET state = 'succeeded', attempts = u.attempt, next_attempt_at = NULL, lease_owner = NULL,
           last_status = u.status, last_error = NULL, updated_at = $9, ok_attempt = u.attempt, ok_started_at = u.started_at,
           ok_duration_ms = u.duration_ms, ok_status = u.status, ok_response = u.response, ok_webhook_timestamp = u.ts, ok_url = u.url
         FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[], $5::int[], $6::text[], $7::bigint[], $8::text[])
           AS u(seq, attempt, started_at, duration_ms, status, response, ts, url)
         WHERE d.seq = u.seq AND d.ok_attempt IS NULL
         RETURNING d.seq`,
        [
          inline.map((o) => o.seq),
          inline.map((o) => o.attempt.attempt),
          inline.map((o) => o.attempt.startedAtMs),
          inline.map((o) => o.attempt.durationMs),
          inline.map((o) => o.attempt.status),
          inline.map((o) => o.attempt.response),
          inline.map((o) => o.attempt.webhookTimestamp),
          inline.map((o) => o.attempt.url),
          now,
        ],
      );
      for (const row of r.rows) done.add(row.seq);
    }
    for (const o of outcomes) {
      if (done.has(o.seq)) continue;
      const status = o.attempt?.status ?? null;
      if (o.kind === 'retry' && !o.attempt) {
        // Handed back unattempted.
        await c.query(`UPDATE hookwire_deliveries SET next_attempt_at = $1, lease_owner = NULL WHERE seq = $2 AND state = 'pending'`, [
          o.nextAttemptAtMs,
          o.seq,
        ]);
        continue;
      }
      const a = o.attempt;
      const attempts = a ? a.attempt : 0;
      let r: pg.QueryResult;
      if (o.kind === 'succeeded') {
        r = await c.query(
          `UPDATE hookwire_deliveries SET state = 'succeeded', attempts = $1, next_attempt_at = NULL, lease_owner = NULL, last_status = $2,
           last_error = NULL, updated_at = $3 WHERE seq = $4`,
          [attempts, status, now, o.seq],
        );
      } else if (o.kind === 'dropped') {
        // A wasm hook's transform dropped the event: finished, nothing sent (the attempt row keeps its reason).
        r = await c.query(
          `UPDATE hookwire_deliveries SET state = 'dropped', attempts = $1, next_attempt_at = NULL, lease_owner = NULL, last_status = NULL,
           last_error = NULL, updated_at = $2 WHERE seq = $3`,
          [attempts, now, o.seq],
        );
      } else if (o.kind === 'retry') {
        r = await c.query(
          `UPDATE hookwire_deliveries SET attempts = $1, next_attempt_at = $2, lease_owner = NULL, last_status = $3, last_error = $4,
           updated_at = $5 WHERE seq = $6 AND state = 'pending'`,
          [attempts, o.nextAttemptAtMs, status, o.error, now, o.seq],
        );
      } else if (a) {
        r = await c.query(
          `UPDATE hookwire_deliveries SET state = 'failed', attempts = $1, next_attempt_at = NULL, lease_owner = NULL, last_status = $2,
           last_error = $3, updated_at = $4 WHERE seq = $5`,
          [attempts, status, o.error, now, o.seq],
        );
      } else {
        r = await c.query(
          `UPDATE hookwire_deliveries SET state = 'failed', next_attempt_at = NULL, lease_owner = NULL, last_error = $1, updated_at = $2
           WHERE seq = $3`,
          [o.error, now, o.seq],
        );
      }
      // The delivery may be gone (its hook was deleted while the attempt ran): no orphan attempt row then.
      if (a && (r.rowCount ?? 0) > 0) {
        await c.query(
          `INSERT INTO hookwire_attempts (delivery_seq, attempt, started_at, duration_ms, status, error, response, webhook_timestamp, url)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (delivery_seq, attempt) DO UPDATE SET started_at = excluded.started_at, duration_ms = excluded.duration_ms,
             status = excluded.status, error = excluded.error, response = excluded.response,
             webhook_timestamp = excluded.webhook_timestamp, url = excluded.url`,
          [o.seq, a.attempt, a.startedAtMs, a.durationMs, a.status, a.error, a.response, a.webhookTimestamp, a.url],
        );
      }
    }
  }

  async reassignOrigins(hookId: string, originOf: (json: string, source: string, event: string) => string): Promise<void> {
    await this.tx(async (c) => {
      // Rows leased by a dispatcher are left alone (locked ones skipped): their attempt uses the origin they were claimed with.
      const r = await c.query<{ seq: number; data: string; source: string; event: string }>(
        `SELECT seq, data, source, event FROM hookwire_deliveries WHERE hook_id = $1 AND state = 'pending' AND lease_owner IS NULL
         FOR UPDATE SKIP LOCKED`,
        [hookId],
      );
      for (const row of r.rows) await c.query('UPDATE hookwire_deliveries SET origin = $1 WHERE seq = $2', [originOf(row.data, row.source, row.event), row.seq]);
    });
  }

  // ---- deliveries as listed ----

  private async views(rows: DeliveryRow[], now: number): Promise<DeliveryView[]> {
    if (rows.length === 0) return [];
    const attempts = new Map<number, AttemptView[]>();
    const r = await this.pool.query<AttemptRow>(
      `SELECT delivery_seq, attempt, started_at, duration_ms, status, error, response, webhook_timestamp, url FROM hookwire_attempts
       WHERE delivery_seq = ANY($1::bigint[]) ORDER BY delivery_seq, attempt`,
      [rows.map((row) => row.seq)],
    );
    for (const a of r.rows) {
      let list = attempts.get(a.delivery_seq);
      if (!list) attempts.set(a.delivery_seq, (list = []));
      list.push(attemptOf(a));
    }
    for (const row of rows) {
      const inline = inlineAttemptOf(row);
      if (inline === null) continue;
      let list = attempts.get(row.seq);
      if (!list) attempts.set(row.seq, (list = []));
      list.push(inline);
      list.sort((x, y) => x.attempt - y.attempt);
    }
    return rows.map((row) => {
      // Leased by some node and the lease still running: an attempt is in flight.
      const leased = row.state === 'pending' && row.lease_owner !== null && (row.next_attempt_at ?? 0) > now;
      return deliveryViewOf(row, leased, attempts.get(row.seq) ?? []);
    });
  }

  async listDeliveries(hookId: string, size: number, before: number | null, nowMs: number): Promise<DeliveryPage> {
    const r = await this.pool.query<DeliveryRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM hookwire_deliveries WHERE hook_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`,
      [hookId, before ?? Number.MAX_SAFE_INTEGER, size + 1],
    );
    const more = r.rows.length > size;
    const page = more ? r.rows.slice(0, size) : r.rows;
    return { deliveries: await this.views(page, nowMs), next: more ? page[page.length - 1]!.seq : null };
  }

  async listAllDeliveries(state: StoredDeliveryState | null, size: number, before: number | null, nowMs: number): Promise<DeliveryPage> {
    const below = before ?? Number.MAX_SAFE_INTEGER;
    const r =
      state === null
        ? await this.pool.query<DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM hookwire_deliveries WHERE seq < $1 ORDER BY seq DESC LIMIT $2`, [below, size + 1])
        : await this.pool.query<DeliveryRow>(
            `SELECT ${DELIVERY_COLUMNS} FROM hookwire_deliveries WHERE state = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`,
            [state, below, size + 1],
          );
    const more = r.rows.length > size;
    const page = more ? r.rows.slice(0, size) : r.rows;
    return { deliveries: await this.views(page, nowMs), next: more ? page[page.length - 1]!.seq : null };
  }

  async getDelivery(hookId: string, deliveryId: string, nowMs: number): Promise<DeliveryView | null> {
    const r = await this.pool.query<DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM hookwire_deliveries WHERE id = $1 AND hook_id = $2`, [
      deliveryId,
      hookId,
    ]);
    const row = r.rows[0];
    return row ? (await this.views([row], nowMs))[0]! : null;
  }

  async retryDelivery(hookId: string, deliveryId: string, nowMs: number): Promise<'scheduled' | 'in_flight' | null> {
    return this.tx(async (c) => {
      const r = await c.query<{ seq: number; state: string; lease_owner: string | null; next_attempt_at: number | null }>(
        'SELECT seq, state, lease_owner, next_attempt_at FROM hookwire_deliveries WHERE id = $1 AND hook_id = $2 FOR UPDATE',
        [deliveryId, hookId],
      );
      const row = r.rows[0];
      if (!row) return null;
      if (row.state === 'pending') {
        if (row.lease_owner !== null && (row.next_attempt_at ?? 0) > nowMs) return 'in_flight';
        await c.query('UPDATE hookwire_deliveries SET next_attempt_at = $1, updated_at = $1 WHERE seq = $2', [nowMs, row.seq]);
      } else {
        await c.query(
          `UPDATE hookwire_deliveries SET state = 'pending', cycle_start = attempts, next_attempt_at = $1, lease_owner = NULL, updated_at = $1
           WHERE seq = $2`,
          [nowMs, row.seq],
        );
      }
      return 'scheduled';
    });
  }

  // ---- on_change / snooze across nodes ----

  async admitThrottled(decisions: readonly ThrottleDecision[], nowMs: number): Promise<boolean[]> {
    if (decisions.length === 0) return [];
    return this.tx(async (c) => {
      const out: boolean[] = [];
      for (const d of decisions) {
        // The row lock makes the read-decide-write atomic across nodes.
        await c.query('INSERT INTO hookwire_throttle (hook_id, key, digest, fired_at) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING', [
          d.hookId,
          d.key,
          '',
        ]);
        const r = await c.query<{ digest: string; fired_at: number }>(
          'SELECT digest, fired_at FROM hookwire_throttle WHERE hook_id = $1 AND key = $2 FOR UPDATE',
          [d.hookId, d.key],
        );
        const prev = r.rows[0]!;
        const fresh = prev.fired_at === 0;
        const snoozed = !fresh && d.snoozeMs > 0 && nowMs - prev.fired_at < d.snoozeMs;
        // on_change alone compares digests; with snooze too, the key holds the digest and the window decides.
        const unchanged = !fresh && d.onChange && d.snoozeMs === 0 && prev.digest === d.digest;
        const fire = !snoozed && !unchanged;
        if (fire) await c.query('UPDATE hookwire_throttle SET digest = $3, fired_at = $4 WHERE hook_id = $1 AND key = $2', [d.hookId, d.key, d.digest, nowMs]);
        out.push(fire);
      }
      return out;
    });
  }

  // ---- housekeeping ----

  async sweep(beforeMs: number): Promise<number> {
    let total = 0;
    while (!this.closed) {
      const n = await this.tx(async (c) => {
        const r = await c.query<{ seq: number }>(
          `SELECT seq FROM hookwire_deliveries WHERE state <> 'pending' AND updated_at < $1 ORDER BY seq LIMIT ${SWEEP_BATCH}`,
          [beforeMs],
        );
        if (r.rows.length === 0) return -1;
        const seqs = r.rows.map((row) => row.seq);
        const a = await c.query('DELETE FROM hookwire_attempts WHERE delivery_seq = ANY($1::bigint[])', [seqs]);
        const d = await c.query('DELETE FROM hookwire_deliveries WHERE seq = ANY($1::bigint[])', [seqs]);
        return (a.rowCount ?? 0) + (d.rowCount ?? 0);
      });
      if (n < 0) break;
      total += n;
    }
    return total;
  }

  async counts(): Promise<{ pending: number }> {
    const r = await this.pool.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM hookwire_deliveries WHERE state = 'pending'`);
    return { pending: r.rows[0]?.n ?? 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watcher?.close();
    await this.pool.end().catch(() => {});
  }
}
