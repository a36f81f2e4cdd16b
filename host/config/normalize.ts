/**
 * From a document that passed the schema and the checks to the normalized
 * HookwireConfig: defaults filled from DEFAULTS, ids derived, paths made
 * absolute, plugin configuration turned into the exact string the plugin will
 * see, and the per-route plugin chains precomputed so the data plane never
 * has to work them out per request.
 */
import { resolve } from 'node:path';
import { DEFAULTS } from './defaults.js';
import { stableId } from './ids.js';
import { asArray, asObject, groupWorkspaces, type Raw, type WorkspaceGroup } from './workspaces.js';
import type {
  AdminConfig,
  ConsumerConfig,
  FailurePolicy,
  HookwireConfig,
  HttpMethod,
  Listener,
  LogLevel,
  PluginConfig,
  PluginScope,
  ProxyConfig,
  ResolvedRoute,
  RouteConfig,
  ServiceConfig,
  WasmConfig,
  WorkspaceConfig,
} from './schema.js';

export interface NormalizeContext {
  readonly source: string;
  /** Absolute directory for relative paths (the config file's directory). */
  readonly baseDir: string;
}

/**
 * The string a plugin receives for `configuration` / `vm_configuration`:
 * strings as written (a plugin may want YAML, CSV...), other JSON values as
 * JSON text, and absent or null as DEFAULTS' empty string.
 */
