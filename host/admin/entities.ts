/**
 * Services, routes, consumers and plugins through the Admin API, as Kong
 * serves them, over hookwire's declarative configuration:
 *
 *   request ─▶ body checked by the entity's JSON Schema (400, with the field path)
 *          ─▶ the change applied to the current document (toDocument(gateway.config))
 *          ─▶ the whole document validated by host/config (400 naming the field, 409 on a taken name)
 *          ─▶ gateway.reload(new config) (a refused reload: 400/500/503, the old config keeps serving)
 *          ─▶ crud events through the event-hooks service (crud/<entity>, crud/<entity>:<op>, dao:crud/<op>)
 *
 * The state is the gateway's serving configuration; the host's reload also
 * stores the entities (storage.kind sqlite) before a write is acknowledged,
 * or the host is DB-less and writes are refused (405, as Kong's). Writes are
 * serialized.
 *
 * Ids are name-based (host/config/ids.ts), so renaming an entity changes its
 * id; the update's crud event carries the old entity with the old id.
 */
import type { Logger } from 'pino';
import { DEFAULTS } from '../config/defaults.js';
import { parse as parseYaml } from 'yaml';
import { compactDocument, configurationValue, toDocument, type DocObject } from '../config/document.js';
import { ENTITY_KEYS } from '../config/entities.js';
import { stableId, type EntityType } from '../config/ids.js';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PACKAGE_ROOT, validateConfigObject } from '../config/load.js';
import { ENTITY_NAME_PATTERN } from '../config/schema.js';
import type {
  ConsumerConfig,
  HookwireConfig,
  PluginConfig,
  PluginScope,
  RouteConfig,
  ServiceConfig,
  WorkspaceConfig,
} from '../config/schema.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import type { ReloadResult } from '../proxy/gateway.js';
import { AdminHttpError, notFound, schemaViolation } from './http.js';
import type { CoercionSchema } from './form.js';
import { entityIssues, inputSchema, type EntityKind } from './schemas.js';

export type { EntityKind } from './schemas.js';
export type CrudOperation = 'create' | 'update' | 'delete';
export type View = Record<string, unknown>;

/** What the entities need from the rest of hookwire (the composition root provides it). */
export interface EntityHost {
  /** The configuration serving requests. */
  config(): HookwireConfig;
  reload(config: HookwireConfig): Promise<ReloadResult>;
  /** Announce a committed change (crud events); must not throw. */
  changed(kind: EntityKind, operation: CrudOperation, entity: View, old: View | null): Promise<void>;
  readonly logger: Logger;
  /** DB-less (`storage.kind: off`): the file is the truth, writes are refused as Kong refuses them. */
  readonly dbLess?: boolean;
}

/** Kong's words for each write, in its DB-less refusal ("cannot <verb> 'services' entities ..."). */
type WriteVerb = 'create' | 'update' | 'create or update' | 'remove';

