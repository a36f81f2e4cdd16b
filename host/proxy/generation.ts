/**
 * A generation: everything one configuration needs to serve traffic (its
 * plugins, started and configured; its router; its upstream targets). A
 * reload builds a new generation next to the serving one and swaps; the old
 * one is retired and released once its in-flight requests are done.
 */
import type { HookwireConfig, PluginConfig, ResolvedRoute, WasmConfig } from '../config/schema.js';
import type { GuestLimits } from '../vm/deadline.js';
import { loadModuleFile, type ProxyWasmModule } from '../vm/module.js';
import type { Plugin } from '../vm/plugin.js';
import type { PluginSpec, Runtime } from '../vm/runtime.js';
import type { GatewayMetrics, RouteStats } from './metrics.js';
import { Router } from './router.js';
import { PoolRegistry, serviceTargets, type UpstreamTarget } from './upstream.js';

/** One route as the data plane serves it. */
export interface RouteEntry {
  readonly resolved: ResolvedRoute;
  /** Plugins in configured (request) order. */
  readonly chain: readonly Plugin[];
  readonly targets: readonly UpstreamTarget[];
  readonly stats: RouteStats;
  readonly generation: Generation;
  /** Round-robin cursor over `targets`. */
  next: number;
}

/** Every enabled plugin entry of a configuration, once each (names are unique). */
export function allPlugins(config: HookwireConfig): PluginConfig[] {
  const seen = new Map<string, PluginConfig>();
  const add = (list: readonly PluginConfig[]) => {
    for (const p of list) if (p.enabled && !seen.has(p.name)) seen.set(p.name, p);
  };
  add(config.plugins);
  for (const ws of config.workspaces) {
    add(ws.plugins);
    for (const s of ws.services) add(s.plugins);
    for (const r of ws.routes) add(r.plugins);
  }
  return [...seen.values()];
}

/** What the runtime needs to start one configured plugin (its module given separately). */
export function pluginSpec(p: PluginConfig, module: ProxyWasmModule, generation: number, wasm: WasmConfig): PluginSpec {
  return {
    name: p.name,
    module,
    rootId: p.root_id,
    vmId: p.vm_id,
    configuration: p.configuration,
    vmConfiguration: p.vm_configuration,
    failurePolicy: p.failure_policy,
    allowUnknownImports: p.allow_unknown_imports,
    limits: guestLimits(wasm, p),
    generation,
  };
}

export class Generation {
  readonly number: number;
  readonly config: HookwireConfig;
  readonly router: Router<RouteEntry>;
  /** Loaded plugins by name. */
  readonly plugins: ReadonlyMap<string, Plugin>;
  /** proxy_http_call clusters: service name (first workspace that has it) to its first target. */
  readonly clusters: ReadonlyMap<string, UpstreamTarget>;
  /** Requests being served by this generation. */
  inflight = 0;
  retired = false;
  released = false;
  private readonly poolKeys: string[];
  private onDrained: (() => void) | null = null;
  private unloaded: Promise<void> | null = null;

  private constructor(
    number: number,
    config: HookwireConfig,
    plugins: Map<string, Plugin>,
    registry: PoolRegistry,
    metrics: GatewayMetrics,
  ) {
    this.number = number;
    this.config = config;
    this.plugins = plugins;
    const clusters = new Map<string, UpstreamTarget>();
    const poolKeys: string[] = [];
    const targetsOf = new Map<string, UpstreamTarget[]>();
    try {
      for (const ws of config.workspaces) {
        for (const service of ws.services) {
          const targets = serviceTargets(service, registry);
          for (const t of targets) poolKeys.push(t.poolKey);
          targetsOf.set(service.id, targets);
          if (!clusters.has(service.name)) clusters.set(service.name, targets[0]!);
        }
      }
    } catch (err) {
      // A service's ca_file could not be used: give back the pools the services before it took.
      for (const key of poolKeys) registry.release(key);
      throw err;
    }
    this.poolKeys = poolKeys;
    this.clusters = clusters;
    this.router = new Router(
      config.routes.map((resolved) => ({
        hosts: resolved.route.hosts,
        paths: resolved.route.paths,
        methods: resolved.route.methods,
        value: {
          resolved,
          chain: resolved.plugins.map((p) => plugins.get(p.name)!),
          targets: targetsOf.get(resolved.service.id)!,
          stats: metrics.route({ route: resolved.route.name, service: resolved.service.name, workspace: resolved.workspace.name }),
          generation: this,
          next: 0,
        } satisfies RouteEntry,
      })),
    );
  }

  /**
   * Start every enabled plugin of `config` in fresh VMs (generation `number`)
   * and build the router. On any failure the plugins already started are
   * unloaded and the error is rethrown; nothing else changes.
   */
  static async load(
    runtime: Runtime,
    config: HookwireConfig,
    number: number,
    registry: PoolRegistry,
    metrics: GatewayMetrics,
  ): Promise<Generation> {
    const plugins = new Map<string, Plugin>();
    const modules = new Map<string, ProxyWasmModule>();
    try {
      // Sequential: plugins sharing a vm_id must find the VM the previous one created.
      for (const p of allPlugins(config)) {
        let module = modules.get(p.wasm);
        if (!module) {
          module = await loadModuleFile(p.wasm);
          modules.set(p.wasm, module);
        }
        const plugin = await runtime.loadPlugin(pluginSpec(p, module, number, config.wasm));
        plugins.set(p.name, plugin);
      }
      return new Generation(number, config, plugins, registry, metrics);
    } catch (err) {
      for (const plugin of plugins.values()) void runtime.unloadPlugin(plugin);
      throw err;
    }
  }

  /** Stop taking new requests; `onDrained` runs once the last in-flight one is done. */
  retire(onDrained: () => void): void {
    this.retired = true;
    this.onDrained = onDrained;
    if (this.inflight === 0) this.drained();
  }

  /** Called by the data plane when one of this generation's requests is done. */
  requestDone(): void {
    if (--this.inflight === 0 && this.retired) this.drained();
  }

  private drained(): void {
    const fn = this.onDrained;
    this.onDrained = null;
    fn?.();
  }

  /**
   * Unload the plugins (root on_done / on_delete; a root that returns false
   * from on_done keeps running, with its ticks and http calls, until it calls
   * proxy_done or `drainMs` passes) and then release the pools. Resolves when
   * every plugin is unloaded. Idempotent.
   */
  release(runtime: Runtime, registry: PoolRegistry, drainMs = 0): Promise<void> {
    if (this.released) return this.unloaded ?? Promise.resolve();
    this.released = true;
    const unloads = [...this.plugins.values()].map((plugin) => runtime.unloadPlugin(plugin, drainMs));
    this.unloaded = Promise.all(unloads).then(() => {
      for (const key of this.poolKeys) registry.release(key);
    });
    return this.unloaded;
  }
}

/** A plugin's deadlines and memory cap: its own `limits`, else the `wasm` section's. */
export function guestLimits(wasm: WasmConfig, p: PluginConfig): GuestLimits {
  return {
    callDeadlineMs: p.limits.call_deadline_ms ?? wasm.call_deadline_ms,
    startDeadlineMs: p.limits.start_deadline_ms ?? wasm.start_deadline_ms,
    maxMemoryMb: p.limits.max_memory_mb ?? wasm.max_memory_mb,
  };
}
