/**
 * The composition root: the event-hooks service, the gateway (proxy
 * listeners, plugins) and the admin listener with the Admin API.
 * `hookwire start` runs this; tests and embedders can too.
 *
 * Start order: the entity store (storage.kind sqlite: the entities served
 * are the store's, see storage.ts), the event-hooks service (store opened, pending deliveries of a
 * previous run resumed), then the gateway, whose runtime hands the shared
 * queue `event_hooks` of VM `hookwire_event_hooks` to the service natively
 * (attached before any plugin loads, so the plugins' publish records arrive
 * first) and its lifecycle events to the built-in `wasm` source; then the
 * admin listener.
 *
 * Close order: stop accepting (admin and proxy), drain the gateway, then
 * close the event-hooks service, which lets deliveries in flight finish
 * (event_hooks.close_timeout_ms) and closes the store, then the entity store.
 *
 * `hookwire start --workers N` (workers.ts): worker 1 runs startHookwire,
 * the others startDataWorker (gateway and entity store only).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { registerAdminApi } from '../admin/api.js';
import { ConfigEntities } from '../admin/entities.js';
import { AdminServer } from '../admin/server.js';
import { registerUi } from '../admin/ui.js';
import { MEMORY_STORE } from '../config/normalize.js';
import type { EventHooksConfig, HookwireConfig } from '../config/schema.js';
import { EventHooks, EVENT_HOOKS_QUEUE } from '../hooks/service.js';
import type { EventHooksOptions } from '../hooks/options.js';
import { Gateway, type GatewayOptions, type ListenerInfo, type ReloadResult } from '../proxy/gateway.js';
import { ReloadError } from '../proxy/errors.js';
import type { RuntimeEvent } from '../vm/runtime.js';
import { PgEventHookStore } from '../hooks/pg-store.js';
import type { WorkerPeers } from '../admin/api.js';
import { entitiesOf, type EntitiesDocument } from '../config/entities.js';
import { configWithEntities, EntityStorage } from './storage.js';

/** The event-hooks store in the shared PostgreSQL database of `storage`. */
function pgEventHookStore(config: HookwireConfig): PgEventHookStore {
  const s = config.storage;
  return new PgEventHookStore(s.url!, {
    pool: { max: s.pool.max, idleTimeoutMs: s.pool.idle_timeout_ms, connectTimeoutMs: s.pool.connect_timeout_ms },
    pollIntervalMs: s.poll_interval_ms,
  });
}

export interface HookwireOptions extends GatewayOptions {
  logger: Logger;
  /** Overrides of the event-hooks service's options (tests: clock, random, ssrf lookup...). */
  eventHooks?: Partial<EventHooksOptions>;
  /** `--workers`: the other workers' reports, for /metrics and /status of the whole node. */
  workers?: WorkerPeers;
  /** DB-less: entities replaced through POST /config (`--workers`: the other workers are given them too). */
  onEntitiesReplaced?: (entities: EntitiesDocument) => void;
}

/** `--workers`: a data-plane worker's own event-hooks records and runtime events, sent to the worker that owns the service. */
export interface EventForwarder {
  record(item: Uint8Array): void;
  runtimeEvent(e: RuntimeEvent): void;
}

/** A data-plane worker (`--workers`): proxy listeners and plugins, entities from the shared store; no admin listener, no event-hooks service. */
export interface DataWorker {
  readonly gateway: Gateway;
  readonly storage: EntityStorage;
  /** SIGHUP. */
  reloadFromFile(): Promise<ReloadResult>;
  /** DB-less: serve `entities` with this worker's node settings (POST /config on the control worker). */
  replaceEntities(entities: EntitiesDocument): Promise<ReloadResult>;
  close(options?: { drainTimeoutMs?: number }): Promise<void>;
}

export interface Hookwire {
  readonly gateway: Gateway;
  readonly admin: AdminServer;
  readonly adminListener: ListenerInfo;
  /** Null when event_hooks.enabled is false. */
  readonly hooks: EventHooks | null;
  /** Where entities live (DB-less or the store). */
  readonly storage: EntityStorage;
  /** Serve `config` and, with a store, keep its entities (what the Admin API calls after validating a change). */
  reload(config: HookwireConfig): Promise<ReloadResult>;
  /** SIGHUP: re-read the configuration file; with a store, its node settings are served with the stored entities. */
  reloadFromFile(): Promise<ReloadResult>;
  /** Stop accepting, drain the proxy, close the admin listener, then the event-hooks service. */
  close(options?: { drainTimeoutMs?: number }): Promise<void>;
}

