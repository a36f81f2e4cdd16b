/**
 * The storage interface of the event-hooks service. The embedded default is
 * SQLite (sqlite-store.ts); the interface is narrow and asynchronous so a
 * PostgreSQL store can follow (several dispatchers sharing one outbox, claims
 * with `FOR UPDATE SKIP LOCKED`) without touching the dispatcher.
 *
 * The outbox: an accepted event becomes one delivery per matching hook (each
 * carrying the event's id, source, name and data), written in one
 * transaction before `accept` resolves. A claim leases a delivery by pushing
 * its due time to the end of the lease: if the process dies mid-attempt, the
 * delivery becomes due again when the lease runs out, and is sent again with
 * the same id (`webhook-id`).
 *
 * The dispatcher talks to the outbox through `cycle`: one call records the
 * outcomes of finished attempts (in batches) and leases the next deliveries,
 * in one transaction, or in none when there is nothing to write and the
 * store can answer the claims from memory (SQLite: outbox-tail.ts).
 */
import type { DeliveryView, EventHook, EventSpec } from './types.js';

export interface NewDelivery {
  id: string;
  hookId: string;
  /** Scheduling partition: the endpoint's origin (`log:` for the log handler). */
  origin: string;
}

export interface NewEvent {
  id: string;
  source: string;
  event: string;
  /** The data as JSON text. */
  json: string;
  plugin: string | null;
  occurredAtMs: number;
  deliveries: NewDelivery[];
}

export interface PublishedSource {
  source: string;
  event: string;
  spec: EventSpec;
  plugin: string | null;
}

export interface ClaimedDelivery {
  /** Store-internal row id. */
  seq: number;
  id: string;
  hookId: string;
  origin: string;
  /** The number of this attempt (1-based). */
  attempt: number;
  /** Attempts made before the current retry cycle (a manual retry starts a new cycle). */
  cycleStart: number;
  eventId: string;
  source: string;
  event: string;
  json: string;
  createdAtMs: number;
}

export interface AttemptRecord {
  attempt: number;
  startedAtMs: number;
  durationMs: number;
  status: number | null;
  error: string | null;
  response: string | null;
  webhookTimestamp: number | null;
  url: string | null;
}

export type DeliveryOutcome =
  | { seq: number; kind: 'succeeded'; attempt: AttemptRecord }
  /** A `wasm` hook's transform dropped the event: finished, nothing sent. */
  | { seq: number; kind: 'dropped'; attempt: AttemptRecord }
  | { seq: number; kind: 'retry'; nextAttemptAtMs: number; attempt: AttemptRecord | null; error: string | null }
  | { seq: number; kind: 'failed'; attempt: AttemptRecord | null; error: string };

export interface HookPage {
  hooks: EventHook[];
  /** Cursor of the next page (the last row's position), or null. */
  next: number | null;
}

export interface ClaimRequest {
  origin: string;
  /** Most deliveries to lease for this origin. */
  limit: number;
}

export interface CycleResult {
  claimed: ClaimedDelivery[];
  /**
   * For each requested origin that yielded fewer than its limit: the earliest
   * due time of its remaining pending deliveries (leased ones included), or
   * null when it has none.
   */
  nextDue: Map<string, number | null>;
}

/** One on_change / snooze decision a store makes for the whole cluster (see Throttle for the semantics). */
export interface ThrottleDecision {
  hookId: string;
  /** throttleKey(): hook, source, event (and the digest when both on_change and snooze are set). */
  key: string;
  digest: string;
  onChange: boolean;
  /** The snooze window in ms (0: none). */
  snoozeMs: number;
}

/** A delivery's state as stored; `delivering` is a pending one with an attempt in flight. */
export type StoredDeliveryState = 'pending' | 'succeeded' | 'failed' | 'dropped';

export interface DeliveryPage {
  deliveries: DeliveryView[];
  next: number | null;
}

export interface EventHookStore {
  /** Creates or migrates the schema. */
  init(): Promise<void>;

  loadHooks(): Promise<EventHook[]>;
  insertHook(hook: EventHook): Promise<void>;
  updateHook(hook: EventHook): Promise<void>;
  /** Deletes the hook with its deliveries and their attempts; false when absent. */
  deleteHook(id: string): Promise<boolean>;
  /** Hooks in creation order after cursor `after` (null: from the start). */
  listHooks(size: number, after: number | null): Promise<HookPage>;

  loadSources(): Promise<PublishedSource[]>;

  /** Writes the deliveries of `events` (due now) and published sources in one transaction. */
  accept(events: readonly NewEvent[], published: readonly PublishedSource[], nowMs: number): Promise<void>;
  /** Origins that have pending deliveries, with the earliest due time of each. */
  dueOrigins(): Promise<Map<string, number>>;
  /**
   * In one transaction: records `outcomes` (attempts, deliveries moved on),
   * then leases, for each request, up to `limit` due deliveries of its origin
   * (oldest due first) until `leaseUntilMs`. Resolved means the outcomes are
   * committed.
   */
  cycle(
    outcomes: readonly DeliveryOutcome[],
    requests: readonly ClaimRequest[],
    nowMs: number,
    leaseUntilMs: number,
    owner: string,
  ): Promise<CycleResult>;
  /** Re-partitions a hook's pending deliveries after its URL changed. */
  reassignOrigins(hookId: string, originOf: (json: string, source: string, event: string) => string): Promise<void>;

  /** A hook's deliveries, newest first, with their attempts. */
  listDeliveries(hookId: string, size: number, before: number | null, nowMs: number): Promise<DeliveryPage>;
  /**
   * Every hook's deliveries, newest first, with their attempts; only those
   * whose stored state is `state` when given (a delivery in flight is stored
   * as pending).
   */
  listAllDeliveries(state: StoredDeliveryState | null, size: number, before: number | null, nowMs: number): Promise<DeliveryPage>;
  getDelivery(hookId: string, deliveryId: string, nowMs: number): Promise<DeliveryView | null>;
  /**
   * Makes a delivery due now: a finished one starts a new retry cycle, a
   * pending one skips its wait; one in flight is left alone. null when absent.
   */
  retryDelivery(hookId: string, deliveryId: string, nowMs: number): Promise<'scheduled' | 'in_flight' | null>;

  /** Deletes attempts and finished deliveries older than `beforeMs`; returns rows deleted. */
  sweep(beforeMs: number): Promise<number>;
  /** Pending deliveries (a gauge; finished ones are counted by the service). */
  counts(): Promise<{ pending: number }>;

  /**
   * Shared stores (PostgreSQL) only: calls `changed` when another node changed
   * the hooks or the published sources, so this node reloads them.
   */
  watch?(changed: () => void): Promise<void>;
  /**
   * Shared stores only: on_change / snooze decided for the cluster, in order,
   * recording each firing (true: fire). Without it the service decides in
   * memory, per process.
   */
  admitThrottled?(decisions: readonly ThrottleDecision[], nowMs: number): Promise<boolean[]>;
  close(): Promise<void>;
}
