/**
 * The runtime: loads plugins into VMs (sharing a VM per vm_id and code),
 * owns what Envoy keeps outside VMs (shared data, shared queues, metrics,
 * foreign functions), applies the reload policy after traps, and reports
 * lifecycle events. Layers above (data plane, emulator) supply the http-call
 * transport, timers, clock and log sink.
 */
import { LogLevel, type LogLevelName, type Status } from '../abi/constants.js';
import { PluginStartError } from '../errors.js';
import type { LogSink, PluginLogRecord } from './logging.js';
import { levelFromName } from './logging.js';
import { BoundHits } from './limits.js';
import { MetricsRegistry } from './metrics.js';
import { DEFAULT_LIMITS, type DeadlineExceeded, type GuestLimits } from './deadline.js';
import { guardedModule, loadModuleFile, type ProxyWasmModule } from './module.js';
import { Plugin, type FailurePolicy, type HttpCallTransport } from './plugin.js';
import { envoyEncoding, type PropertyEncoder, type PropertyValue } from './properties.js';
import { SharedData } from './shared-data.js';
import { SharedQueues } from './shared-queues.js';
import { WasmVm } from './vm.js';

export interface TimerScheduler {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const realTimers: TimerScheduler = {
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref(); // a plugin's tick must not keep the process alive
    return t;
  },
  clearInterval(handle) {
    clearInterval(handle as NodeJS.Timeout);
  },
};

export interface Clock {
  /** Wall clock, ns since the epoch. */
  now(): bigint;
  monotonic(): bigint;
}

export const realClock: Clock = {
  now: () => BigInt(Date.now()) * 1_000_000n,
  monotonic: () => process.hrtime.bigint(),
};

export type ForeignFunction = (
  args: Buffer,
  caller: { vmId: string; plugin: string; contextId: number },
) => Uint8Array | Status;

export type RuntimeEvent =
  | { type: 'plugin_loaded'; plugin: string; vmId: string; rootId: string; sha256: string; file: string }
  | { type: 'plugin_start_failed'; plugin: string; vmId: string; reason: string }
  | {
      type: 'vm_trapped';
      vmId: string;
      callback: string;
      reason: string;
      plugins: string[];
      /** Set when the guard stopped a call past its deadline: the plugin whose call it was. */
      deadlineExceeded?: { plugin: string; deadlineMs: number };
    }
  | { type: 'vm_reloaded'; vmId: string; plugins: string[]; ok: boolean; reason?: string }
  | { type: 'plugin_unloaded'; plugin: string; vmId: string };

export interface RuntimeOptions {
  /** Envoy-strict host mode: NUL-separated property paths only, cluster-only http calls. */
  envoyStrict?: boolean;
  logLevel?: LogLevelName;
  onLog?: LogSink;
  onEvent?: (event: RuntimeEvent) => void;
  httpCalls?: HttpCallTransport;
  timers?: TimerScheduler;
  clock?: Clock;
  /** Host-level properties (dotted keys), e.g. node metadata. */
  properties?: Record<string, PropertyValue>;
  propertyEncoder?: PropertyEncoder;
  foreignFunctions?: Record<string, ForeignFunction>;
  /** How asynchronous notifications (on_queue_ready) are posted. */
  defer?: (fn: () => void) => void;
  /**
   * Minimum time between two reload attempts of one VM (failure policy
   * "reload"; Envoy: reload_config.backoff). Requests meanwhile get the
   * fail-closed answer. Default 1000.
   */
  reloadBackoffMs?: number;
  /**
   * Deadlines and memory cap of every VM unless its plugin sets its own
   * (default DEFAULT_LIMITS). Null: modules run as compiled, unguarded.
   */
  limits?: GuestLimits | null;
  /**
   * Measure the time spent in guest calls, per plugin (default: the
   * environment variable HOOKWIRE_MEASURE_WASM=1). Off, nothing is measured
   * and the call path is unchanged.
   */
  measureWasm?: boolean;
}

/** Time spent in top-level guest calls of one plugin (host calls the guest makes included). */
export interface WasmTiming {
  /** Nanoseconds, summed. */
  ns: number;
  calls: number;
}