export function pluginString(value: unknown, fallback: string): string {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** Base directory for relative plugin `wasm` paths: modules_dir when set (itself relative to baseDir). */
export function modulesBase(root: Raw, baseDir: string): string {
  const dir = asObject(root.wasm)?.modules_dir ?? DEFAULTS.wasm.modules_dir;
  return typeof dir === 'string' ? resolve(baseDir, dir) : baseDir;
}

export function normalize(root: Raw, ctx: NormalizeContext): HookwireConfig {
  const baseDir = resolve(ctx.baseDir);
  const wasmBase = modulesBase(root, baseDir);
  const plugin = (raw: unknown, scope: PluginScope, workspace: string | null) =>
    normalizePlugin(asObject(raw)!, scope, workspace, wasmBase);

  const globalPlugins = asArray(root.plugins).map((p) => plugin(p, 'global', null));
  const workspaces = groupWorkspaces(root).groups.map((g) => normalizeWorkspace(g, plugin));

  const routes: ResolvedRoute[] = [];
  for (const workspace of workspaces) {
    for (const route of workspace.routes) {
      // The checks guarantee the service exists in the same workspace.
      const service = workspace.services.find((s) => s.name === route.service)!;
      const chain = [...globalPlugins, ...workspace.plugins, ...service.plugins, ...route.plugins];
      routes.push({ route, service, workspace, plugins: chain.filter((p) => p.enabled) });
    }
  }

  return {
    source: ctx.source,
    base_dir: baseDir,
    proxy: normalizeProxy(asObject(root.proxy) ?? {}),
    admin: normalizeAdmin(asObject(root.admin) ?? {}),
    wasm: normalizeWasm(asObject(root.wasm) ?? {}, baseDir),
    log_level: (root.log_level ?? DEFAULTS.log_level) as LogLevel,
    plugins: globalPlugins,
    workspaces,
    routes,
  };
}

function normalizeProxy(raw: Raw): ProxyConfig {
  const d = DEFAULTS.proxy;
  const listen = raw.listen === undefined ? d.listen : asArray(raw.listen);
  return {
    listen: listen.map((l) => normalizeListener(asObject(l)!, d.listener)),
    request_body_buffer_limit: (raw.request_body_buffer_limit ?? d.request_body_buffer_limit) as number,
    response_body_buffer_limit: (raw.response_body_buffer_limit ?? d.response_body_buffer_limit) as number,
    drain_timeout_ms: (raw.drain_timeout_ms ?? d.drain_timeout_ms) as number,
  };
}

function normalizeAdmin(raw: Raw): AdminConfig {
  return {
    listen: normalizeListener(asObject(raw.listen) ?? {}, DEFAULTS.admin.listen),
    token: (raw.token ?? DEFAULTS.admin.token) as string | null,
  };
}

export function normalizeListener(raw: Raw, defaults: Listener): Listener {
  return {
    address: (raw.address ?? defaults.address) as string,
    port: (raw.port ?? defaults.port) as number,
  };
}

function normalizeWasm(raw: Raw, baseDir: string): WasmConfig {
  const dir = (raw.modules_dir ?? DEFAULTS.wasm.modules_dir) as string | null;
  return {
    envoy_strict: (raw.envoy_strict ?? DEFAULTS.wasm.envoy_strict) as boolean,
    modules_dir: dir === null ? null : resolve(baseDir, dir),
  };
}

type PluginMaker = (raw: unknown, scope: PluginScope, workspace: string | null) => PluginConfig;

function normalizeWorkspace(group: WorkspaceGroup, plugin: PluginMaker): WorkspaceConfig {
  const name = group.name;
  const workspaceId = stableId(null, 'workspace', name);
  const owner = { workspace: name, workspace_id: workspaceId };
  const all = (key: 'plugins' | 'services' | 'routes' | 'consumers') =>
    group.sources.flatMap((s) => (key === 'plugins' && !s.ownsPlugins ? [] : asArray(s.doc[key]).map((e) => asObject(e)!)));

  const services = all('services').map((raw): ServiceConfig => {
    const d = DEFAULTS.service;
    const serviceName = raw.name as string;
    return {
      id: stableId(name, 'service', serviceName),
      name: serviceName,
      ...owner,
      urls: raw.urls !== undefined ? [...(raw.urls as string[])] : [raw.url as string],
      connect_timeout_ms: (raw.connect_timeout_ms ?? d.connect_timeout_ms) as number,
      read_timeout_ms: (raw.read_timeout_ms ?? d.read_timeout_ms) as number,
      pool_size: (raw.pool_size ?? d.pool_size) as number,
      plugins: asArray(raw.plugins).map((p) => plugin(p, 'service', name)),
    };
  });

  const routes = all('routes').map((raw): RouteConfig => {
    const d = DEFAULTS.route;
    const serviceName = raw.service as string;
    return {
      id: stableId(name, 'route', raw.name as string),
      name: raw.name as string,
      ...owner,
      service: serviceName,
      service_id: stableId(name, 'service', serviceName),
      // Host names are case-insensitive; lower-case once here, not per request.
      hosts: ((raw.hosts ?? d.hosts) as string[]).map((h) => h.toLowerCase()),
      paths: [...((raw.paths ?? d.paths) as string[])],
      methods: [...((raw.methods ?? d.methods) as HttpMethod[])],
      strip_path: (raw.strip_path ?? d.strip_path) as boolean,
      plugins: asArray(raw.plugins).map((p) => plugin(p, 'route', name)),
    };
  });

  const consumers = all('consumers').map(
    (raw): ConsumerConfig => ({
      id: stableId(name, 'consumer', raw.username as string),
      username: raw.username as string,
      custom_id: (raw.custom_id ?? DEFAULTS.consumer.custom_id) as string | null,
      ...owner,
    }),
  );

  return {
    id: workspaceId,
    name,
    plugins: all('plugins').map((p) => plugin(p, 'workspace', name)),
    services,
    routes,
    consumers,
  };
}

function normalizePlugin(raw: Raw, scope: PluginScope, workspace: string | null, wasmBase: string): PluginConfig {
  const d = DEFAULTS.plugin;
  const name = raw.name as string;
  return {
    id: stableId(workspace, 'plugin', name),
    name,
    scope,
    workspace,
    workspace_id: workspace === null ? null : stableId(null, 'workspace', workspace),
    wasm: resolve(wasmBase, raw.wasm as string),
    // DEFAULTS says null, meaning "the plugin's name".
    root_id: (raw.root_id ?? d.root_id ?? name) as string,
    vm_id: (raw.vm_id ?? d.vm_id ?? name) as string,
    configuration: pluginString(raw.configuration, d.configuration),
    vm_configuration: pluginString(raw.vm_configuration, d.vm_configuration),
    failure_policy: (raw.failure_policy ?? d.failure_policy) as FailurePolicy,
    allow_unknown_imports: (raw.allow_unknown_imports ?? d.allow_unknown_imports) as boolean,
    enabled: (raw.enabled ?? d.enabled) as boolean,
  };
}
