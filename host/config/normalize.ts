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
  EventHooksConfig,
  FailurePolicy,
  HookwireConfig,
  HttpMethod,
  Listener,
  LogLevel,
  PluginConfig,
  PluginLimits,
  PluginScope,
  ProxyConfig,
  ResolvedRoute,
  RouteConfig,
  ServiceConfig,
  StorageConfig,
  TlsConfig,
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
  const workspaces = groupWorkspaces(root).groups.map((g) => normalizeWorkspace(g, plugin, baseDir));

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
    proxy: normalizeProxy(asObject(root.proxy) ?? {}, baseDir),
    admin: normalizeAdmin(asObject(root.admin) ?? {}, baseDir),
    wasm: normalizeWasm(asObject(root.wasm) ?? {}, baseDir),
    log_level: (root.log_level ?? DEFAULTS.log_level) as LogLevel,
    event_hooks: normalizeEventHooks(asObject(root.event_hooks) ?? {}, baseDir),
    storage: normalizeStorage(asObject(root.storage) ?? {}, baseDir),
    plugins: globalPlugins,
    workspaces,
    routes,
  };
}

function normalizeProxy(raw: Raw, baseDir: string): ProxyConfig {
  const d = DEFAULTS.proxy;
  const listen = raw.listen === undefined ? d.listen : asArray(raw.listen);
  return {
    listen: listen.map((l) => normalizeListener(asObject(l)!, d.listener, baseDir)),
    request_body_buffer_limit: (raw.request_body_buffer_limit ?? d.request_body_buffer_limit) as number,
    response_body_buffer_limit: (raw.response_body_buffer_limit ?? d.response_body_buffer_limit) as number,
    drain_timeout_ms: (raw.drain_timeout_ms ?? d.drain_timeout_ms) as number,
    workers: (raw.workers ?? d.workers) as number | 'auto',
  };
}

function normalizeAdmin(raw: Raw, baseDir: string): AdminConfig {
  return {
    listen: normalizeListener(asObject(raw.listen) ?? {}, DEFAULTS.admin.listen, baseDir),
    token: (raw.token ?? DEFAULTS.admin.token) as string | null,
    allow_plaintext_off_loopback: (raw.allow_plaintext_off_loopback ?? DEFAULTS.admin.allow_plaintext_off_loopback) as boolean,
  };
}

export function normalizeListener(raw: Raw, defaults: Pick<Listener, 'address' | 'port'>, baseDir = '.'): Listener {
  return {
    address: (raw.address ?? defaults.address) as string,
    port: (raw.port ?? defaults.port) as number,
    tls: normalizeTls(asObject(raw.tls), baseDir),
    http2: raw.http2 === true,
  };
}

/** File paths are resolved against the config file's directory. */
function normalizeTls(raw: Raw | undefined, baseDir: string): TlsConfig | null {
  if (raw === undefined) return null;
  const d = DEFAULTS.tls;
  const ca = (raw.client_ca ?? d.client_ca) as string | null;
  return {
    certificates: asArray(raw.certificates).map((c) => {
      const pair = asObject(c) ?? {};
      return { cert: resolve(baseDir, String(pair.cert)), key: resolve(baseDir, String(pair.key)) };
    }),
    min_version: (raw.min_version ?? d.min_version) as TlsConfig['min_version'],
    ciphers: (raw.ciphers ?? d.ciphers) as string | null,
    verify_client: (raw.verify_client ?? d.verify_client) as TlsConfig['verify_client'],
    client_ca: ca === null ? null : resolve(baseDir, ca),
  };
}

function normalizeWasm(raw: Raw, baseDir: string): WasmConfig {
  const dir = (raw.modules_dir ?? DEFAULTS.wasm.modules_dir) as string | null;
  return {
    envoy_strict: (raw.envoy_strict ?? DEFAULTS.wasm.envoy_strict) as boolean,
    modules_dir: dir === null ? null : resolve(baseDir, dir),
    http_call_targets: [...((raw.http_call_targets ?? DEFAULTS.wasm.http_call_targets) as string[])],
    call_deadline_ms: (raw.call_deadline_ms ?? DEFAULTS.wasm.call_deadline_ms) as number,
    start_deadline_ms: (raw.start_deadline_ms ?? DEFAULTS.wasm.start_deadline_ms) as number,
    max_memory_mb: (raw.max_memory_mb ?? DEFAULTS.wasm.max_memory_mb) as number,
    reload_backoff_ms: (raw.reload_backoff_ms ?? DEFAULTS.wasm.reload_backoff_ms) as number,
    watchdog_ms: (raw.watchdog_ms ?? DEFAULTS.wasm.watchdog_ms) as number,
  };
}

