/**
 * The event-hooks service: Kong's Event Hooks over a durable outbox.
 *
 *   emit / emitCrud / ingest(records) ──▶ registry check ──▶ match hooks (source, event|null, enabled)
 *     ──▶ on_change / snooze (digest of the unique fields) ──▶ outbox (one transaction; the call resolves after commit)
 *     ──▶ dispatcher (per-origin limits, circuit breaker, SSRF-vetted address, signatures, retries) ──▶ endpoints
 *
 * The Admin API calls this class; it owns no HTTP listener. Every method
 * that touches storage is async; sources() and friends are synchronous.
 * Methods throw the typed errors of host/errors.ts: EventHookNotFoundError,
 * EventHookValidationError (issues with paths), EventRejectedError,
 * WebhookRequestError, EventHooksClosedError. ingest() never throws.
 */
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import {
  EventHookNotFoundError,
  EventHooksClosedError,
  EventHookValidationError,
  EventRejectedError,
  WebhookRequestError,
} from '../errors.js';
import type { NativeQueueConsumer } from '../vm/shared-queues.js';
import type { RuntimeEvent } from '../vm/runtime.js';
import { Origins } from './circuit.js';
import { digest } from './digest.js';
import { Dispatcher } from './dispatcher.js';
import { buildRequest, originOf, redactedHook, signRequest, transformedRequest, webhookJson, type BuiltRequest } from './handlers.js';
import { canonicalDeliveryId, canonicalHookId, deliveryId, eventId, hookId as newHookId } from './ids.js';
import { HookCounters } from './metrics.js';
import { resolveOptions, type EventHooksOptions, type ResolvedOptions } from './options.js';
import { applyHookPatch, validateHookInput, type ValidHookInput } from './schemas.js';
import { compileTransform, TransformModuleError, transformBytes, transformRunner } from './transform.js';
import { SourceRegistry, wasmEventOf, type CrudOperation, CRUD_OPERATIONS } from './sources.js';
import { SqliteStore } from './sqlite-store.js';
import { SsrfPolicy, systemLookup } from './ssrf.js';
import type { EventHookStore, NewDelivery, NewEvent, PublishedSource, StoredDeliveryState, ThrottleDecision } from './store.js';
import { Throttle, throttleKey } from './throttle.js';
import { Transport } from './transport.js';
import type {
  CircuitSnapshot,
  DeliveryView,
  EmitResult,
  EventHook,
  EventHookInput,
  EventHookPatch,
  EventSpec,
  HookClock,
  IngestResult,
  MetricSample,
  Page,
  PageRequest,
  SourcesView,
  TestResult,
  WasmConfig,
} from './types.js';
import { parseRecord } from './wire.js';

/** The shared queue plugins enqueue records on (assembly/event-hooks: QUEUE_NAME, DEFAULT_VM_ID). */
export const EVENT_HOOKS_QUEUE = { vmId: 'hookwire_event_hooks', name: 'event_hooks' } as const;

/** Kong's ping source and event. */
export const PING_SOURCE = 'kong:event_hooks';

const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;
const MAX_LISTED_ERRORS = 100;
/** Records of an ingest batch handled (checked, matched, committed) in one event-loop turn: about 5 ms of work. */
export const INGEST_SLICE = 250;

type RejectRecord = (index: number, reason: string, record?: { source?: string; event?: string; plugin?: string | null }) => void;

interface AcceptBatch {
  events: NewEvent[];
  published: PublishedSource[];
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
}

function stripNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripNulls);
  if (value !== null && typeof value === 'object') {
    // Null prototype: keys come from user input (a plugin configuration may have `__proto__`).
    const out = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = stripNulls(v);
    return out;
  }
  return value;
}

function encodeCursor(kind: 'h' | 'd', seq: number): string {
  return Buffer.from(`${kind}1:${seq}`, 'utf8').toString('base64url');
}

function decodeCursor(kind: 'h' | 'd', offset: string | null | undefined): number | null {
  if (offset === undefined || offset === null || offset === '') return null;
  const text = typeof offset === 'string' ? Buffer.from(offset, 'base64url').toString('utf8') : '';
  const m = /^([hd])1:(\d{1,15})$/.exec(text);
  if (!m || m[1] !== kind) throw new EventHookValidationError([{ path: '/offset', message: 'is not an offset this list returned' }]);
  return Number(m[2]);
}