export interface Page {
  data: View[];
  /** Opaque; null on the last page. */
  offset: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ADMIN_SOURCE = ' + Admin API changes';

const TYPE: Record<EntityKind, EntityType> = { services: 'service', routes: 'route', consumers: 'consumer', plugins: 'plugin' };

// ---- views --------------------------------------------------------------------

function emptyAsNull(text: string): unknown {
  return text === '' ? null : configurationValue(text);
}

export function serviceView(s: ServiceConfig): View {
  return {
    id: s.id,
    name: s.name,
    workspace: s.workspace,
    urls: [...s.urls],
    connect_timeout_ms: s.connect_timeout_ms,
    read_timeout_ms: s.read_timeout_ms,
    pool_size: s.pool_size,
    http2: s.http2,
    ca_file: s.ca_file,
  };
}

export function routeView(r: RouteConfig): View {
  return {
    id: r.id,
    name: r.name,
    workspace: r.workspace,
    service: { id: r.service_id, name: r.service },
    hosts: [...r.hosts],
    paths: [...r.paths],
    methods: [...r.methods],
    strip_path: r.strip_path,
  };
}

export function consumerView(c: ConsumerConfig): View {
  return { id: c.id, username: c.username, custom_id: c.custom_id, workspace: c.workspace };
}

/** A plugin with where it is declared: its list in the explicit document and its owner. */
export interface LocatedPlugin {
  readonly plugin: PluginConfig;
  /** JSON pointer of the list holding it in toDocument(config), and its index there. */
  readonly list: string;
  readonly index: number;
  /** Index of its workspace in config.workspaces; null for a global plugin. */
  readonly workspace: number | null;
  readonly service: ServiceConfig | null;
  readonly route: RouteConfig | null;
}

export function pluginView(p: LocatedPlugin): View {
  const { plugin } = p;
  return {
    id: plugin.id,
    name: plugin.name,
    scope: plugin.scope,
    workspace: plugin.workspace,
    service: p.service ? { id: p.service.id, name: p.service.name } : null,
    route: p.route ? { id: p.route.id, name: p.route.name } : null,
    wasm: plugin.wasm,
    root_id: plugin.root_id,
    vm_id: plugin.vm_id,
    configuration: emptyAsNull(plugin.configuration),
    vm_configuration: emptyAsNull(plugin.vm_configuration),
    failure_policy: plugin.failure_policy,
    allow_unknown_imports: plugin.allow_unknown_imports,
    enabled: plugin.enabled,
    limits: plugin.limits,
  };
}

/** Every plugin of `config`, global ones first, with its place in the explicit document. */
export function locatePlugins(config: HookwireConfig): LocatedPlugin[] {
  const out: LocatedPlugin[] = config.plugins.map((plugin, index) => ({ plugin, list: '/plugins', index, workspace: null, service: null, route: null }));
  config.workspaces.forEach((ws, w) => {
    ws.plugins.forEach((plugin, index) => out.push({ plugin, list: `/workspaces/${w}/plugins`, index, workspace: w, service: null, route: null }));
    ws.services.forEach((service, i) =>
      service.plugins.forEach((plugin, index) =>
        out.push({ plugin, list: `/workspaces/${w}/services/${i}/plugins`, index, workspace: w, service, route: null }),
      ),
    );
    ws.routes.forEach((route, i) =>
      route.plugins.forEach((plugin, index) =>
        out.push({ plugin, list: `/workspaces/${w}/routes/${i}/plugins`, index, workspace: w, service: null, route }),
      ),
    );
  });
  return out;
}

// ---- document access -------------------------------------------------------------

function at(doc: DocObject, pointer: string): unknown {
  let node: unknown = doc;
  for (const seg of pointer.slice(1).split('/')) {
    node = Array.isArray(node) ? node[Number(seg)] : (node as DocObject)[seg];
  }
  return node;
}

function listAt(doc: DocObject, pointer: string): DocObject[] {
  const list = at(doc, pointer);
  if (!Array.isArray(list)) throw new Error(`no list at ${pointer}`);
  return list as DocObject[];
}

// ---- pagination ----------------------------------------------------------------------

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

/** `size` of a list request: 1..1000, default 100 (Kong's). */
export function pageSize(query: URLSearchParams): number {
  const raw = query.get('size');
  if (raw === null) return DEFAULT_PAGE;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_PAGE) {
    throw schemaViolation([{ path: '/size', message: `must be an integer between 1 and ${MAX_PAGE} (found ${JSON.stringify(raw)})` }]);
  }
  return n;
}

function decodeOffset(raw: string | null): number {
  if (raw === null || raw === '') return 0;
  const m = /^e1:(\d{1,9})$/.exec(Buffer.from(raw, 'base64url').toString('utf8'));
  if (!m) throw schemaViolation([{ path: '/offset', message: 'is not an offset this list returned' }]);
  return Number(m[1]);
}

function paginate(items: View[], query: URLSearchParams): Page {
  const size = pageSize(query);
  const start = decodeOffset(query.get('offset'));
  const data = items.slice(start, start + size);
  const next = start + size < items.length ? Buffer.from(`e1:${start + size}`, 'utf8').toString('base64url') : null;
  return { data, offset: next };
}

// ---- the entities ------------------------------------------------------------------------

interface Target {
  /** Pointer of the list the entity is (or goes) in, and its index (-1: appended). */
  list: string;
  index: number;
}

interface Change {
  /** The document after the change. */
  doc: DocObject;
  /** Where the changed entity ends up (for mapping validation errors to body fields); null for a delete. */
  pointer: string | null;
  /** How to find the entity in the new configuration. */
  find: ((next: HookwireConfig) => View | null) | null;
  /** Other entities this change removes (a service's or route's plugins): their views, for their crud events. */
  cascade: { kind: EntityKind; view: View }[];
}

function bodyObject(body: unknown): DocObject {
  return body === undefined ? {} : (body as DocObject);
}