function normalizeStorage(raw: Raw, baseDir: string): StorageConfig {
  const path = (raw.path ?? DEFAULTS.storage.path) as string;
  const pool = asObject(raw.pool) ?? {};
  const d = DEFAULTS.storage.pool;
  return {
    kind: (raw.kind ?? DEFAULTS.storage.kind) as StorageConfig['kind'],
    path: path === MEMORY_STORE ? path : resolve(baseDir, path),
    url: (raw.url ?? DEFAULTS.storage.url) as string | null,
    pool: {
      max: (pool.max ?? d.max) as number,
      idle_timeout_ms: (pool.idle_timeout_ms ?? d.idle_timeout_ms) as number,
      connect_timeout_ms: (pool.connect_timeout_ms ?? d.connect_timeout_ms) as number,
    },
    poll_interval_ms: (raw.poll_interval_ms ?? DEFAULTS.storage.poll_interval_ms) as number,
  };
}

/** The SQLite name of an in-memory database: kept as is, never resolved as a path. */
export const MEMORY_STORE = ':memory:';

function normalizeEventHooks(raw: Raw, baseDir: string): EventHooksConfig {
  const d = DEFAULTS.event_hooks;
  const delivery = asObject(raw.delivery) ?? {};
  const circuit = asObject(raw.circuit) ?? {};
  const pick = <T>(obj: Raw, key: string, fallback: T): T => (obj[key] ?? fallback) as T;
  const store = pick(raw, 'store', d.store);
  return {
    enabled: pick(raw, 'enabled', d.enabled),
    store: store === MEMORY_STORE ? store : resolve(baseDir, store),
    synchronous: pick(raw, 'synchronous', d.synchronous),
    ingest_token: pick(raw, 'ingest_token', d.ingest_token),
    ingest_body_limit: pick(raw, 'ingest_body_limit', d.ingest_body_limit),
    ingest_max_events: pick(raw, 'ingest_max_events', d.ingest_max_events),
    allow_hosts: [...pick(raw, 'allow_hosts', d.allow_hosts)],
    allow_cidrs: [...pick(raw, 'allow_cidrs', d.allow_cidrs)],
    ping_on_change: pick(raw, 'ping_on_change', d.ping_on_change),
    max_event_bytes: pick(raw, 'max_event_bytes', d.max_event_bytes),
    retention_ms: pick(raw, 'retention_ms', d.retention_ms),
    sweep_interval_ms: pick(raw, 'sweep_interval_ms', d.sweep_interval_ms),
    close_timeout_ms: pick(raw, 'close_timeout_ms', d.close_timeout_ms),
    delivery: {
      retry_schedule_ms: [...pick(delivery, 'retry_schedule_ms', d.delivery.retry_schedule_ms)],
      jitter: pick(delivery, 'jitter', d.delivery.jitter),
      retry_after_cap_ms: pick(delivery, 'retry_after_cap_ms', d.delivery.retry_after_cap_ms),
      timeout_ms: pick(delivery, 'timeout_ms', d.delivery.timeout_ms),
      connect_timeout_ms: pick(delivery, 'connect_timeout_ms', d.delivery.connect_timeout_ms),
      lease_ms: pick(delivery, 'lease_ms', d.delivery.lease_ms),
      response_excerpt_bytes: pick(delivery, 'response_excerpt_bytes', d.delivery.response_excerpt_bytes),
      max_in_flight: pick(delivery, 'max_in_flight', d.delivery.max_in_flight),
      per_origin_concurrency: pick(delivery, 'per_origin_concurrency', d.delivery.per_origin_concurrency),
      poll_interval_ms: pick(delivery, 'poll_interval_ms', d.delivery.poll_interval_ms),
    },
    circuit: {
      failure_threshold: pick(circuit, 'failure_threshold', d.circuit.failure_threshold),
      failure_ratio: pick(circuit, 'failure_ratio', d.circuit.failure_ratio),
      min_requests: pick(circuit, 'min_requests', d.circuit.min_requests),
      window_ms: pick(circuit, 'window_ms', d.circuit.window_ms),
      cool_down_ms: pick(circuit, 'cool_down_ms', d.circuit.cool_down_ms),
    },
  };
}

type PluginMaker = (raw: unknown, scope: PluginScope, workspace: string | null) => PluginConfig;

function normalizeWorkspace(group: WorkspaceGroup, plugin: PluginMaker, baseDir: string): WorkspaceConfig {
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
      http2: (raw.http2 ?? d.http2) as boolean,
      // Relative to the config file's directory, as the listeners' certificate files.
      ca_file: typeof raw.ca_file === 'string' ? resolve(baseDir, raw.ca_file) : d.ca_file,
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
    limits: normalizePluginLimits(asObject(raw.limits) ?? {}),
  };
}

function normalizePluginLimits(raw: Raw): PluginLimits {
  const d = DEFAULTS.plugin.limits;
  return {
    call_deadline_ms: (raw.call_deadline_ms ?? d.call_deadline_ms) as number | null,
    start_deadline_ms: (raw.start_deadline_ms ?? d.start_deadline_ms) as number | null,
    max_memory_mb: (raw.max_memory_mb ?? d.max_memory_mb) as number | null,
  };
}