/** The event-hooks service's options from the configuration's event_hooks section. */
export function eventHooksOptions(c: EventHooksConfig, logger: Logger): EventHooksOptions {
  return {
    database: c.store,
    synchronous: c.synchronous,
    logger,
    ssrf: { allowHosts: c.allow_hosts, allowCidrs: c.allow_cidrs },
    delivery: {
      retrySchedule: c.delivery.retry_schedule_ms,
      jitter: c.delivery.jitter,
      retryAfterCapMs: c.delivery.retry_after_cap_ms,
      timeoutMs: c.delivery.timeout_ms,
      connectTimeoutMs: c.delivery.connect_timeout_ms,
      leaseMs: c.delivery.lease_ms,
      responseExcerptBytes: c.delivery.response_excerpt_bytes,
      maxInFlight: c.delivery.max_in_flight,
      perOriginConcurrency: c.delivery.per_origin_concurrency,
      pollIntervalMs: c.delivery.poll_interval_ms,
    },
    circuit: {
      failureThreshold: c.circuit.failure_threshold,
      failureRatio: c.circuit.failure_ratio,
      minRequests: c.circuit.min_requests,
      windowMs: c.circuit.window_ms,
      coolDownMs: c.circuit.cool_down_ms,
    },
    retentionMs: c.retention_ms,
    sweepIntervalMs: c.sweep_interval_ms,
    maxEventBytes: c.max_event_bytes,
    pingOnChange: c.ping_on_change,
  };
}

/** Opens the store (creating its directory) and starts delivering. */
async function startEventHooks(c: EventHooksConfig, logger: Logger, overrides: Partial<EventHooksOptions>): Promise<EventHooks> {
  let hooks: EventHooks;
  try {
    if (c.store !== MEMORY_STORE && overrides.store === undefined) mkdirSync(dirname(c.store), { recursive: true });
    const base = eventHooksOptions(c, logger);
    hooks = new EventHooks({
      ...base,
      ...overrides,
      ssrf: { ...base.ssrf, ...overrides.ssrf },
      delivery: { ...base.delivery, ...overrides.delivery },
      circuit: { ...base.circuit, ...overrides.circuit },
    });
    await hooks.start();
  } catch (err) {
    throw new Error(`event hooks store ${c.store}: ${(err as Error).message}`, { cause: err });
  }
  logger.info({ store: c.store, ingest: c.ingest_token !== null }, 'event hooks started');
  return hooks;
}

/** Start the event-hooks service, the gateway, then the admin listener with the Admin API. */
export async function startHookwire(fileConfig: HookwireConfig, options: HookwireOptions): Promise<Hookwire> {
  const logger = options.logger;
  const { storage, config } = await EntityStorage.open(fileConfig, logger);
  let hooks: EventHooks | null;
  // storage.kind postgres: the outbox lives in the shared database too (every node delivers from it).
  const hookStore = config.event_hooks.enabled && config.storage.kind === 'postgres' ? pgEventHookStore(config) : null;
  try {
    // wasm hooks' module paths resolve under wasm.modules_dir, as plugins' do.
    const overrides = { modulesDir: config.wasm.modules_dir, ...options.eventHooks, ...(hookStore ? { store: hookStore } : {}) };
    hooks = config.event_hooks.enabled ? await startEventHooks(config.event_hooks, logger, overrides) : null;
  } catch (err) {
    await hookStore?.close();
    await storage.close();
    throw err;
  }
  const closeHooks = async () => {
    await (hooks?.close({ timeoutMs: config.event_hooks.close_timeout_ms }) ?? Promise.resolve());
    await hookStore?.close();
    await storage.close();
  };

  let onRuntimeEvent = options.onRuntimeEvent;
  if (hooks) {
    const sink = hooks.runtimeEventSink();
    const also = options.onRuntimeEvent;
    onRuntimeEvent = (e: RuntimeEvent) => {
      sink(e);
      also?.(e);
    };
  }
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, {
      ...options,
      onRuntimeEvent,
      beforeLoad: (runtime) => {
        // Envoy-strict: the host behaves as Envoy does and has no native consumer; plugin
        // events reach the service only through a forwarder and the ingest endpoint.
        if (hooks && !config.wasm.envoy_strict) runtime.queues.consume(EVENT_HOOKS_QUEUE.vmId, EVENT_HOOKS_QUEUE.name, hooks.queueConsumer());
        options.beforeLoad?.(runtime);
      },
    });
  } catch (err) {
    await closeHooks();
    throw err;
  }

  const sync = entitySync(gateway, storage, logger, options.onEntitiesReplaced);
  const admin = new AdminServer({ token: config.admin.token, logger });
  const entities = new ConfigEntities({
    config: () => gateway.config,
    reload: sync.applyChange,
    dbLess: storage.dbLess,
    logger,
    async changed(kind, operation, entity, old) {
      if (!hooks || hooks.closed) return;
      try {
        await hooks.emitCrud(kind, operation, entity, old);
      } catch (err) {
        // The change is applied; losing its announcement must not fail the request.
        logger.error({ err, entity: kind, operation }, 'event hooks: crud event lost');
      }
    },
  });
  registerAdminApi(admin, { gateway, hooks, entities, admin, logger, eventHooks: config.event_hooks, workers: options.workers ?? null });
  registerUi(admin);

  let adminListener: ListenerInfo;
  try {
    adminListener = await admin.listen(config.admin.listen);
  } catch (err) {
    await gateway.close({ drainTimeoutMs: 0 });
    await closeHooks();
    throw err;
  }
  try {
    await storage.watch(sync.syncFromStore);
  } catch (err) {
    await admin.close({ graceMs: 0 });
    await gateway.close({ drainTimeoutMs: 0 });
    await closeHooks();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    gateway,
    admin,
    adminListener,
    hooks,
    storage,
    reload: sync.applyChange,
    async reloadFromFile() {
      // The admin listener's certificates change with the proxy's and the configuration, or not at all.
      let switchAdmin: (() => void) | null;
      try {
        switchAdmin = admin.prepareCertificateReload();
      } catch (cause) {
        const err = new ReloadError('tls', gateway.generation, (cause as Error).message, { cause });
        logger.error({ code: err.code, stage: err.stage, listener: 'admin' }, err.message);
        throw err;
      }
      const result = await sync.serialized(() => gateway.reloadFromFile(undefined, (file) => storage.reloaded(file)));
      if (switchAdmin !== null) {
        switchAdmin();
        logger.info('admin TLS certificates reloaded');
      }
      return result;
    },
    close(opts) {
      closing ??= (async () => {
        const drainMs = opts?.drainTimeoutMs ?? gateway.config.proxy.drain_timeout_ms;
        // Both listeners stop accepting now; admin requests being handled (an ingest batch being stored) may finish.
        const adminClosed = admin.close({ graceMs: drainMs });
        await gateway.close(opts);
        await adminClosed;
        await closeHooks();
      })();
      return closing;
    },
  };
}