/**
 * A plugin body written as for Kong: `config` is Kong's word for
 * `configuration`, and `name` without `wasm` names the plugin type: the
 * module `<name>.wasm` in wasm.modules_dir or among the shipped plugins
 * (dist/), with `instance_name` (Kong 3.x) as the instance's name when given.
 */
export function kongPluginBody(b: DocObject, config: HookwireConfig, resolveModule = true): DocObject {
  const out: DocObject = Object.assign(Object.create(null) as DocObject, b);
  if (Object.hasOwn(out, 'config')) {
    if (Object.hasOwn(out, 'configuration')) throw schemaViolation([{ path: '/config', message: 'give either config (Kong\'s name) or configuration, not both' }]);
    out.configuration = out.config;
    delete out.config;
  }
  if (resolveModule && out.wasm === undefined && typeof out.name === 'string' && ENTITY_NAME.test(out.name)) {
    const module = shippedModule(out.name, config);
    if (module === undefined) {
      throw schemaViolation([{ path: '/wasm', message: `is missing, and no module ${out.name}.wasm is in ${moduleDirs(config).join(' or ')} (give wasm: the .wasm file of the plugin)` }]);
    }
    out.wasm = module;
    if (typeof out.instance_name === 'string') out.name = out.instance_name;
  }
  delete out.instance_name;
  return out;
}

const ENTITY_NAME = new RegExp(ENTITY_NAME_PATTERN);

function moduleDirs(config: HookwireConfig): string[] {
  return [config.wasm.modules_dir, join(PACKAGE_ROOT, 'dist')].filter((d): d is string => d !== null);
}

/** The module of plugin type `name`: `<name>.wasm` in wasm.modules_dir, else among the shipped plugins. */
function shippedModule(name: string, config: HookwireConfig): string | undefined {
  return moduleDirs(config)
    .map((d) => join(d, `${name}.wasm`))
    .find((f) => existsSync(f));
}

/**
 * What types a plugin's form fields: the entity's input schema, with the
 * plugin's own configuration schema (its manifest's `config_schema`, beside
 * the module) under `configuration` / `config`, as Kong types `config.*` by
 * the plugin's schema. Without a manifest the configuration stays strings.
 */
export function pluginFormSchema(fields: Record<string, unknown>, config: HookwireConfig): CoercionSchema {
  const base = inputSchema('plugins', false) as CoercionSchema;
  let wasm: string | undefined;
  if (typeof fields.wasm === 'string') wasm = resolve(config.wasm.modules_dir ?? config.base_dir, fields.wasm);
  else if (typeof fields.name === 'string' && ENTITY_NAME.test(fields.name)) wasm = shippedModule(fields.name, config);
  if (wasm === undefined || !wasm.endsWith('.wasm')) return base;
  let schema: CoercionSchema | undefined;
  try {
    schema = (JSON.parse(readFileSync(`${wasm.slice(0, -'.wasm'.length)}.manifest.json`, 'utf8')) as { config_schema?: CoercionSchema }).config_schema;
  } catch {
    return base; // no manifest beside the module: a module built elsewhere
  }
  return schema ? { ...base, properties: { ...base.properties, configuration: schema, config: schema } } : base;
}

function pick(body: DocObject, keys: readonly string[]): DocObject {
  const out: DocObject = {};
  for (const k of keys) if (body[k] !== undefined) out[k] = body[k];
  return out;
}

const SERVICE_FIELDS = ['name', 'url', 'urls', 'connect_timeout_ms', 'read_timeout_ms', 'pool_size', 'http2', 'ca_file'];
const ROUTE_FIELDS = ['name', 'hosts', 'paths', 'methods', 'strip_path'];
const CONSUMER_FIELDS = ['username', 'custom_id'];
const PLUGIN_FIELDS = ['name', 'wasm', 'root_id', 'vm_id', 'configuration', 'vm_configuration', 'failure_policy', 'allow_unknown_imports', 'enabled', 'limits'];