export interface PluginSpec {
  name: string;
  /** Path of the .wasm file (or give `module`). */
  wasm?: string;
  module?: ProxyWasmModule;
  rootId?: string;
  vmId?: string;
  configuration?: string | Uint8Array;
  vmConfiguration?: string | Uint8Array;
  failurePolicy?: FailurePolicy;
  allowUnknownImports?: boolean;
  /** WASI environment variables (Envoy: vm_config.environment_variables). */
  environment?: Record<string, string>;
  /**
   * This plugin's deadlines and memory cap, each field defaulting to the
   * runtime's. The memory cap belongs to the VM: the plugin that creates it sets it.
   */
  limits?: Partial<GuestLimits>;
  /**
   * Configuration generation. Plugins of a new generation get new VMs, so a
   * reload can start and configure them while the old ones still serve.
   * Shared data stays keyed by vm_id alone and so survives reloads.
   */
  generation?: number;
}

interface VmEntry {
  vm: WasmVm;
  readonly key: string;
  readonly module: ProxyWasmModule;
  readonly vmId: string;
  readonly allowUnknownImports: boolean;
  readonly environment: readonly string[];
  readonly guard: { readonly module: WebAssembly.Module; readonly limits: GuestLimits } | null;
  readonly plugins: Plugin[];
  lastReload: number;
}