function pageSize(size: number | undefined): number {
  if (size === undefined) return DEFAULT_PAGE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE) {
    throw new EventHookValidationError([{ path: '/size', message: `must be an integer between 1 and ${MAX_PAGE} (found ${String(size)})` }]);
  }
  return size;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export class EventHooks {
  /** Kong's `source → event → {fields, unique, description}` registry. */
  private readonly registry: SourceRegistry;
  private readonly options: ResolvedOptions;
  private readonly store: EventHookStore;
  private readonly ownsStore: boolean;
  private readonly clock: HookClock;
  private readonly logger: Logger;
  private readonly throttle = new Throttle();
  private readonly counters = new HookCounters();
  private readonly origins: Origins;
  private readonly transport: Transport;
  private readonly dispatcher: Dispatcher;
  private readonly hooks = new Map<string, EventHook>();
  /** Deliveries whose on_change / snooze verdict the shared store gives at commit. */
  private readonly sharedThrottle = new WeakMap<NewDelivery, ThrottleDecision>();
  private bySource = new Map<string, EventHook[]>();
  private readonly ready: Promise<void>;
  private batch: AcceptBatch | null = null;
  private inAccept: Promise<void> = Promise.resolve();
  /** Ingests worked through in slices, still running. */
  private readonly ingesting = new Set<Promise<void>>();
  private sweeper: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private rejectLogWindow = { start: 0, count: 0, suppressed: 0 };

  constructor(options: EventHooksOptions) {
    this.options = resolveOptions(options);
    this.clock = options.clock ?? { now: () => Date.now() };
    this.logger = options.logger ?? pino({ name: 'hookwire:event-hooks' });
    this.registry = new SourceRegistry(this.options.crudEntities);
    this.store = options.store ?? new SqliteStore(options.database!, { synchronous: options.synchronous ?? 'normal' });
    this.ownsStore = !options.store;
    const d = this.options.delivery;
    this.origins = new Origins(d.perOriginConcurrency, this.options.circuit);
    this.transport = new Transport({
      policy: new SsrfPolicy(options.ssrf ?? {}),
      lookup: options.ssrf?.lookup ?? systemLookup,
      timeoutMs: d.timeoutMs,
      connectTimeoutMs: d.connectTimeoutMs,
      responseExcerptBytes: d.responseExcerptBytes,
      connectionsPerOrigin: d.perOriginConcurrency,
    });
    this.dispatcher = new Dispatcher(
      {
        store: this.store,
        transport: this.transport,
        origins: this.origins,
        clock: this.clock,
        logger: this.logger,
        counters: this.counters,
        random: options.random ?? Math.random,
        owner: `${process.pid}-${randomBytes(4).toString('hex')}`,
        hook: (id) => this.hooks.get(id),
        hookNotLoadedYet: this.store.watch
          ? () => {
              this.reloadHooks();
              return true;
            }
          : undefined,
        modulesDir: this.options.modulesDir,
        disableHook: (id, reason) => this.disable(id, reason),
      },
      d,
    );
    this.ready = this.load();
    // Callers that never await (a failed load) still see the error on their next call.
    this.ready.catch(() => {});
  }

  private async load(): Promise<void> {
    await this.store.init();
    for (const h of await this.store.loadHooks()) this.hooks.set(h.id, h);
    this.reindex();
    for (const s of await this.store.loadSources()) if (!this.registry.isBuiltIn(s.source)) this.registry.publish(s.source, s.event, s.spec);
  }

  private reloading: Promise<void> | null = null;
  private reloadAgain = false;

  /**
   * Another node changed the hooks or published sources (shared stores):
   * reload both. Coalesced: changes arriving during a reload cause one more.
   */
  private reloadHooks(): void {
    if (this.closing) return;
    if (this.reloading) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        const hooks = await this.store.loadHooks();
        const ids = new Set(hooks.map((h) => h.id));
        for (const id of this.hooks.keys()) if (!ids.has(id)) this.throttle.forget(id);
        this.hooks.clear();
        for (const h of hooks) this.hooks.set(h.id, h);
        this.reindex();
        for (const src of await this.store.loadSources()) if (!this.registry.isBuiltIn(src.source)) this.registry.publish(src.source, src.event, src.spec);
      } while (this.reloadAgain && !this.closing);
    })()
      .catch((err: unknown) => {
        if (!this.closing) this.logger.error({ err }, 'event hooks: reloading the hooks another node changed failed');
      })
      .finally(() => {
        this.reloading = null;
      });
  }

  private reindex(): void {
    const by = new Map<string, EventHook[]>();
    for (const h of this.hooks.values()) {
      let list = by.get(h.source);
      if (!list) by.set(h.source, (list = []));
      list.push(h);
    }
    this.bySource = by;
  }

  private live(operation: string): void {
    if (this.closing) throw new EventHooksClosedError(operation);
  }

  // ---- lifecycle ----

  /** Loads hooks and sources and starts delivering (pending deliveries of a previous run included). */
  async start(): Promise<void> {
    this.live('start');
    await this.ready;
    // A shared store: hooks created, changed or deleted on another node are matched here too.
    if (this.store.watch) await this.store.watch(() => this.reloadHooks());
    await this.dispatcher.start();
    if (!this.sweeper) {
      this.sweeper = setInterval(() => void this.sweep(), this.options.sweepIntervalMs);
      this.sweeper.unref();
    }
  }

  /** Runs the retention sweep now; returns the rows deleted. */
  async sweep(): Promise<number> {
    const now = this.clock.now();
    this.throttle.prune(now);
    this.origins.prune(now - 10 * 60_000);
    try {
      return await this.store.sweep(now - this.options.retentionMs);
    } catch (err) {
      if (!this.closing) this.logger.error({ err }, 'event hooks: retention sweep failed');
      return 0;
    }
  }

  /**
   * Stops accepting, commits what was accepted, lets attempts in flight finish
   * for up to `timeoutMs` (then aborts them: they are retried after a
   * restart), and closes the store. Idempotent.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.closing) this.closing = this.shutdown(options.timeoutMs ?? 10_000);
    return this.closing;
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.ready.catch(() => {});
    await Promise.all(this.ingesting);
    await this.flushAccept();
    await this.inAccept;
    await this.dispatcher.close(timeoutMs, () => this.transport.close(0));
    await this.transport.close(0);
    if (this.ownsStore) await this.store.close();
  }

  // ---- hooks (Kong's entity) ----

  /** Creates a hook (Kong: POST /event-hooks → 201). Throws EventHookValidationError. */
  async createHook(input: EventHookInput | Record<string, unknown>): Promise<EventHook> {
    this.live('createHook');
    await this.ready;
    const v = validateHookInput(input);
    await this.checkTransform(v);
    const id = v.id ?? newHookId();
    if (this.hooks.has(id)) throw new EventHookValidationError([{ path: '/id', message: 'an event hook with this id already exists' }]);
    const now = Math.floor(this.clock.now() / 1000);
    const hook = this.entity(v, id, now, now);
    await this.store.insertHook(hook);
    this.hooks.set(id, hook);
    this.reindex();
    await this.afterChange('create', hook, null);
    return structuredClone(hook);
  }

  /** A hook by id (Kong: GET /event-hooks/{id}). Throws EventHookNotFoundError. */
  async getHook(id: string): Promise<EventHook> {
    this.live('getHook');
    await this.ready;
    return structuredClone(this.mustHook(id));
  }

  /** Hooks in creation order (Kong: GET /event-hooks?size=&offset=). */
  async listHooks(page: PageRequest = {}): Promise<Page<EventHook>> {
    this.live('listHooks');
    await this.ready;
    const size = pageSize(page.size);
    const after = decodeCursor('h', page.offset);
    const r = await this.store.listHooks(size, after);
    return { data: r.hooks, offset: r.next === null ? null : encodeCursor('h', r.next) };
  }

  /** PATCH semantics (see applyHookPatch). Throws EventHookNotFoundError / EventHookValidationError. */
  async updateHook(id: string, patch: EventHookPatch | Record<string, unknown>): Promise<EventHook> {
    this.live('updateHook');
    await this.ready;
    const current = this.mustHook(id);
    const v = applyHookPatch(current, patch);
    if (v.handler !== current.handler || JSON.stringify(v.config.module) !== JSON.stringify((current.config as { module?: unknown }).module)) {
      await this.checkTransform(v);
    }
    const next = this.entity(v, current.id, current.created_at, Math.floor(this.clock.now() / 1000));
    // current.id, never the caller's spelling of it: one entry in memory, the same row in the store.
    await this.store.updateHook(next);
    this.hooks.set(current.id, next);
    this.reindex();
    if (JSON.stringify(current.config) !== JSON.stringify(next.config) || current.handler !== next.handler) {
      await this.store.reassignOrigins(current.id, (json, source, event) => originOf(next, source, event, JSON.parse(json) as Record<string, unknown>));
      await this.dispatcher.rescan();
    }
    await this.afterChange('update', next, current);
    return structuredClone(next);
  }

  /** Deletes a hook with its deliveries and attempts (Kong: DELETE → 204). */
  async deleteHook(id: string): Promise<void> {
    this.live('deleteHook');
    await this.ready;
    const current = this.mustHook(id);
    await this.store.deleteHook(current.id);
    this.hooks.delete(current.id);
    this.reindex();
    this.throttle.forget(current.id);
    await this.afterChange('delete', current, current);
  }

  /**
   * A `wasm` hook's module is loaded, compiled and checked before the hook is
   * stored (EventHookValidationError under /config/module saying why not).
   */
  private async checkTransform(v: ValidHookInput): Promise<void> {
    if (v.handler !== 'wasm') return;
    try {
      await compileTransform(await transformBytes(v.config.module as WasmConfig['module'], this.options.modulesDir));
    } catch (err) {
      if (!(err instanceof TransformModuleError)) throw err;
      throw new EventHookValidationError([{ path: '/config/module', message: err.message }]);
    }
  }

  private entity(v: ValidHookInput, id: string, createdAt: number, updatedAt: number): EventHook {
    return {
      id,
      created_at: createdAt,
      updated_at: updatedAt,
      source: v.source,
      event: v.event,
      handler: v.handler,
      on_change: v.on_change,
      snooze: v.snooze,
      enabled: v.enabled,
      config: v.config as unknown as EventHook['config'],
    };
  }

  /** The hook with this id in any letter case (ids are kept as canonical lower-case UUIDs). */
  private mustHook(id: string): EventHook {
    const h = typeof id === 'string' ? this.hooks.get(canonicalHookId(id)) : undefined;
    if (!h) throw new EventHookNotFoundError('event_hook', String(id));
    return h;
  }

  /** crud events for the hook itself (the service is the event_hooks DAO), and Kong's optional ping. */
  private async afterChange(op: CrudOperation, hook: EventHook, old: EventHook | null): Promise<void> {
    // The change is committed; failing to announce it must not fail the call.
    try {
      const { events } = this.crudEvents('event_hooks', op, redactedHook(hook), op === 'update' && old ? redactedHook(old) : null);
      if (this.options.pingOnChange && op !== 'delete' && hook.handler === 'webhook' && hook.enabled) {
        const now = this.clock.now();
        const data = { operation: op, event_hooks: redactedHook(hook) };
        events.push({
          id: eventId(now),
          source: PING_SOURCE,
          event: 'ping',
          json: JSON.stringify(data),
          plugin: null,
          occurredAtMs: now,
          deliveries: [{ id: deliveryId(now), hookId: hook.id, origin: originOf(hook, PING_SOURCE, 'ping', data) }],
        });
      }
      await this.commit(events, []);
    } catch (err) {
      this.logger.error({ err, event_hook: hook.id }, 'event hooks: recording the crud event of a hook change failed');
    }
  }

  private async disable(id: string, reason: string): Promise<void> {
    const h = this.hooks.get(id);
    if (!h || !h.enabled) return;
    const next: EventHook = { ...h, enabled: false, updated_at: Math.floor(this.clock.now() / 1000) };
    try {
      await this.store.updateHook(next);
    } catch (err) {
      this.logger.error({ err, event_hook: id }, 'event hooks: disabling the hook failed');
      return;
    }
    this.hooks.set(id, next);
    this.reindex();
    this.counters.hooksDisabled++;
    this.logger.warn({ event_hook: id, reason }, 'event hooks: hook disabled');
  }

  // ---- test, ping ----

  /**
   * Runs the hook's handler now on `data`, bypassing on_change, snooze and the
   * outbox (Kong: POST /event-hooks/{id}/test). Nothing is stored. For the
   * HTTP handlers the SSRF guard and signing apply; the answer (any status)
   * is the result. Throws WebhookRequestError when no answer came.
   */
  async test(id: string, data: Record<string, unknown> = {}): Promise<TestResult> {
    this.live('test');
    await this.ready;
    const hook = this.mustHook(id);
    if (!isPlainObject(data)) throw new EventHookValidationError([{ path: '', message: 'test data must be a JSON object' }]);
    if (hook.handler === 'log') {
      this.logger.info({ event_hook: hook.id, event: hook.event, source: hook.source, data, test: true }, 'log callback');
      return { data, result: true };
    }
    let req: BuiltRequest;
    if (hook.handler === 'wasm') {
      // TransformError (trap, deadline, invalid output) goes to the caller as it is.
      const result = (await transformRunner(hook, this.options.modulesDir)).run(webhookJson(hook.source, hook.event, JSON.stringify(data)));
      if (result.drop) return { data, result: { dropped: true, reason: result.reason } };
      req = transformedRequest(hook, result);
    } else req = buildRequest(hook, hook.source, hook.event, JSON.stringify(data), data);
    const now = this.clock.now();
    const headers = signRequest(req, hook, deliveryId(now), Math.floor(now / 1000));
    const res = await this.transport.send({ ...req, headers });
    return { data, result: { status: res.status, headers: res.headers, body: res.excerpt } };
  }

  /**
   * Sends Kong's ping (`{"source":"kong:event_hooks","event":"ping","event_hooks":<hook>}`,
   * secrets redacted) to a webhook hook now. Resolves with the status on a 2xx;
   * throws WebhookRequestError otherwise, EventHookValidationError for a
   * handler without ping (Kong: only `webhook`).
   */
  async ping(id: string): Promise<{ status: number }> {
    this.live('ping');
    await this.ready;
    const hook = this.mustHook(id);
    if (hook.handler !== 'webhook') {
      throw new EventHookValidationError([{ path: '/handler', message: `handler '${hook.handler}' does not support 'ping'` }]);
    }
    const ping = { event_hooks: redactedHook(hook) };
    const req = buildRequest(hook, PING_SOURCE, 'ping', JSON.stringify(ping), ping);
    const now = this.clock.now();
    const headers = signRequest(req, hook, deliveryId(now), Math.floor(now / 1000));
    const res = await this.transport.send({ ...req, headers });
    if (res.status < 200 || res.status >= 300) {
      throw new WebhookRequestError('status', `ping: endpoint answered ${res.status}`, { status: res.status });
    }
    return { status: res.status };
  }

  // ---- sources ----

  /** Every source: `{source: {event: {fields, unique?, description?}}}` (Kong: GET /event-hooks/sources). */
  sources(): SourcesView {
    return this.registry.view();
  }

  /** One source's events; throws EventHookNotFoundError. */
  source(name: string): Record<string, EventSpec> {
    const s = this.registry.source(name);
    if (!s) throw new EventHookNotFoundError('source', name);
    return s;
  }

  /** One event of a source; throws EventHookNotFoundError. */
  sourceEvent(name: string, event: string): EventSpec {
    const events = this.source(name);
    // Own entries only: `constructor` or `toString` is no event.
    const spec = Object.hasOwn(events, event) ? events[event] : undefined;
    if (!spec) throw new EventHookNotFoundError('event', `${name}/${event}`);
    return spec;
  }

  // ---- deliveries ----

  /** A hook's deliveries, newest first, each with its attempts. */
  async deliveries(hookId: string, page: PageRequest = {}): Promise<Page<DeliveryView>> {
    this.live('deliveries');
    await this.ready;
    const hook = this.mustHook(hookId);
    const size = pageSize(page.size);
    const before = decodeCursor('d', page.offset);
    const r = await this.store.listDeliveries(hook.id, size, before, this.clock.now());
    return { data: r.deliveries, offset: r.next === null ? null : encodeCursor('d', r.next) };
  }

  /**
   * Every hook's deliveries, newest first, each with its attempts; only
   * those in `state` when given (pending includes the ones in flight).
   */
  async allDeliveries(page: PageRequest = {}, state: StoredDeliveryState | null = null): Promise<Page<DeliveryView>> {
    this.live('allDeliveries');
    await this.ready;
    const size = pageSize(page.size);
    const before = decodeCursor('d', page.offset);
    const r = await this.store.listAllDeliveries(state, size, before, this.clock.now());
    return { data: r.deliveries, offset: r.next === null ? null : encodeCursor('d', r.next) };
  }

  /** One delivery with its attempts; throws EventHookNotFoundError. */
  async delivery(hookId: string, id: string): Promise<DeliveryView> {
    this.live('delivery');
    await this.ready;
    const hook = this.mustHook(hookId);
    const d = await this.store.getDelivery(hook.id, canonicalDeliveryId(id), this.clock.now());
    if (!d) throw new EventHookNotFoundError('delivery', id);
    return d;
  }

  /**
   * Delivers again now (same webhook-id): a failed or succeeded delivery gets
   * a fresh retry cycle; a pending one skips its wait; one in flight is left
   * alone. Throws EventHookNotFoundError, or EventHookValidationError when the
   * hook is disabled.
   */
  async retryDelivery(hookId: string, id: string): Promise<DeliveryView> {
    this.live('retryDelivery');
    await this.ready;
    const hook = this.mustHook(hookId);
    if (!hook.enabled) throw new EventHookValidationError([{ path: '/enabled', message: 'the hook is disabled; enable it first' }]);
    const r = await this.store.retryDelivery(hook.id, canonicalDeliveryId(id), this.clock.now());
    if (r === null) throw new EventHookNotFoundError('delivery', id);
    await this.dispatcher.rescan();
    return this.delivery(hook.id, id);
  }

  // ---- events in ----

  /**
   * Emits an event of a built-in or published source (Kong's emit). Resolves
   * once the event is on disk. Throws EventRejectedError ("source 'x' is not
   * registered", "source 'x' has no 'y' event", data not JSON-encodable or too large).
   */
  async emit(source: string, event: string, data: Record<string, unknown>): Promise<EmitResult> {
    this.live('emit');
    await this.ready;
    this.counters.eventsReceived++;
    const reason = this.registry.check(source, event);
    if (reason) {
      this.counters.eventsRejected++;
      throw new EventRejectedError(source, event, reason);
    }
    const json = this.encode(source, event, data);
    const now = this.clock.now();
    const ev = this.prepare(source, event, data, json, null, now);
    await this.commitCounted(ev ? [ev] : [], 1);
    return { event_id: ev?.id ?? eventId(now), deliveries: ev?.deliveries.length ?? 0 };
  }

  /**
   * An Admin API change, as Kong fires it: `crud/<entity>`,
   * `crud/<entity>:<operation>` and `dao:crud/<operation>`, each with
   * `{operation, entity, old_entity (update only), schema}` (nulls removed).
   * A crud hook with event null therefore fires twice per change, as in Kong.
   * The service emits these itself for `event_hooks`.
   */
  async emitCrud(
    entity: string,
    operation: CrudOperation,
    row: Record<string, unknown>,
    oldRow: Record<string, unknown> | null = null,
  ): Promise<EmitResult[]> {
    this.live('emitCrud');
    await this.ready;
    if (!(CRUD_OPERATIONS as readonly string[]).includes(operation)) {
      throw new EventRejectedError('crud', `${entity}:${operation}`, `source 'crud' has no '${entity}:${operation}' event`);
    }
    const { events, results, byResult } = this.crudEvents(entity, operation, row, oldRow);
    await this.commitCounted(events, results.length);
    // A shared store may have throttled some deliveries at commit.
    if (this.store.admitThrottled) byResult.forEach((ev, i) => (results[i]!.deliveries = ev?.deliveries.length ?? 0));
    return results;
  }

  /** The three events of a change, in Kong's order; `results` has one entry per event, delivered or not. */
  private crudEvents(
    entity: string,
    operation: CrudOperation,
    row: unknown,
    oldRow: unknown,
  ): { events: NewEvent[]; results: EmitResult[]; byResult: (NewEvent | null)[] } {
    this.registry.addCrudEntity(entity);
    const data: Record<string, unknown> = { operation, entity: stripNulls(row), schema: entity };
    if (operation === 'update' && oldRow) data.old_entity = stripNulls(oldRow);
    const json = this.encode('crud', entity, data);
    const now = this.clock.now();
    const events: NewEvent[] = [];
    const results: EmitResult[] = [];
    const byResult: (NewEvent | null)[] = [];
    for (const [source, event] of [
      ['crud', entity],
      ['crud', `${entity}:${operation}`],
      ['dao:crud', operation],
    ] as const) {
      this.counters.eventsReceived++;
      const ev = this.prepare(source, event, data, json, null, now);
      if (ev) events.push(ev);
      byResult.push(ev);
      results.push({ event_id: ev?.id ?? eventId(now), deliveries: ev?.deliveries.length ?? 0 });
    }
    return { events, results, byResult };
  }

  /** A host/vm runtime event as an event of the `wasm` source (pass as RuntimeOptions.onEvent). Never throws. */
  runtimeEventSink(): (e: RuntimeEvent) => void {
    return (e) => {
      if (this.closing) return;
      const { event, data } = wasmEventOf(e);
      this.emit('wasm', event, data).catch((err) => this.logger.error({ err, event }, 'event hooks: wasm event lost'));
    };
  }

  /**
   * Ingests plugin records (wire format v1: publish and emit, each an object
   * or its JSON text / UTF-8 bytes), in order, as one batch: publish records
   * update the registry, emits go through matching and throttling, and the
   * batch is written in one transaction (a large one: one per slice of
   * INGEST_SLICE records, the event loop served in between). Resolves after the commit
   * with counts; never throws (a malformed record is counted, listed and logged).
   */
  async ingest(records: readonly unknown[]): Promise<IngestResult> {
    const result: IngestResult = { stored: true, accepted: 0, published: 0, rejected: 0, deliveries: 0, errors: [] };
    const reject: RejectRecord = (index, reason, record) => {
      result.rejected++;
      this.counters.eventsRejected++;
      if (result.errors.length < MAX_LISTED_ERRORS) result.errors.push({ index, reason });
      this.logRejected(reason, record);
    };
    if (!Array.isArray(records)) {
      reject(-1, 'records must be a list');
      return result;
    }
    if (this.closing) {
      records.forEach((_, i) => reject(i, 'event hooks service is closed'));
      result.stored = false;
      return result;
    }
    try {
      await this.ready;
    } catch (err) {
      records.forEach((_, i) => reject(i, `event hooks service failed to load: ${(err as Error).message}`));
      result.stored = false;
      return result;
    }
    if (records.length <= INGEST_SLICE) {
      await this.ingestSlice(records, 0, records.length, this.clock.now(), result, reject);
      return result;
    }
    // Worked through across event-loop turns: shutdown waits for it (what was acknowledged is committed).
    const work = this.ingestSliced(records, result, reject);
    this.ingesting.add(work);
    await work;
    this.ingesting.delete(work);
    return result;
  }

  /**
   * The records of a large ingest batch, in order, worked through in
   * slices of INGEST_SLICE records, each committed in its own transaction,
   * with the event loop served in between: a 10,000-record batch must not
   * hold proxied requests for the 200 ms it takes in one go. The caller is
   * answered once every slice is committed; if one fails, the batch is
   * reported not stored (5xx: the forwarder sends it again, so the slices
   * already committed may be stored twice: at least once, as deliveries are).
   */
  private async ingestSliced(records: readonly unknown[], result: IngestResult, reject: RejectRecord): Promise<void> {
    const now = this.clock.now();
    const slices: Promise<void>[] = [];
    for (let start = 0; start < records.length; start += INGEST_SLICE) {
      if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      slices.push(this.ingestSlice(records, start, Math.min(records.length, start + INGEST_SLICE), now, result, reject));
    }
    await Promise.all(slices);
  }

  /** Checks and matches records[start, end) (synchronously), then commits them; resolves once committed, never rejects. */
  private async ingestSlice(
    records: readonly unknown[],
    start: number,
    end: number,
    now: number,
    result: IngestResult,
    reject: RejectRecord,
  ): Promise<void> {
    const events: NewEvent[] = [];
    const published: PublishedSource[] = [];
    let accepted = 0;
    let deliveries = 0;
    for (let i = start; i < end; i++) {
      const parsed = parseRecord(records[i], this.options.maxEventBytes);
      if (!parsed.ok) {
        reject(i, parsed.reason);
        continue;
      }
      const r = parsed.record;
      if (this.registry.isBuiltIn(r.source)) {
        reject(i, `source '${r.source}' is built in; plugins cannot ${r.type} it`, r);
        continue;
      }
      if (r.type === 'publish') {
        const spec: EventSpec = {
          fields: r.fields,
          ...(r.unique.length > 0 ? { unique: r.unique } : {}),
          ...(r.description ? { description: r.description } : {}),
        };
        this.registry.publish(r.source, r.event, spec);
        published.push({ source: r.source, event: r.event, spec, plugin: r.plugin });
        result.published++;
        this.counters.recordsPublished++;
        continue;
      }
      this.counters.eventsReceived++;
      const reason = this.registry.check(r.source, r.event);
      if (reason) {
        reject(i, reason, r);
        continue;
      }
      const ev = this.prepare(r.source, r.event, r.data, r.json, r.plugin, r.time_ms ?? now);
      if (ev) {
        events.push(ev);
        deliveries += ev.deliveries.length;
      }
      accepted++;
    }
    try {
      await this.commit(events, published);
      result.accepted += accepted;
      // A shared store may have throttled some at commit (on_change / snooze across nodes).
      result.deliveries += this.store.admitThrottled ? events.reduce((n, e) => n + e.deliveries.length, 0) : deliveries;
      this.counters.eventsAccepted += accepted;
    } catch (err) {
      if (result.stored) this.logger.error({ err, records: records.length }, 'event hooks: storing ingested records failed');
      result.stored = false;
      result.rejected += accepted;
      this.counters.eventsRejected += accepted;
      if (result.errors.length < MAX_LISTED_ERRORS) result.errors.push({ index: -1, reason: `store failure: ${(err as Error).message}` });
    }
  }

  /**
   * A native consumer for the shared queue `event_hooks` (host/vm
   * SharedQueues.consume): each item is one wire record. Records arriving in
   * the same event-loop turn are stored in one transaction.
   */
  queueConsumer(): NativeQueueConsumer {
    return (item) => {
      // Copy: the queue may reuse the buffer.
      void this.ingest([Uint8Array.prototype.slice.call(item)]);
    };
  }

  private encode(source: string, event: string, data: unknown): string {
    if (!isPlainObject(data)) {
      this.counters.eventsRejected++;
      throw new EventRejectedError(source, event, 'event data must be a JSON object');
    }
    let json: string;
    try {
      json = JSON.stringify(data);
    } catch (err) {
      this.counters.eventsRejected++;
      throw new EventRejectedError(source, event, `event data cannot be encoded as JSON: ${(err as Error).message}`);
    }
    if (Buffer.byteLength(json, 'utf8') > this.options.maxEventBytes) {
      this.counters.eventsRejected++;
      throw new EventRejectedError(source, event, `event data is larger than ${this.options.maxEventBytes} bytes`);
    }
    return json;
  }

  /** Matches hooks and applies on_change / snooze; null when no delivery results. */
  private prepare(
    source: string,
    event: string,
    data: Record<string, unknown>,
    json: string,
    plugin: string | null,
    occurredAt: number,
  ): NewEvent | null {
    const candidates = this.bySource.get(source);
    if (!candidates) return null;
    const now = this.clock.now();
    let dg: string | undefined;
    const deliveries: NewEvent['deliveries'] = [];
    for (const h of candidates) {
      if (!h.enabled || (h.event !== null && h.event !== event)) continue;
      if (h.on_change === true || (h.snooze ?? 0) > 0) {
        dg ??= digest(data, this.registry.spec(source, event)?.unique);
        if (this.store.admitThrottled) {
          // Decided by the shared store for every node, just before the commit (admitShared).
          const d = { id: deliveryId(now), hookId: h.id, origin: originOf(h, source, event, data) };
          this.sharedThrottle.set(d, { hookId: h.id, key: throttleKey(h, source, event, dg), digest: dg, onChange: h.on_change === true, snoozeMs: (h.snooze ?? 0) * 1000 });
          deliveries.push(d);
          continue;
        }
        const verdict = this.throttle.admit(h, source, event, dg, now);
        if (verdict !== 'fire') {
          if (verdict === 'snoozed') this.counters.throttledSnooze++;
          else this.counters.throttledOnChange++;
          this.logger.debug({ event_hook: h.id, source, event, verdict }, 'ignoring event_hooks event');
          continue;
        }
      }
      deliveries.push({ id: deliveryId(now), hookId: h.id, origin: originOf(h, source, event, data) });
    }
    if (deliveries.length === 0) return null;
    return { id: eventId(now), source, event, json, plugin, occurredAtMs: Math.floor(occurredAt), deliveries };
  }

  /** Commits `received` events (some may have produced no delivery), counting them. */
  private async commitCounted(events: NewEvent[], received: number): Promise<void> {
    try {
      await this.commit(events, []);
    } catch (err) {
      this.counters.eventsRejected += received;
      throw err;
    }
    this.counters.eventsAccepted += received;
  }

  /**
   * Shared stores: on_change / snooze for the cluster. Removes, in place, the
   * deliveries the store throttles, and the events left with none.
   */
  private async admitShared(events: NewEvent[]): Promise<void> {
    const decisions: ThrottleDecision[] = [];
    const of: NewDelivery[] = [];
    for (const e of events) {
      for (const d of e.deliveries) {
        const decision = this.sharedThrottle.get(d);
        if (decision) {
          decisions.push(decision);
          of.push(d);
        }
      }
    }
    if (decisions.length === 0) return;
    const verdicts = await this.store.admitThrottled!(decisions, this.clock.now());
    const dropped = new Set<NewDelivery>();
    verdicts.forEach((fire, i) => {
      if (fire) return;
      dropped.add(of[i]!);
      if (decisions[i]!.snoozeMs > 0) this.counters.throttledSnooze++;
      else this.counters.throttledOnChange++;
      this.logger.debug({ event_hook: decisions[i]!.hookId, verdict: decisions[i]!.snoozeMs > 0 ? 'snoozed' : 'unchanged' }, 'ignoring event_hooks event');
    });
    if (dropped.size === 0) return;
    for (const e of events) e.deliveries = e.deliveries.filter((d) => !dropped.has(d));
    for (let i = events.length - 1; i >= 0; i--) if (events[i]!.deliveries.length === 0) events.splice(i, 1);
  }

  /**
   * Group commit: everything accepted in one event-loop turn is written in
   * one transaction; each caller resolves once it is committed.
   */
  private async commit(events: NewEvent[], published: PublishedSource[]): Promise<void> {
    if (this.store.admitThrottled) await this.admitShared(events);
    if (events.length === 0 && published.length === 0) return;
    if (!this.batch) {
      this.batch = { events: [], published: [], waiters: [] };
      setImmediate(() => void this.flushAccept());
    }
    const b = this.batch;
    for (const e of events) b.events.push(e);
    for (const p of published) b.published.push(p);
    return new Promise((resolve, reject) => b.waiters.push({ resolve, reject }));
  }

  private flushAccept(): Promise<void> {
    const b = this.batch;
    if (!b) return this.inAccept;
    this.batch = null;
    this.inAccept = this.inAccept.then(async () => {
      try {
        await this.store.accept(b.events, b.published, this.clock.now());
      } catch (err) {
        for (const w of b.waiters) w.reject(err);
        return;
      }
      let n = 0;
      const now = this.clock.now();
      let lastOrigin: string | null = null;
      for (const e of b.events) {
        for (const d of e.deliveries) {
          // Batches are mostly one origin: tell the dispatcher once per run of the same origin.
          if (d.origin !== lastOrigin) this.dispatcher.notify(d.origin, now);
          lastOrigin = d.origin;
        }
        n += e.deliveries.length;
      }
      this.counters.deliveriesCreated += n;
      for (const w of b.waiters) w.resolve();
    });
    return this.inAccept;
  }

  private logRejected(reason: string, record?: { source?: string; event?: string; plugin?: string | null }): void {
    // At most 10 lines a second: a misbehaving plugin must not flood the log.
    const now = Date.now();
    const w = this.rejectLogWindow;
    if (now - w.start >= 1000) {
      if (w.suppressed > 0) this.logger.warn({ suppressed: w.suppressed }, 'event hooks: more records rejected (not logged)');
      w.start = now;
      w.count = 0;
      w.suppressed = 0;
    }
    if (w.count++ < 10) {
      this.logger.warn({ reason, source: record?.source, event: record?.event, plugin: record?.plugin ?? undefined }, 'event hooks: record rejected');
    } else w.suppressed++;
  }

  // ---- observability ----

  /** Counters and gauges for /metrics. */
  async metrics(): Promise<MetricSample[]> {
    let pending = 0;
    if (!this.closing) {
      await this.ready;
      pending = (await this.store.counts()).pending;
    }
    return this.counters.samples({ inFlight: this.dispatcher.inFlightCount, pending, hooks: this.hooks.size });
  }

  /** The counters only (no storage access), e.g. for a benchmark or a cheap health probe. */
  stats(): { inFlight: number } & Omit<HookCounters, 'samples'> {
    // Own fields only (samples() is on the prototype); a plain copy is much cheaper than an object rest.
    return Object.assign({ inFlight: this.dispatcher.inFlightCount }, this.counters);
  }

  /** Per-origin circuit state and attempts in flight. */
  circuits(): CircuitSnapshot[] {
    return this.origins.snapshot();
  }
}