/**
 * Entity changes, ours and other writers', one at a time: a write never
 * interleaves with a reload of another node's (or worker's).
 */
function entitySync(gateway: Gateway, storage: EntityStorage, logger: Logger, onEntitiesReplaced?: (entities: EntitiesDocument) => void) {
  let entityChain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = entityChain.then(fn);
    entityChain = run.catch(() => undefined);
    return run;
  };
  /** An Admin API change: served, then stored before it is acknowledged (a failed store puts the previous one back). */
  const applyChange = (next: HookwireConfig): Promise<ReloadResult> =>
    serialized(async () => {
      const previous = gateway.config;
      const result = await gateway.reload(next);
      if (storage.dbLess) {
        onEntitiesReplaced?.(entitiesOf(next));
        return result;
      }
      try {
        await storage.persist(next);
      } catch (err) {
        logger.error({ err, code: (err as { code?: string }).code }, 'storing an Admin API change failed: serving the previous configuration again');
        await gateway.reload(previous).catch((e: unknown) => logger.error({ err: e }, 'restoring the previous configuration failed'));
        throw err;
      }
      return result;
    });
  // Another node or worker wrote the entities: serve the stored ones, with this process's settings.
  let syncQueued = false;
  const syncFromStore = (): void => {
    if (syncQueued) return;
    syncQueued = true;
    void serialized(async () => {
      syncQueued = false;
      if (gateway.closed) return;
      const changed = await storage.changedElsewhere(gateway.config);
      if (changed === null) return;
      const r = await gateway.reload(changed.config);
      storage.serving(changed.version);
      logger.info({ version: changed.version, generation: r.generation }, 'entities changed in the store (another node or worker): reloaded');
    }).catch((err: unknown) => logger.error({ err, code: (err as { code?: string }).code }, 'reloading the entities another node stored failed'));
  };
  return { serialized, applyChange, syncFromStore };
}

/**
 * A data-plane worker of `hookwire start --workers N`: the gateway on the
 * shared listeners, serving the shared store's entities and following its
 * changes. The event-hooks records its plugins publish and its runtime
 * events go to `forward` (the control worker runs the one event-hooks service).
 */
export async function startDataWorker(fileConfig: HookwireConfig, options: GatewayOptions & { logger: Logger; forward: EventForwarder }): Promise<DataWorker> {
  const { logger, forward } = options;
  const { storage, config } = await EntityStorage.open(fileConfig, logger);
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, {
      ...options,
      onRuntimeEvent: (e) => {
        if (config.event_hooks.enabled) forward.runtimeEvent(e);
        options.onRuntimeEvent?.(e);
      },
      beforeLoad: (runtime) => {
        // As the control worker's own consumer does (see startHookwire), but the records travel to it.
        if (config.event_hooks.enabled && !config.wasm.envoy_strict) {
          runtime.queues.consume(EVENT_HOOKS_QUEUE.vmId, EVENT_HOOKS_QUEUE.name, (item) => forward.record(Uint8Array.prototype.slice.call(item)));
        }
        options.beforeLoad?.(runtime);
      },
    });
  } catch (err) {
    await storage.close();
    throw err;
  }
  const sync = entitySync(gateway, storage, logger);
  try {
    await storage.watch(sync.syncFromStore);
  } catch (err) {
    await gateway.close({ drainTimeoutMs: 0 });
    await storage.close();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    gateway,
    storage,
    reloadFromFile: () => sync.serialized(() => gateway.reloadFromFile(undefined, (file) => storage.reloaded(file))),
    replaceEntities: (entities) => sync.serialized(() => gateway.reload(configWithEntities(gateway.config, entities, gateway.config.source))),
    close(opts) {
      closing ??= (async () => {
        await gateway.close(opts);
        await storage.close();
      })();
      return closing;
    },
  };
}