export class ConfigEntities {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: EntityHost) {}

  // ---- reads ----

  /** The workspace named `name` (404 when the configuration has none). */
  workspace(config: HookwireConfig, name: string): { ws: WorkspaceConfig; index: number } {
    const index = config.workspaces.findIndex((w) => w.name === name);
    if (index < 0) throw notFound();
    return { ws: config.workspaces[index]!, index };
  }

  /** A page of the workspace's entities of `kind` (those `only` accepts, when given). */
  list(kind: EntityKind, workspace: string, query: URLSearchParams, only?: (view: View) => boolean): Page {
    const config = this.host.config();
    const { ws, index } = this.workspace(config, workspace);
    const views = this.views(kind, config, ws, index);
    return paginate(only ? views.filter(only) : views, query);
  }

  get(kind: EntityKind, workspace: string, key: string): View {
    const config = this.host.config();
    const { ws, index } = this.workspace(config, workspace);
    const found = this.find(kind, config, ws, index, key);
    if (!found) throw notFound();
    return found.view;
  }

  private views(kind: EntityKind, config: HookwireConfig, ws: WorkspaceConfig, w: number): View[] {
    switch (kind) {
      case 'services':
        return ws.services.map(serviceView);
      case 'routes':
        return ws.routes.map(routeView);
      case 'consumers':
        return ws.consumers.map(consumerView);
      case 'plugins':
        return locatePlugins(config)
          .filter((p) => p.workspace === null || p.workspace === w)
          .map(pluginView);
    }
  }

  /** An entity of the workspace by id or name (plugins: global ones too); null when absent. */
  private find(
    kind: EntityKind,
    config: HookwireConfig,
    ws: WorkspaceConfig,
    w: number,
    key: string,
  ): { view: View; target: Target; located?: LocatedPlugin } | null {
    const lower = key.toLowerCase();
    const byKey = (id: string, name: string) => (UUID.test(key) && id === lower) || name === key;
    switch (kind) {
      case 'services': {
        const i = ws.services.findIndex((s) => byKey(s.id, s.name));
        return i < 0 ? null : { view: serviceView(ws.services[i]!), target: { list: `/workspaces/${w}/services`, index: i } };
      }
      case 'routes': {
        const i = ws.routes.findIndex((r) => byKey(r.id, r.name));
        return i < 0 ? null : { view: routeView(ws.routes[i]!), target: { list: `/workspaces/${w}/routes`, index: i } };
      }
      case 'consumers': {
        const i = ws.consumers.findIndex((c) => byKey(c.id, c.username));
        return i < 0 ? null : { view: consumerView(ws.consumers[i]!), target: { list: `/workspaces/${w}/consumers`, index: i } };
      }
      case 'plugins': {
        const p = locatePlugins(config).find((l) => (l.workspace === null || l.workspace === w) && byKey(l.plugin.id, l.plugin.name));
        return p ? { view: pluginView(p), target: { list: p.list, index: p.index }, located: p } : null;
      }
    }
  }

  // ---- writes ----

  /** POST: 201 with the entity. */
  create(kind: EntityKind, workspace: string, body: unknown): Promise<View> {
    return this.serialized(async () => {
      const b = kind === 'plugins' ? kongPluginBody(bodyObject(body), this.host.config()) : bodyObject(body);
      const issues = entityIssues(kind, b, true);
      if (issues.length) throw schemaViolation(issues);
      const config = this.host.config();
      const { ws, index } = this.workspace(config, workspace);
      this.checkEcho(kind, b, ws, true);
      const change = this.place(kind, config, ws, index, null, b, 'create');
      const view = await this.commit(kind, config, change, 'create');
      await this.announce(kind, 'create', view, null, change);
      return view;
    });
  }

  /** PATCH: 200 with the entity; 404 when absent. */
  update(kind: EntityKind, workspace: string, key: string, body: unknown): Promise<View> {
    return this.serialized(async () => {
      // A PATCH's name is a rename, never a plugin type: only `config` is Kong's word here.
      const b = kind === 'plugins' ? kongPluginBody(bodyObject(body), this.host.config(), false) : bodyObject(body);
      const issues = entityIssues(kind, b, false);
      if (issues.length) throw schemaViolation(issues);
      const config = this.host.config();
      const { ws, index } = this.workspace(config, workspace);
      const existing = this.find(kind, config, ws, index, key);
      if (!existing) throw notFound();
      this.checkEcho(kind, b, ws, false);
      const change = this.place(kind, config, ws, index, existing, b, 'update');
      const view = await this.commit(kind, config, change, 'update');
      await this.announce(kind, 'update', view, existing.view, change);
      return view;
    });
  }

  /**
   * PUT: create or replace (Kong's upsert). `key` names the entity: a name
   * (the body's name must agree or be absent) or an id (a new entity's id
   * must be the one its name gives).
   */
  upsert(kind: EntityKind, workspace: string, key: string, body: unknown): Promise<{ view: View; created: boolean }> {
    return this.serialized(async () => {
      const b = kind === 'plugins' ? kongPluginBody({ ...bodyObject(body) }, this.host.config()) : { ...bodyObject(body) };
      const config = this.host.config();
      const { ws, index } = this.workspace(config, workspace);
      const existing = this.find(kind, config, ws, index, key);
      const nameKey = kind === 'consumers' ? 'username' : 'name';
      const keyIsId = UUID.test(key);
      if (!keyIsId) {
        if (b[nameKey] !== undefined && b[nameKey] !== key && existing === null) {
          throw schemaViolation([{ path: `/${nameKey}`, message: `must be ${JSON.stringify(key)}, the name in the path (found ${JSON.stringify(b[nameKey])})` }]);
        }
        if (b[nameKey] === undefined) b[nameKey] = key;
      } else if (b[nameKey] === undefined && existing) {
        b[nameKey] = existing.view[nameKey];
      }
      const issues = entityIssues(kind, b, true);
      if (issues.length) throw schemaViolation(issues);
      this.checkEcho(kind, b, ws, false);
      if (!existing && keyIsId) {
        const scopeWs = kind === 'plugins' && b.scope === 'global' ? null : ws.name;
        const derived = stableId(scopeWs, TYPE[kind], String(b[nameKey]));
        if (derived !== key.toLowerCase()) {
          throw schemaViolation([
            { path: '/id', message: `no ${TYPE[kind]} has this id, and a new one named ${JSON.stringify(b[nameKey])} gets the id ${derived} (ids are derived from workspace and name)` },
          ]);
        }
      }
      const op: CrudOperation = existing ? 'update' : 'create';
      const change = this.place(kind, config, ws, index, existing, b, existing ? 'replace' : 'create');
      const view = await this.commit(kind, config, change, 'create or update');
      await this.announce(kind, op, view, existing?.view ?? null, change);
      return { view, created: !existing };
    });
  }

  /** DELETE: 204; 404 when absent. */
  remove(kind: EntityKind, workspace: string, key: string): Promise<void> {
    return this.serialized(async () => {
      const config = this.host.config();
      const { ws, index } = this.workspace(config, workspace);
      const existing = this.find(kind, config, ws, index, key);
      if (!existing) throw notFound();
      const doc = toDocument(config);
      const cascade: { kind: EntityKind; view: View }[] = [];
      if (kind === 'services') {
        const service = ws.services[existing.target.index]!;
        if (ws.routes.some((r) => r.service === service.name)) {
          throw new AdminHttpError(400, {
            name: 'foreign key violation',
            message: "an existing 'routes' entity references this 'services' entity",
            fields: { '@referenced_by': 'routes' },
          });
        }
      }
      if (kind === 'services' || kind === 'routes') {
        const owner = kind === 'services' ? 'service' : 'route';
        for (const p of locatePlugins(config)) {
          const o = owner === 'service' ? p.service : p.route;
          if (o && o.id === existing.view.id) cascade.push({ kind: 'plugins', view: pluginView(p) });
        }
      }
      listAt(doc, existing.target.list).splice(existing.target.index, 1);
      await this.commit(kind, config, { doc, pointer: null, find: null, cascade }, 'remove');
      for (const c of cascade) await this.host.changed(c.kind, 'delete', c.view, null);
      await this.host.changed(kind, 'delete', existing.view, null);
    });
  }

  /**
   * POST /config, Kong's DB-less reload: the entities of `body` (a document,
   * or `{config: "<YAML or JSON text>"}`) replace the served ones; node
   * settings stay the file's. Only DB-less: with a store, entities change
   * through the entity endpoints (Kong answers 400 the same way).
   */
  replaceEntities(body: unknown): Promise<DocObject> {
    return this.serialized(async () => {
      if (!this.host.dbLess) {
        throw new AdminHttpError(400, { message: 'this endpoint is only available when hookwire runs DB-less (storage.kind off); with a store, use the entity endpoints' });
      }
      const asObject = (v: unknown): DocObject => {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new AdminHttpError(400, { message: 'expected a declarative configuration: a JSON object, or {"config": "<YAML or JSON text>"}' });
        return v as DocObject;
      };
      let doc = asObject(body);
      if (typeof doc.config === 'string' && Object.keys(doc).length === 1) {
        let parsed: unknown;
        try {
          parsed = parseYaml(doc.config, { maxAliasCount: 100 });
        } catch (err) {
          throw schemaViolation([{ path: '/config', message: `cannot be parsed as YAML or JSON: ${(err as Error).message.split('\n')[0]}` }]);
        }
        doc = asObject(parsed);
      }
      const others = Object.keys(doc).filter((k) => !(ENTITY_KEYS as readonly string[]).includes(k));
      if (others.length > 0) {
        throw schemaViolation(others.map((k) => ({ path: `/${k}`, message: `only entities (${ENTITY_KEYS.join(', ')}) are replaced through /config; node settings come from the file` })));
      }
      const base = this.host.config();
      const next = toDocument(base);
      for (const key of ENTITY_KEYS) delete next[key];
      let config: HookwireConfig;
      try {
        config = validateConfigObject({ ...next, ...doc }, base.source, { baseDir: base.base_dir });
      } catch (err) {
        if (err instanceof ConfigError) throw schemaViolation(err.issues);
        throw err;
      }
      const result = await this.host.reload(config);
      this.host.logger.info({ generation: result.generation }, 'POST /config: entities replaced');
      return compactDocument(toDocument(config));
    });
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** `id` and `workspace` are echoes: a POST may give the id its name derives; `workspace` must be the path's. */
  private checkEcho(kind: EntityKind, b: DocObject, ws: WorkspaceConfig, create: boolean): void {
    const issues: ConfigIssue[] = [];
    if (b.workspace !== undefined) {
      const allowed = kind === 'plugins' ? [ws.name, null] : [ws.name];
      if (!allowed.includes(b.workspace as string | null)) {
        issues.push({ path: '/workspace', message: `must be ${JSON.stringify(ws.name)}, the workspace of the path (found ${JSON.stringify(b.workspace)})` });
      }
    }
    if (create && typeof b.id === 'string') {
      const nameKey = kind === 'consumers' ? 'username' : 'name';
      const scopeWs = kind === 'plugins' && b.scope === 'global' ? null : ws.name;
      const derived = stableId(scopeWs, TYPE[kind], String(b[nameKey]));
      if (b.id.toLowerCase() !== derived) {
        issues.push({ path: '/id', message: `must be ${derived} (ids are derived from workspace, type and name) or absent` });
      }
    }
    if (issues.length) throw schemaViolation(issues);
  }

  /** Applies a create / patch ("update") / put ("replace") of one entity to a fresh document. */
  private place(
    kind: EntityKind,
    config: HookwireConfig,
    ws: WorkspaceConfig,
    w: number,
    existing: { view: View; target: Target; located?: LocatedPlugin } | null,
    b: DocObject,
    mode: 'create' | 'update' | 'replace',
  ): Change {
    const doc = toDocument(config);
    const wsPtr = `/workspaces/${w}`;
    const current = existing ? listAt(doc, existing.target.list)[existing.target.index]! : null;
    const merge = (fields: readonly string[], keep: readonly string[]): DocObject => {
      if (mode === 'update') return { ...current!, ...pick(b, fields) };
      return { ...pick(b, fields), ...(current ? pick(current, keep) : {}) };
    };
    switch (kind) {
      case 'services': {
        const raw = merge(SERVICE_FIELDS, ['plugins']);
        if (mode === 'update') {
          if (b.url !== undefined) delete raw.urls;
          if (b.urls !== undefined) delete raw.url;
        }
        raw.plugins ??= [];
        this.unique(kind, ws, raw.name as string, existing?.target.index ?? -1);
        const index = this.put(doc, `${wsPtr}/services`, existing?.target.index ?? -1, raw);
        // Routes follow a renamed service.
        if (current && current.name !== raw.name) {
          for (const r of listAt(doc, `${wsPtr}/routes`)) if (r.service === current.name) r.service = raw.name;
        }
        return this.change(doc, `${wsPtr}/services/${index}`, (next) => {
          const s = next.workspaces[w]?.services.find((x) => x.name === raw.name);
          return s ? serviceView(s) : null;
        });
      }
      case 'routes': {
        const raw = merge(ROUTE_FIELDS, ['plugins']);
        if (b.service !== undefined) raw.service = this.serviceName(ws, b.service);
        raw.plugins ??= [];
        this.unique(kind, ws, raw.name as string, existing?.target.index ?? -1);
        const index = this.put(doc, `${wsPtr}/routes`, existing?.target.index ?? -1, raw);
        return this.change(doc, `${wsPtr}/routes/${index}`, (next) => {
          const r = next.workspaces[w]?.routes.find((x) => x.name === raw.name);
          return r ? routeView(r) : null;
        });
      }
      case 'consumers': {
        const raw = merge(CONSUMER_FIELDS, []);
        this.unique(kind, ws, raw.username as string, existing?.target.index ?? -1, raw.custom_id as string | null | undefined);
        const index = this.put(doc, `${wsPtr}/consumers`, existing?.target.index ?? -1, raw);
        return this.change(doc, `${wsPtr}/consumers/${index}`, (next) => {
          const c = next.workspaces[w]?.consumers.find((x) => x.username === raw.username);
          return c ? consumerView(c) : null;
        });
      }
      case 'plugins': {
        const raw = merge(PLUGIN_FIELDS, []);
        const placement = this.pluginPlacement(ws, w, b, existing?.located ?? null, mode);
        this.unique(kind, ws, raw.name as string, -1, undefined, existing?.located?.plugin.name);
        const list = placement.list;
        let index: number;
        if (existing && list === existing.target.list) {
          index = this.put(doc, list, existing.target.index, raw);
        } else {
          // Moving: out of its owner's list, appended to the new owner's (lists are per owner, so no index shifts).
          if (existing) listAt(doc, existing.target.list).splice(existing.target.index, 1);
          index = this.put(doc, list, -1, raw);
        }
        return this.change(doc, `${list}/${index}`, (next) => {
          const p = locatePlugins(next).find((l) => l.plugin.name === raw.name);
          return p ? pluginView(p) : null;
        });
      }
    }
  }

  private change(doc: DocObject, pointer: string, find: (next: HookwireConfig) => View | null): Change {
    return { doc, pointer, find, cascade: [] };
  }

  /** Puts `raw` at `index` of the list (replacing), or appends it (-1); returns its index. */
  private put(doc: DocObject, list: string, index: number, raw: DocObject): number {
    const items = listAt(doc, list);
    if (index < 0) return items.push(raw) - 1;
    items[index] = raw;
    return index;
  }

  /** A route's `service` reference → the service's name in the workspace (unknown names are left to the config checks). */
  private serviceName(ws: WorkspaceConfig, ref: unknown): string {
    if (typeof ref === 'string') {
      const byId = UUID.test(ref) ? ws.services.find((s) => s.id === ref.toLowerCase()) : undefined;
      return byId ? byId.name : ref;
    }
    const r = ref as { id?: string; name?: string };
    if (r.name !== undefined) return r.name;
    const s = ws.services.find((x) => x.id === r.id!.toLowerCase());
    if (!s) throw schemaViolation([{ path: '/service/id', message: `no service with id ${JSON.stringify(r.id)} in workspace ${JSON.stringify(ws.name)}` }]);
    return s.name;
  }

  /** Where a plugin goes: `route` / `service` references, else `scope`, else where it is (PATCH) or the workspace. */
  private pluginPlacement(
    ws: WorkspaceConfig,
    w: number,
    b: DocObject,
    existing: LocatedPlugin | null,
    mode: 'create' | 'update' | 'replace',
  ): { list: string; scope: PluginScope } {
    const route = b.route ?? null;
    const service = b.service ?? null;
    const moves = b.scope !== undefined || b.route !== undefined || b.service !== undefined;
    if (mode === 'update' && !moves && existing) return { list: existing.list, scope: existing.plugin.scope };
    const issues: ConfigIssue[] = [];
    if (route !== null && service !== null) issues.push({ path: '/route', message: 'give either route or service, not both' });
    const resolve = (ref: unknown, kind: 'route' | 'service'): number => {
      const items = kind === 'route' ? ws.routes : ws.services;
      const r = typeof ref === 'string' ? { key: ref } : { key: (ref as { id?: string; name?: string }).id ?? (ref as { name: string }).name };
      const i = items.findIndex((e) => (UUID.test(r.key) && e.id === r.key.toLowerCase()) || e.name === r.key);
      if (i < 0) issues.push({ path: `/${kind}`, message: `no ${kind} ${JSON.stringify(r.key)} in workspace ${JSON.stringify(ws.name)}` });
      return i;
    };
    let result: { list: string; scope: PluginScope };
    if (route !== null) result = { list: `/workspaces/${w}/routes/${resolve(route, 'route')}/plugins`, scope: 'route' };
    else if (service !== null) result = { list: `/workspaces/${w}/services/${resolve(service, 'service')}/plugins`, scope: 'service' };
    else if (b.scope === 'global') result = { list: '/plugins', scope: 'global' };
    else if (b.scope === undefined && mode === 'update' && existing && existing.plugin.scope === 'global') result = { list: '/plugins', scope: 'global' };
    else result = { list: `/workspaces/${w}/plugins`, scope: 'workspace' };
    if (b.scope !== undefined && b.scope !== result.scope) {
      issues.push({ path: '/scope', message: `is ${JSON.stringify(b.scope)} but the plugin would be ${result.scope}-scoped (set route or service for those scopes)` });
    }
    if (issues.length) throw schemaViolation(issues);
    return result;
  }

  /** 409 when the name (or consumer custom_id) is taken by another entity. */
  private unique(kind: EntityKind, ws: WorkspaceConfig, name: string, selfIndex: number, customId?: string | null, selfPlugin?: string): void {
    let taken = false;
    let field = kind === 'consumers' ? 'username' : 'name';
    let value = name;
    switch (kind) {
      case 'services':
        taken = ws.services.some((s, i) => i !== selfIndex && s.name === name);
        break;
      case 'routes':
        taken = ws.routes.some((r, i) => i !== selfIndex && r.name === name);
        break;
      case 'consumers':
        taken = ws.consumers.some((c, i) => i !== selfIndex && c.username === name);
        if (!taken && typeof customId === 'string' && ws.consumers.some((c, i) => i !== selfIndex && c.custom_id === customId)) {
          taken = true;
          field = 'custom_id';
          value = customId;
        }
        break;
      case 'plugins':
        // Plugin names are unique in the whole document.
        taken = name !== selfPlugin && locatePlugins(this.host.config()).some((p) => p.plugin.name === name);
        break;
    }
    if (taken) {
      throw new AdminHttpError(409, {
        name: 'unique constraint violation',
        message: `UNIQUE violation detected on '{${field}="${value}"}'`,
        fields: { [field]: `${JSON.stringify(value)} is already used${kind === 'plugins' ? ' (plugin names are unique in the whole configuration)' : ` in workspace ${JSON.stringify(ws.name)}`}` },
      });
    }
  }

  /** Validate the document, reload the gateway, and return the changed entity as it now is. */
  private async commit(kind: EntityKind, base: HookwireConfig, change: Change, verb: WriteVerb): Promise<View> {
    if (this.host.dbLess) {
      // As Kong's DB-less mode: the body was checked (400 first), then the write is refused.
      throw new AdminHttpError(405, {
        code: 12,
        name: 'operation unsupported',
        message: `cannot ${verb} '${kind}' entities when not using a database (storage.kind is off: change the configuration file, or POST /config)`,
      });
    }
    const source = base.source.endsWith(ADMIN_SOURCE) ? base.source : base.source + ADMIN_SOURCE;
    let next: HookwireConfig;
    try {
      next = validateConfigObject(change.doc, source, { baseDir: base.base_dir });
    } catch (err) {
      if (err instanceof ConfigError) throw schemaViolation(bodyIssues(err.issues, change.pointer));
      throw err;
    }
    const result = await this.host.reload(next);
    const view = change.find ? change.find(next) : null;
    this.host.logger.info({ entity: kind, generation: result.generation, id: view?.id }, 'admin API change applied');
    if (change.find && !view) throw new Error(`the changed ${kind} entity is missing from the new configuration`);
    return view ?? {};
  }

  private async announce(kind: EntityKind, op: CrudOperation, view: View, old: View | null, change: Change): Promise<void> {
    for (const c of change.cascade) await this.host.changed(c.kind, 'delete', c.view, null);
    await this.host.changed(kind, op, view, old);
  }
}

/**
 * Issues of the whole document, as paths of the body: those inside the
 * changed entity lose its pointer; others (a rule about the document as a
 * whole) become entity-level messages naming their document path.
 */
export function bodyIssues(issues: readonly ConfigIssue[], pointer: string | null): ConfigIssue[] {
  return issues.map((i) => {
    if (pointer !== null && (i.path === pointer || i.path.startsWith(pointer + '/'))) return { path: i.path.slice(pointer.length), message: i.message };
    return { path: '', message: `in the resulting configuration, ${i.path || '/'}: ${i.message}` };
  });
}

/** The default workspace name (unprefixed paths). */
export const DEFAULT_WORKSPACE: string = DEFAULTS.workspace;
