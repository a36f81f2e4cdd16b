/**
 * The way back: a declarative document (the input of validateConfigObject)
 * that describes a normalized HookwireConfig exactly. The Admin API edits
 * this document and validates it again, and GET /config serves it, so
 * operators can save what the Admin API changed.
 *
 * `toDocument(config)` gives the explicit form: every workspace, `default`
 * included, is an entry of `workspaces` (so each entity has one obvious
 * place to edit); `compactDocument(doc)` moves the default workspace's
 * services, routes and consumers back to the top level, as people write it.
 * Both validate to a configuration that behaves the same as `config`: paths
 * are absolute, every value is explicit, except root_id / vm_id equal to the
 * plugin's name and empty plugin configurations, which are left out.
 */
import { inputCopy } from '../input.js';
import { DEFAULTS } from './defaults.js';
import type {
  ConsumerConfig,
  EventHooksConfig,
  HookwireConfig,
  Listener,
  PluginConfig,
  RouteConfig,
  ServiceConfig,
  WorkspaceConfig,
} from './schema.js';

export type DocObject = Record<string, unknown>;

/**
 * A plugin configuration string as the document value: JSON text of an
 * object or array that re-encodes to the very same bytes becomes that
 * value (readable in GET /config and the Admin API), anything else stays
 * the string. Either way the plugin receives the same bytes.
 */
export function configurationValue(text: string): unknown {
  const first = text[0];
  if (first !== '{' && first !== '[') return text;
  try {
    // Null-prototype objects (host/input.ts): the value comes from a user's configuration.
    const value: unknown = inputCopy(JSON.parse(text));
    return JSON.stringify(value) === text ? value : text;
  } catch {
    return text;
  }
}

export function pluginDocument(p: PluginConfig): DocObject {
  const doc: DocObject = { name: p.name, wasm: p.wasm };
  if (p.root_id !== p.name) doc.root_id = p.root_id;
  if (p.vm_id !== p.name) doc.vm_id = p.vm_id;
  if (p.configuration !== '') doc.configuration = configurationValue(p.configuration);
  if (p.vm_configuration !== '') doc.vm_configuration = configurationValue(p.vm_configuration);
  doc.failure_policy = p.failure_policy;
  doc.allow_unknown_imports = p.allow_unknown_imports;
  doc.enabled = p.enabled;
  const limits = Object.fromEntries(Object.entries(p.limits).filter(([, v]) => v !== null));
  if (Object.keys(limits).length > 0) doc.limits = limits;
  return doc;
}

export function serviceDocument(s: ServiceConfig): DocObject {
  return {
    name: s.name,
    ...(s.urls.length === 1 ? { url: s.urls[0] } : { urls: [...s.urls] }),
    connect_timeout_ms: s.connect_timeout_ms,
    read_timeout_ms: s.read_timeout_ms,
    pool_size: s.pool_size,
    http2: s.http2,
    ca_file: s.ca_file,
    plugins: s.plugins.map(pluginDocument),
  };
}

export function routeDocument(r: RouteConfig): DocObject {
  return {
    name: r.name,
    service: r.service,
    hosts: [...r.hosts],
    paths: [...r.paths],
    methods: [...r.methods],
    strip_path: r.strip_path,
    plugins: r.plugins.map(pluginDocument),
  };
}

export function consumerDocument(c: ConsumerConfig): DocObject {
  return { username: c.username, custom_id: c.custom_id };
}

export function workspaceDocument(w: WorkspaceConfig): DocObject {
  return {
    name: w.name,
    plugins: w.plugins.map(pluginDocument),
    services: w.services.map(serviceDocument),
    routes: w.routes.map(routeDocument),
    consumers: w.consumers.map(consumerDocument),
  };
}

function eventHooksDocument(e: EventHooksConfig): DocObject {
  return structuredClone(e) as unknown as DocObject;
}

function listenerDocument(l: Listener): DocObject {
  return { address: l.address, port: l.port, tls: l.tls === null ? null : (structuredClone(l.tls) as unknown as DocObject) };
}

/** The explicit document of `config` (every workspace in `workspaces`, `default` first). */
export function toDocument(config: HookwireConfig): DocObject {
  return {
    proxy: {
      listen: config.proxy.listen.map((l) => ({ ...listenerDocument(l), http2: l.http2 })),
      request_body_buffer_limit: config.proxy.request_body_buffer_limit,
      response_body_buffer_limit: config.proxy.response_body_buffer_limit,
      drain_timeout_ms: config.proxy.drain_timeout_ms,
      workers: config.proxy.workers,
    },
    admin: {
      listen: listenerDocument(config.admin.listen),
      token: config.admin.token,
      allow_plaintext_off_loopback: config.admin.allow_plaintext_off_loopback,
    },
    wasm: { envoy_strict: config.wasm.envoy_strict, modules_dir: config.wasm.modules_dir },
    log_level: config.log_level,
    event_hooks: eventHooksDocument(config.event_hooks),
    storage: {
      kind: config.storage.kind,
      path: config.storage.path,
      url: config.storage.url,
      pool: { ...config.storage.pool },
      poll_interval_ms: config.storage.poll_interval_ms,
    },
    plugins: config.plugins.map(pluginDocument),
    workspaces: config.workspaces.map(workspaceDocument),
  };
}

/**
 * The same document as people write it: the default workspace's services,
 * routes and consumers at the top level; its `workspaces` entry kept only
 * for its plugins.
 */
export function compactDocument(doc: DocObject): DocObject {
  const workspaces = (doc.workspaces as DocObject[] | undefined) ?? [];
  const def = workspaces.find((w) => w.name === DEFAULTS.workspace);
  if (!def) return doc;
  const { workspaces: _all, ...rest } = doc;
  const others = workspaces.filter((w) => w !== def);
  const defPlugins = (def.plugins as unknown[] | undefined) ?? [];
  const out: DocObject = {
    ...rest,
    services: def.services ?? [],
    routes: def.routes ?? [],
    consumers: def.consumers ?? [],
  };
  const entries = [...(defPlugins.length > 0 ? [{ name: DEFAULTS.workspace, plugins: defPlugins }] : []), ...others];
  if (entries.length > 0) out.workspaces = entries;
  return out;
}