function toBuffer(v: string | Uint8Array | undefined): Buffer {
  if (v === undefined) return Buffer.alloc(0);
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export class Runtime {
  readonly envoyStrict: boolean;
  readonly logLevel: LogLevel;
  /** Guest bounds hit, by vm_id (host/vm/limits.ts). */
  readonly bounds = new BoundHits();
  readonly sharedData = new SharedData(this.bounds);
  readonly queues = new SharedQueues(this.bounds);
  readonly metrics = new MetricsRegistry(this.bounds);
  readonly foreignFunctions = new Map<string, ForeignFunction>();
  readonly timers: TimerScheduler;
  readonly clock: Clock;
  readonly propertyEncoder: PropertyEncoder;
  httpCalls: HttpCallTransport | undefined;
  readonly defer: (fn: () => void) => void;
  /** Guest call timing by plugin name, or null when not measuring (RuntimeOptions.measureWasm). */
  readonly wasmTiming: Map<string, WasmTiming> | null;

  private readonly onLog: LogSink | undefined;
  private readonly onEvent: ((e: RuntimeEvent) => void) | undefined;
  private readonly properties: Map<string, PropertyValue>;
  /** Failure policy "reload": least time between two reloads of a VM (Envoy: reload_config.backoff). */
  reloadBackoffMs: number;
  /** Default limits of guest calls, or null when modules run unguarded. */
  readonly limits: GuestLimits | null;
  private readonly entries = new Map<string, VmEntry>();
  private readonly entryOfVm = new WeakMap<WasmVm, VmEntry>();
  /** Plugins whose root returned false from proxy_on_done, until they are deleted. */
  private readonly unloads = new Map<Plugin, Promise<void>>();
  private token = 1;

  constructor(options: RuntimeOptions = {}) {
    this.envoyStrict = options.envoyStrict ?? false;
    this.logLevel = levelFromName(options.logLevel ?? 'info');
    this.onLog = options.onLog;
    this.onEvent = options.onEvent;
    this.httpCalls = options.httpCalls;
    this.timers = options.timers ?? realTimers;
    this.clock = options.clock ?? realClock;
    this.propertyEncoder = options.propertyEncoder ?? envoyEncoding;
    this.properties = new Map(Object.entries(options.properties ?? {}));
    this.defer = options.defer ?? ((fn) => void setImmediate(fn));
    this.reloadBackoffMs = options.reloadBackoffMs ?? 1000;
    this.limits = options.limits === undefined ? DEFAULT_LIMITS : options.limits;
    this.wasmTiming = (options.measureWasm ?? process.env.HOOKWIRE_MEASURE_WASM === '1') ? new Map() : null;
    for (const [name, fn] of Object.entries(options.foreignFunctions ?? {})) this.foreignFunctions.set(name, fn);
  }

  /**
   * Load a plugin: compile (or reuse) its module, find or create the VM for
   * its vm_id, create its root context, run on_vm_start and on_configure.
   * Throws WasmModuleError, UnknownImportError or PluginStartError.
   */
  async loadPlugin(spec: PluginSpec): Promise<Plugin> {
    const module = spec.module ?? (await loadModuleFile(requireWasm(spec)));
    const limits = this.limits === null ? null : { ...this.limits, ...spec.limits };
    const guarded = limits === null ? null : await guardedModule(module);
    const vmId = spec.vmId || spec.name;
    const rootId = spec.rootId ?? spec.name;
    const key = `${vmId}\0${module.sha256}\0${spec.generation ?? 0}`;
    let entry = this.entries.get(key);
    let created = false;
    if (entry && entry.plugins.some((p) => p.rootId === rootId && !p.closed)) {
      throw new PluginStartError(spec.name, `root_id ${JSON.stringify(rootId)} is already in use in VM ${JSON.stringify(vmId)}`);
    }
    if (!entry || entry.vm.poisoned !== null) {
      const environment = Object.entries(spec.environment ?? {}).map(([k, v]) => `${k}=${v}`);
      let vm: WasmVm;
      try {
        const guard = guarded === null ? null : { module: guarded, limits: limits! };
        vm = this.createVm(module, vmId, spec.allowUnknownImports ?? false, environment, guard, spec.name);
      } catch (err) {
        // A trap in _start fails the start like on_vm_start/on_configure do (module errors are not start failures).
        if (err instanceof PluginStartError) this.event({ type: 'plugin_start_failed', plugin: spec.name, vmId, reason: err.message });
        throw err;
      }
      entry = {
        vm,
        key,
        module,
        vmId,
        allowUnknownImports: spec.allowUnknownImports ?? false,
        environment,
        guard: vm.limits === null ? null : { module: guarded!, limits: vm.limits },
        plugins: entry?.plugins.filter((p) => !p.closed) ?? [],
        lastReload: 0,
      };
      created = true;
    }
    const plugin = new Plugin(this, {
      name: spec.name,
      rootId,
      vmId,
      failurePolicy: spec.failurePolicy ?? 'fail_closed',
      configuration: toBuffer(spec.configuration),
      vmConfiguration: toBuffer(spec.vmConfiguration),
      limits,
    });
    try {
      plugin.start(entry.vm);
    } catch (err) {
      this.event({ type: 'plugin_start_failed', plugin: spec.name, vmId, reason: (err as Error).message });
      throw err;
    }
    if (created) {
      this.entries.set(key, entry);
      this.entryOfVm.set(entry.vm, entry);
    }
    entry.plugins.push(plugin);
    this.event({ type: 'plugin_loaded', plugin: spec.name, vmId, rootId, sha256: module.sha256, file: module.file });
    return plugin;
  }

  private createVm(
    module: ProxyWasmModule,
    vmId: string,
    allowUnknownImports: boolean,
    environment: readonly string[],
    guard: VmEntry['guard'],
    who: string,
  ): WasmVm {
    const vm = new WasmVm(this, module, vmId, { allowUnknownImports, environment, guard });
    try {
      vm.initialize();
    } catch (err) {
      throw new PluginStartError(who, `module start function failed: ${(err as Error).message}`, { cause: err });
    }
    return vm;
  }

  /**
   * Unload a plugin as Envoy does: proxy_on_done on its root context; a root
   * that returns false keeps its ticks and http call responses until it calls
   * proxy_done, for at most `drainMs` (0: not at all), then proxy_on_delete.
   * The VM goes when its last plugin does. Resolves once the root is deleted.
   */
  unloadPlugin(plugin: Plugin, drainMs = 0): Promise<void> {
    const unloaded = () => {
      const entry = this.entryOfVm.get(plugin.vm);
      if (entry) {
        const i = entry.plugins.indexOf(plugin);
        if (i >= 0) entry.plugins.splice(i, 1);
        if (entry.plugins.length === 0 && this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
      }
      this.event({ type: 'plugin_unloaded', plugin: plugin.name, vmId: plugin.vmId });
    };
    const pending = this.unloads.get(plugin);
    if (pending) {
      if (drainMs <= 0) plugin.finishClose();
      return pending;
    }
    if (plugin.closed) return Promise.resolve();
    const unload = new Promise<void>((resolve) => {
      // A real timer, referenced: a shutdown waiting for proxy_done keeps the process up until the deadline.
      let deadline: NodeJS.Timeout | null = null;
      const closed = () => {
        if (deadline !== null) clearTimeout(deadline);
        this.unloads.delete(plugin);
        unloaded();
        resolve();
      };
      if (plugin.beginClose(closed)) return closed();
      if (drainMs <= 0) return plugin.finishClose();
      deadline = setTimeout(() => {
        this.emitLog({
          level: LogLevel.WARN,
          message: `plugin ${plugin.name} did not call proxy_done within ${drainMs} ms of proxy_on_done; unloading it now`,
          plugin: plugin.name,
          vmId: plugin.vmId,
          contextId: plugin.id,
          source: 'host',
        });
        plugin.finishClose();
      }, drainMs);
    });
    if (!plugin.closed) this.unloads.set(plugin, unload);
    return unload;
  }

  /** Close every plugin now (a plugin still waiting to call proxy_done is deleted). */
  close(): void {
    for (const entry of [...this.entries.values()]) for (const p of [...entry.plugins]) void this.unloadPlugin(p);
  }

  /** Called by a VM on its first trap. */
  vmPoisoned(vm: WasmVm, callback: string, reason: string, deadline: DeadlineExceeded | null = null): void {
    const entry = this.entryOfVm.get(vm);
    const plugins = entry ? entry.plugins.filter((p) => p.vm === vm) : [];
    for (const p of plugins) p.suspend();
    this.emitLog({ level: LogLevel.ERROR, message: `VM trapped in ${callback}: ${reason}`, plugin: null, vmId: vm.vmId, contextId: 0, source: 'host' });
    this.event({
      type: 'vm_trapped',
      vmId: vm.vmId,
      callback,
      reason,
      plugins: plugins.map((p) => p.name),
      ...(deadline && { deadlineExceeded: { plugin: deadline.plugin, deadlineMs: deadline.deadlineMs } }),
    });
  }

  /**
   * Failure policy "reload": replace a trapped VM with a fresh instance and
   * restart every plugin in it. Returns whether the VM is healthy afterwards.
   * Attempts are spaced by reloadBackoffMs so a crash loop costs little.
   */
  reloadVm(vm: WasmVm): boolean {
    const entry = this.entryOfVm.get(vm);
    if (!entry) return false;
    if (entry.vm !== vm) return entry.vm.poisoned === null; // someone reloaded it already
    const now = Date.now();
    if (now - entry.lastReload < this.reloadBackoffMs) return false;
    entry.lastReload = now;
    const names = entry.plugins.map((p) => p.name);
    let fresh: WasmVm;
    try {
      fresh = this.createVm(entry.module, entry.vmId, entry.allowUnknownImports, entry.environment, entry.guard, names.join(','));
    } catch (err) {
      this.event({ type: 'vm_reloaded', vmId: entry.vmId, plugins: names, ok: false, reason: (err as Error).message });
      return false;
    }
    entry.vm = fresh;
    this.entryOfVm.set(fresh, entry);
    for (const p of entry.plugins) {
      try {
        p.start(fresh);
        p.reloads++;
      } catch (err) {
        const reason = (err as Error).message;
        fresh.poisoned ??= reason;
        this.event({ type: 'vm_reloaded', vmId: entry.vmId, plugins: names, ok: false, reason });
        return false;
      }
    }
    this.event({ type: 'vm_reloaded', vmId: entry.vmId, plugins: names, ok: true });
    return true;
  }

  /** Every VM currently in use (for inspection and metrics). */
  vms(): WasmVm[] {
    return [...this.entries.values()].map((e) => e.vm);
  }

  emitLog(record: PluginLogRecord): void {
    if (record.level < this.logLevel) return;
    this.onLog?.(record);
  }

  private event(e: RuntimeEvent): void {
    this.onEvent?.(e);
  }

  /** The timing record of a plugin name (shared by its instances across reloads), or null when not measuring. */
  timingFor(plugin: string): WasmTiming | null {
    const all = this.wasmTiming;
    if (all === null) return null;
    let t = all.get(plugin);
    if (!t) all.set(plugin, (t = { ns: 0, calls: 0 }));
    return t;
  }

  staticProperty(key: string): PropertyValue | undefined {
    return this.properties.get(key);
  }

  setStaticProperty(key: string, value: PropertyValue): void {
    this.properties.set(key, value);
  }

  nextToken(): number {
    const t = this.token++;
    if (this.token > 0xffffffff) this.token = 1;
    return t;
  }
}

function requireWasm(spec: PluginSpec): string {
  if (!spec.wasm) throw new TypeError(`plugin ${spec.name}: give either "wasm" (a path) or "module"`);
  return spec.wasm;
}
